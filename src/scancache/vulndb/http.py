"""JSON over HTTP with retries: exponential backoff with full jitter, Retry-After honoured.

Retried: timeouts, connection errors (refused, reset, dropped mid-body), 429, 5xx, and bodies that
are not the JSON shape the caller expects (a truncated or garbled answer is usually transient).
Not retried: other 4xx (a 404 is returned to the caller as None) and an answer over the size
limit (the transport's max_body_bytes). After the last attempt a
VulnDBError names the endpoint. Sleeping goes through an injectable function so tests never wait.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from scancache.cache.urls import redact_text, redact_url
from scancache.errors import VulnDBError

__all__ = ["JSONClient", "parse_retry_after", "Malformed", "MalformedAnswer"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Malformed(ValueError):
    """A response body that is not the JSON shape an endpoint promises."""


class MalformedAnswer(VulnDBError):
    """Every attempt got an answer, none of them the JSON shape the endpoint promises (not JSON, or
    the wrong shape): the server is up but says something unusable about this request."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class JSONClient:
    """Sends requests through one Transport (scancache.vulndb.transport) and retries per the policy
    above.

    `requests` counts every attempt per endpoint label (retries included), `retries` the retries.
    """

    def __init__(
        self,
        client: Any,
        *,
        max_retries: int,
        backoff_base_seconds: float,
        backoff_max_seconds: float,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.max_retries = max_retries
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.requests: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.slept_seconds = 0.0

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry number attempt+1: Retry-After if given, else full jitter; both capped."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max_seconds)
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * (2 ** min(attempt, 60)))
        return self.rng.uniform(0, ceiling)

    async def request(
        self,
        label: str,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        check: Callable[[Any], None] | None = None,
        retry_statuses: frozenset[int] = RETRY_STATUSES,
        before_attempt: Callable[[], Awaitable[Any]] | None = None,
    ) -> Any:
        """The decoded JSON of a 2xx answer (None for 404), after check() accepted its shape.

        label names the endpoint in counters; errors name method and URL (credentials redacted).
        before_attempt runs before every attempt (the NVD rate limiter). Raises VulnDBError once
        retries are exhausted or for a non-retryable status.
        """
        import json as json_module

        from scancache.vulndb.transport import TransportFailure

        endpoint = f"{method} {redact_url(url)}"  # shown in errors, reports and CI logs
        attempt = 0
        while True:
            if before_attempt is not None:
                await before_attempt()
            self.requests[label] += 1
            retry_after = None
            status: int | None = None
            malformed = False
            try:
                status, response_headers, body = await self.client.send(
                    method, url, json=json, params=params, headers=headers)
                if status == 404:
                    return None
                if status in retry_statuses:
                    retry_after = parse_retry_after(response_headers.get("retry-after"))
                    reason = f"HTTP {status}"
                    message = response_headers.get("message")
                    if message:
                        reason += f" ({message})"
                elif status >= 400:
                    text = body[:200].decode("utf-8", "replace")
                    raise VulnDBError(endpoint, f"HTTP {status}: {text!r}", status)
                else:
                    try:
                        data = json_module.loads(body)
                    except ValueError as exc:  # UnicodeDecodeError included
                        raise Malformed(f"body is not JSON ({exc})") from None
                    if check is not None:
                        check(data)
                    return data
            except Malformed as exc:
                reason, malformed = f"malformed response: {exc}", True
            except TransportFailure as exc:
                if exc.kind == "too_large":  # asking again would read it again: fail closed now
                    raise VulnDBError(endpoint, str(exc)) from None
                # The client library's text may quote the URL, credentials and all.
                reason = {"timeout": "timed out", "decode": "malformed response"}.get(
                    exc.kind, "connection failed") + f" ({redact_text(str(exc))})"
            if attempt >= self.max_retries:
                error = MalformedAnswer if malformed else VulnDBError
                raise error(endpoint, f"{reason}; gave up after {attempt + 1} attempt(s)", status)
            delay = self.backoff(attempt, retry_after)
            attempt += 1
            self.retries[label] += 1
            self.slept_seconds += delay
            await self.sleep(delay)
