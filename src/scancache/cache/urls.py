"""URLs that carry credentials: redaction for anything shown to a person, and Redis URL parsing.

Every place that prints, logs or reprs a URL (cache stats, CLI errors, log records, backend and
config reprs, metrics labels) goes through redact_url or redact_text, so a password written in
`redis://:secret@host` or `https://user:token@host` never reaches a terminal, a log file or a CI
transcript. Only the standard library: importing this costs nothing.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "join_url_path", "parse_redis_url", "redact_text", "redact_url", "redacted_repr"]

REDACTED = "***"
#: Query parameters whose value is a secret (redis-py reads ?password=; APIs take keys and tokens).
_SECRET_PARAMS = frozenset(("password", "pass", "passwd", "pwd", "token", "secret", "key", "apikey",
                            "api_key", "access_token", "auth"))
#: A pattern, compiled (and cached by re) at redact_text's first URL: importing this module for
#: redact_url alone does not pay for the compile (~1 ms).
_URL_IN_TEXT = r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+"


def redact_url(url: str) -> str:
    """url with its credentials replaced by ***: the password (a user name before it stays), a lone
    user name (often a token), and secret query parameters. Text that does not parse as a URL is
    returned whole only when it cannot hold credentials (no '@' and no '://')."""
    try:
        parts = urlsplit(url)
        password = parts.password
        username = parts.username
    except ValueError:  # e.g. a bad port: do not guess which part is secret
        return REDACTED if ("@" in url or "://" in url) else url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostinfo = netloc.rsplit("@", 1)
        if password is not None:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{REDACTED}@{hostinfo}" if user else f":{REDACTED}@{hostinfo}"
        elif username is not None:
            netloc = f"{REDACTED}@{hostinfo}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name.lower() in _SECRET_PARAMS for name, _ in pairs):
            query = urlencode([(name, REDACTED if name.lower() in _SECRET_PARAMS else value)
                               for name, value in pairs], safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def join_url_path(base: str, path: str) -> str:
    """base with path appended to its path, before its query: `https://h/x?token=T` and `/v1/query`
    give `https://h/x/v1/query?token=T` (plain concatenation would put the path inside the query).
    A fragment is dropped: it never reaches a server."""
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))


def redact_text(text: str) -> str:
    """text with every URL in it redacted (for exception messages and log lines)."""
    if "://" not in text:
        return text
    return re.sub(_URL_IN_TEXT, _redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    """One URL found in text, redacted; punctuation that ends a sentence or clause ("POST url: why")
    is not part of it and stays."""
    url = match.group(0)
    kept = url.rstrip(":,.;)]")
    return redact_url(kept) + url[len(kept):]


def _is_secret_field(name: str) -> bool:
    return name.endswith(("_key", "password", "token", "secret"))


def redacted_repr(config: Any) -> str:
    """A dataclass's repr with its secrets hidden: fields named *_key/*password/*token/*secret
    show ***, URLs lose their credentials. Configs use it as their __repr__."""
    import dataclasses  # here: a run that never shows a config does not import it (nor inspect)

    shown = []
    for field in dataclasses.fields(config):
        if not field.repr:
            continue
        value = getattr(config, field.name)
        if value is not None and _is_secret_field(field.name):
            text = repr(REDACTED)
        elif isinstance(value, str) and "://" in value:
            text = repr(redact_url(value))
        else:
            text = repr(value)
        shown.append(f"{field.name}={text}")
    return f"{type(config).__qualname__}({', '.join(shown)})"


def parse_redis_url(url: str) -> tuple[str, bool]:
    """(url for redis-py, is_cluster): strips `+cluster` from the scheme and `cluster=` from the query."""
    parts = urlsplit(url)
    scheme = parts.scheme
    cluster = False
    if scheme.endswith("+cluster"):
        scheme, cluster = scheme[: -len("+cluster")], True
    query = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "cluster":
            cluster = cluster or value.strip().lower() in ("1", "true", "yes", "on")
        else:
            query.append((name, value))
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment)), cluster
