"""Host names: normalise (case, trailing dot, IDNA) and validate before anything is sent or cached.

Names compare case-insensitively without the trailing dot (RFC 4343), so "Example.COM." and
"example.com" share one cache entry. Internationalised names become their punycode (xn--) form.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["normalise_name", "ip_literal", "to_wire", "MAX_NAME_LENGTH", "MAX_LABEL_LENGTH", "NORMAL_NAME"]

MAX_NAME_LENGTH = 253  # characters in text form, without the trailing dot
MAX_LABEL_LENGTH = 63  # octets
# Letters, digits, hyphen (RFC 1123) and underscore (service names such as _dmarc, common in scans).
_LABEL = re.compile(r"[a-z0-9_-]{1,63}\Z")
_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\Z")  # the common case, in one match
#: Matches a name that normalise_name would return unchanged and that is no address literal (its last
#: label is not all digits; it has no ':'). Callers still check len <= MAX_NAME_LENGTH.
NORMAL_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*(?![0-9]*\Z)[a-z0-9_-]{1,63}\Z")


def normalise_name(hostname: str) -> str:
    """The lower-case ASCII form of hostname without the trailing dot; ValueError if it is not a name.

    Unicode names are IDNA-encoded ("bücher.de" -> "xn--bcher-kva.de"). Surrounding whitespace is
    ignored. Rejected: non-str, empty names or labels, labels over 63 octets, names over 253
    characters, characters other than letters, digits, '-' and '_'.
    """
    if not isinstance(hostname, str):
        raise ValueError(f"host name must be a str, got {type(hostname).__name__}")
    name = hostname.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise ValueError(f"empty host name: {hostname!r}")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise ValueError(f"invalid internationalised host name {hostname!r}: {exc}") from None
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"host name longer than {MAX_NAME_LENGTH} characters: {hostname[:60]!r}...")
    if _NAME.match(name):
        return name
    for label in name.split("."):  # find what is wrong, for the message
        if not _LABEL.match(label):
            if not label:
                raise ValueError(f"empty label in host name {hostname!r}")
            if len(label) > MAX_LABEL_LENGTH:
                raise ValueError(f"label longer than {MAX_LABEL_LENGTH} octets in {hostname!r}")
            raise ValueError(f"forbidden character in host name {hostname!r}")
    raise ValueError(f"invalid host name {hostname!r}")


def ip_literal(hostname: str) -> str | None:
    """The canonical text of hostname if it is an IPv4/IPv6 address literal, else None."""
    if not isinstance(hostname, str):
        return None
    text = hostname.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text or not (text[0].isdigit() or ":" in text):
        return None  # cheap reject for ordinary names
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def to_wire(name: str) -> bytes:
    """The uncompressed wire form of a normalised name (labels with length prefixes, root byte)."""
    return b"".join([_LENGTH_BYTE[len(label)] + label for label in name.encode("ascii").split(b".")]) \
        + b"\0"


_LENGTH_BYTE = [bytes([n]) for n in range(256)]
