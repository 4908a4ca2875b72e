"""DNSConfig: a CacheConfig plus the DNS policy (TTL clamps, negative and stale windows, servers)."""

from __future__ import annotations

from dataclasses import dataclass

from scancache.cache_config import CacheConfig
from scancache.config_fields import is_number, require, split_list
from scancache.env import setting

__all__ = ["DNSConfig", "parse_nameserver"]


def parse_nameserver(text: str) -> tuple[str, int]:
    """("ip", port) from "ip", "ip:port", "[v6]:port" or "v6"; ValueError for anything else."""
    import ipaddress

    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"nameserver: expected 'ip' or 'ip:port', got {text!r}")
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"nameserver: bad address {text!r}")
        if rest:
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"nameserver: {host!r} is not an IP address (in {text!r})") from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"nameserver: bad port in {whole!r}")
    return int(text)


@dataclass(repr=False, eq=False)  # CacheConfig's __repr__ (secrets redacted) and __eq__
class DNSConfig(CacheConfig):
    """DNS settings. ttl_seconds (inherited) is the ceiling for a record's TTL; min_ttl_seconds the
    floor; negative answers (NXDOMAIN, NODATA) live for their SOA minimum clamped to
    negative_ttl_seconds; answers are kept stale_ttl_seconds past expiry to serve when upstream fails.
    """

    min_ttl_seconds: float = 5
    negative_ttl_seconds: float = 300
    stale_ttl_seconds: float = 3600
    nameservers: list[str] | None = None
    timeout_seconds: float = 2.0
    attempts: int = 3
    prefetch: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("min_ttl_seconds", "negative_ttl_seconds", "timeout_seconds"):
            value = getattr(self, name)
            require(is_number(value) and value >= 0, name, f"must be a number >= 0, got {value!r}")
        require(self.timeout_seconds > 0, "timeout_seconds", "must be positive")
        require(self.min_ttl_seconds <= self.ttl_seconds, "min_ttl_seconds",
                "must not exceed ttl_seconds")
        require(isinstance(self.attempts, int) and self.attempts >= 1, "attempts",
                "must be an integer >= 1")
        servers: list[str] | str | None = self.nameservers
        if servers is None:
            servers = setting("nameservers")
        if isinstance(servers, str):  # "ip, ip:port" from the environment or a file
            servers = split_list(servers)
        self.nameservers = servers
        if self.nameservers is not None:
            require(isinstance(self.nameservers, list), "nameservers", "must be a list")
            for server in self.nameservers:
                parse_nameserver(server)
