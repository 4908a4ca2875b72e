"""Name normalisation and validation: case, trailing dot, IDNA, limits; arbitrary input never crashes."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scancache.dns.cache import DNSCache
from scancache.dns.config import DNSConfig
from scancache.dns.names import ip_literal, normalise_name, to_wire


@pytest.mark.parametrize(("raw", "expected"), [
    ("Example.COM", "example.com"),
    ("example.com.", "example.com"),
    ("  www.Example.com.\n", "www.example.com"),
    ("_dmarc.example.com", "_dmarc.example.com"),
    ("bücher.de", "xn--bcher-kva.de"),
    ("BÜCHER.de.", "xn--bcher-kva.de"),
    ("xn--bcher-kva.de", "xn--bcher-kva.de"),
    ("a" * 63 + ".test", "a" * 63 + ".test"),
])
def test_normalise(raw, expected):
    assert normalise_name(raw) == expected


@pytest.mark.parametrize("bad", [
    "", " ", ".", "..", "a..b", ".a", "a" * 64 + ".test", ".".join(["a" * 50] * 5),
    "exa mple.com", "exa/mple.com", "ex*ample.com", "semi;colon", "null\0byte", "tab\tname",
    "é" * 70 + ".de", 42, None, b"bytes.example",
])
def test_invalid_names_raise_value_error(bad):
    with pytest.raises(ValueError):
        normalise_name(bad)


def test_name_length_limit_is_253_characters():
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(name) == 253
    assert normalise_name(name) == name
    with pytest.raises(ValueError, match="253"):
        normalise_name(name + "d")


def test_ip_literals():
    assert ip_literal("192.0.2.1") == "192.0.2.1"
    assert ip_literal("[2001:DB8::1]") == "2001:db8::1"
    assert ip_literal("example.com") is None
    assert ip_literal("1.example.com") is None


def test_wire_form():
    assert to_wire("www.example.com") == b"\x03www\x07example\x03com\x00"


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_normalises_or_raises_value_error(text):
    try:
        name = normalise_name(text)
    except ValueError:
        return
    assert name == name.lower() and name.isascii() and 0 < len(name) <= 253
    assert all(0 < len(label) <= 63 for label in name.split("."))
    assert normalise_name(name) == name  # idempotent


@given(st.one_of(st.text(max_size=80),
                 st.from_regex(r"[A-Za-z0-9_-]{1,20}(\.[A-Za-z0-9_-]{1,20}){0,3}\.?", fullmatch=True)))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_resolve_arbitrary_text_gives_value_error_or_a_result(dns_server, text):
    async def run():
        async with DNSCache(DNSConfig(timeout_seconds=1.0), nameservers=[dns_server.address]) as dns:
            before = dns_server.total_queries
            try:
                result = await dns.resolve(text)
            except ValueError:
                assert dns_server.total_queries == before  # rejected before any query
                return
            assert isinstance(result, list)

    asyncio.run(run())
