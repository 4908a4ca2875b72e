"""VulnDBConfig: a CacheConfig plus the OSV/NVD endpoints, rate limits and retry policy."""

from __future__ import annotations

import os
from dataclasses import dataclass

from scancache.cache_config import CacheConfig
from scancache.config_fields import is_number, require
from scancache.env import setting

__all__ = ["VulnDBConfig", "DEFAULT_OSV_URL", "DEFAULT_NVD_URL"]

DEFAULT_OSV_URL = "https://api.osv.dev"
DEFAULT_NVD_URL = "https://services.nvd.nist.gov/rest/json/cves/2.0"


def _endpoint_url(name: str, url: object) -> str:
    """url checked to be http(s) (the scheme in any case; returned lower case) with a host and no
    fragment, trailing slashes of its path dropped. A query (a proxy's token) is kept: the API paths
    go before it. Errors show the URL with its credentials redacted."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        raise ValueError(f"{name}: must be an http(s) URL, got {url!r}")
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018  # raises ValueError for a bad port
    except ValueError:
        valid = False
    if not valid or "#" in url:
        # Only an error needs redact_url (scancache.cache.urls imports the scancache.cache package).
        from scancache.cache.urls import redact_url

        shown = redact_url(url)
        require(valid, name, f"must be an http(s) URL with a host, got {shown!r}")
        raise ValueError(f"{name}: must not have a #fragment (a server never sees one), got {shown!r}")
    scheme = parts.scheme.lower()
    rest = url[len(scheme):]
    return scheme + (rest if "?" in rest else rest.rstrip("/"))


@dataclass(repr=False, eq=False)  # CacheConfig's __repr__ (secrets redacted) and __eq__
class VulnDBConfig(CacheConfig):
    """Vulnerability settings. Empty results live negative_ttl_seconds; records are kept
    stale_ttl_seconds past expiry to answer while an API is down. NVD allows nvd_rate_limit
    requests per nvd_rate_window_seconds (5 per 30 s without a key, 50 with one).

    Retries: max_retries more attempts after the first, sleeping full-jitter backoff up to
    backoff_base_seconds * 2**attempt, or Retry-After; both capped at backoff_max_seconds.
    OSV: osv_batch_size queries per /v1/querybatch (OSV's limit is 1,000), osv_concurrency requests
    in flight (200: a cold 300-pin audit's 517 record GETs in 3 round trips, not uv's 11 at 50; OSV
    documents no rate limit, and over HTTP/2 they share one connection). NVD: nvd_page_size rows
    per page (at most 2,000). mirror_path: an OSVMirror file that answers package, commit and cve_id
    queries offline. max_response_bytes (64 MiB) caps one answer's
body: a larger one is a VulnDBError naming the endpoint. max_size defaults higher than CacheConfig's
    because every record is an entry of its own.
    """

    # Records are many and small: an audit of a few hundred packages outgrows CacheConfig's 1,000.
    max_size: int = 20000
    osv_url: str | None = None
    nvd_url: str | None = None
    nvd_api_key: str | None = None
    negative_ttl_seconds: float = 600
    stale_ttl_seconds: float = 86400
    timeout_seconds: float = 30.0
    max_retries: int = 4
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    nvd_rate_limit: int | None = None
    nvd_rate_window_seconds: float = 30.0
    osv_batch_size: int = 1000
    osv_concurrency: int = 200
    nvd_page_size: int = 2000
    mirror_path: str | os.PathLike[str] | None = None
    #: Largest OSV/NVD answer body read; a bigger one fails the run (VulnDBError), never the memory.
    max_response_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.osv_url is None:
            self.osv_url = setting("osv_url") or DEFAULT_OSV_URL
        if self.nvd_url is None:
            self.nvd_url = setting("nvd_url") or DEFAULT_NVD_URL
        if self.nvd_api_key is None:
            self.nvd_api_key = setting("nvd_api_key")
        for name in ("osv_url", "nvd_url"):
            setattr(self, name, _endpoint_url(name, getattr(self, name)))
        for name in ("negative_ttl_seconds", "timeout_seconds", "backoff_base_seconds",
                     "backoff_max_seconds", "nvd_rate_window_seconds"):
            value = getattr(self, name)
            require(is_number(value) and value >= 0, name, f"must be a number >= 0, got {value!r}")
        require(self.timeout_seconds > 0, "timeout_seconds", "must be positive")
        require(isinstance(self.max_retries, int) and self.max_retries >= 0, "max_retries",
                "must be an integer >= 0")
        require(isinstance(self.osv_batch_size, int) and 1 <= self.osv_batch_size <= 1000,
                "osv_batch_size", "must be an integer from 1 to 1000 (OSV's limit)")
        require(isinstance(self.osv_concurrency, int) and self.osv_concurrency >= 1,
                "osv_concurrency", "must be an integer >= 1")
        require(isinstance(self.nvd_page_size, int) and 1 <= self.nvd_page_size <= 2000,
                "nvd_page_size", "must be an integer from 1 to 2000 (NVD's limit)")
        require(isinstance(self.max_response_bytes, int) and not isinstance(self.max_response_bytes, bool)
                and self.max_response_bytes >= 1, "max_response_bytes", "must be an integer >= 1")
        if self.mirror_path is not None:
            require(isinstance(self.mirror_path, str | os.PathLike), "mirror_path",
                    f"must be a path, got {self.mirror_path!r}")
        #: True when nvd_rate_limit came from the key's presence (so a key given later may raise
        #: it); False when it was set explicitly, which a key never overrides. Not a field.
        self.nvd_rate_limit_derived = self.nvd_rate_limit is None
        if self.nvd_rate_limit is None:
            self.nvd_rate_limit = 50 if self.nvd_api_key else 5
        require(isinstance(self.nvd_rate_limit, int) and self.nvd_rate_limit >= 1,
                "nvd_rate_limit", "must be an integer >= 1")
