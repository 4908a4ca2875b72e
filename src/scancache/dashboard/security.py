"""Who may use the dashboard: a token, checked on every request, and Host/Origin checks against
DNS rebinding and cross-site requests.

The rules (README "Dashboard" tells users the same):
- Without a token the server binds loopback only, and every request must name a loopback Host
  (127.0.0.1, localhost, [::1], any port): a page on another origin that re-points its own DNS name
  at 127.0.0.1 (DNS rebinding) sends its own Host and is refused, reads included.
- With a token, every request must present it: `Authorization: Bearer TOKEN`, or `?token=TOKEN` on
  reads (an EventSource cannot set headers). Compared in constant time.
- Writes (DELETE, POST) also need a same-origin Origin when a browser sends one, and a Sec-Fetch-Site
  of same-origin or none: a page on another site cannot clear the cache with a form post, with or
  without a token. Only GET, HEAD, DELETE and POST are served at all.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping

__all__ = ["Guard", "is_loopback_host"]

READ_METHODS = frozenset({"GET", "HEAD"})
WRITE_METHODS = frozenset({"DELETE", "POST"})
MIN_TOKEN_LENGTH = 16


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback IP literals (with or without [] around IPv6)."""
    name = host.strip().lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """The name part of a Host header: 'h:1', '[::1]:1' and '[::1]' give 'h' and '[::1]'."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class Guard:
    """Decides whether one request may go on: check() returns None, or (status, reason) to refuse."""

    def __init__(self, token: str | None) -> None:
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the dashboard token must be at least {MIN_TOKEN_LENGTH} characters")
        self._token_digest = _digest(token) if token else None

    @property
    def has_token(self) -> bool:
        """True when requests must carry the token."""
        return self._token_digest is not None

    def token_matches(self, presented: str | None) -> bool:
        """Constant-time comparison (of SHA-256 digests, so the length leaks nothing either)."""
        if self._token_digest is None or not presented:
            return False
        return hmac.compare_digest(_digest(presented), self._token_digest)

    def check(self, method: str, headers: Mapping[str, str], query_token: str | None
              ) -> tuple[int, str] | None:
        """None if the request may proceed, else (HTTP status, reason). headers: lower-case names."""
        if method not in READ_METHODS and method not in WRITE_METHODS:
            return 405, "method not allowed"
        host = headers.get("host", "")
        if self._token_digest is None:
            if not host or not is_loopback_host(_host_name(host)):
                return 403, "host not allowed (this dashboard answers loopback names only)"
        else:
            auth = headers.get("authorization", "")
            presented = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            if presented is None and method in READ_METHODS:
                presented = query_token
            if not self.token_matches(presented):
                return 401, "missing or wrong token"
        if method in WRITE_METHODS:
            origin = headers.get("origin")
            if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
                return 403, "cross-origin write refused"
            site = headers.get("sec-fetch-site")
            if site is not None and site not in ("same-origin", "none"):
                return 403, "cross-site write refused"
        return None
