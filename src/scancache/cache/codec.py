"""Value encoding: msgpack (never pickle), zstd above a threshold, optional HMAC signature.

Layout of an encoded entry:  b"SC" | version (1 byte) | flags (1 byte) | [HMAC-SHA256, 32 bytes] | body
body = msgpack([expires_at, stale_until, value]), zstd-compressed when flag 1 is set.
The signature covers the key, the header and the body, so an entry copied to another key, or with its
times changed, fails verification. Decoding never executes anything: msgpack builds plain data only.
"""

from __future__ import annotations

from typing import Any

from scancache.cache._threads import local

__all__ = ["Codec", "CorruptEntry"]

_MAGIC = b"SC"
_VERSION = 1
_FLAG_ZSTD = 1
_FLAG_SIGNED = 2
_HEADER_LEN = 4
_TIME_TYPES = (int, float)
_SIG_LEN = 32
#: A thread's Packer that packed more than this is dropped (its grown buffer would stay allocated).
_BIG_PACK_BYTES = 1 << 20
#: Decompressed bodies larger than this are refused (a planted zstd bomb is a miss, not an OOM).
MAX_BODY_BYTES = 64 * 1024 * 1024


class CorruptEntry(ValueError):
    """Bytes read back from a backend that are not a valid (or validly signed) scancache entry."""


def _reject_unknown(obj: Any) -> Any:
    if isinstance(obj, int):
        raise TypeError(f"integer {obj} cannot be cached: outside the 64-bit range msgpack stores")
    raise TypeError(
        f"value of type {type(obj).__name__} cannot be cached: use None, bool, int, float, str, "
        "bytes, list, tuple or dict"
    )


class Codec:
    """Turns values into bytes and back, with compression and signing as configured."""

    def __init__(
        self,
        *,
        compression_threshold: int | None = 1024,
        signing_key: str | bytes | None = None,
    ) -> None:
        import msgpack  # lazy: keeps `import scancache` cheap

        self._packer_class = msgpack.Packer
        self._unpackb = msgpack.unpackb
        self.compression_threshold = compression_threshold
        self._key = signing_key.encode() if isinstance(signing_key, str) else signing_key
        if self._key is not None:
            # Only a signing cache imports them: hashlib loads OpenSSL (~3 ms), which an unsigned
            # cache (the CLI's default) never needs.
            import hashlib
            import hmac

            self._hmac_new = hmac.new
            self._sha256 = hashlib.sha256
            self._compare_digest = hmac.compare_digest
        # Packers and zstd (de)compressors are not thread-safe: one of each per thread. A per-thread
        # Packer costs a thread-local lookup (~50 ns) where a shared one needed a lock (~250 ns).
        self._local = local()

    def _pack(self, obj: Any) -> bytes:
        try:
            pack = self._local.pack
        except AttributeError:
            pack = self._local.pack = self._packer_class(default=_reject_unknown, use_bin_type=True).pack
        data = pack(obj)  # a failed pack resets the Packer's buffer: the next call starts clean
        if len(data) > _BIG_PACK_BYTES:
            del self._local.pack  # its buffer grew to fit this value: free it, not one per thread
        return data

    def size_of(self, value: Any) -> int:
        """Serialized (msgpack) size of value in bytes, exactly; raises TypeError for values that
        cannot be cached. Cost: one pack, ~0.2 us for a small value (a Python-level estimate measured
        no faster for the small values of the hot paths, and 2-3x slower for larger ones)."""
        return len(self._pack(value))

    def encode(self, key: str, value: Any, expires_at: float, stale_until: float,
               compress: bool = True) -> bytes:
        """Bytes for one entry; raises TypeError for values that cannot be cached. compress=False:
        never compressed, whatever its size (see Cache.set)."""
        body = self._pack([expires_at, stale_until, value])
        flags = 0
        if (compress and self.compression_threshold is not None
                and len(body) >= self.compression_threshold):
            compressed = self._compressor().compress(body)
            if len(compressed) < len(body):
                body, flags = compressed, flags | _FLAG_ZSTD
        if self._key is None:
            return _MAGIC + bytes((_VERSION, flags)) + body
        flags |= _FLAG_SIGNED
        header = _MAGIC + bytes((_VERSION, flags))
        return header + self._sign(key, header, body) + body

    def decode(self, key: str, blob: bytes) -> tuple[Any, float, float]:
        """(value, expires_at, stale_until) from bytes; CorruptEntry if invalid or badly signed."""
        if type(blob) is not bytes:
            if not isinstance(blob, bytearray | memoryview):
                raise CorruptEntry(f"expected bytes, got {type(blob).__name__}")
            blob = bytes(blob)
        if len(blob) < _HEADER_LEN or blob[:2] != _MAGIC or blob[2] != _VERSION:
            raise CorruptEntry("not a scancache entry")
        flags = blob[3]
        if flags == 0 and self._key is None:  # the common case: plain msgpack, no copy of the header
            return self._unpack_body(blob[_HEADER_LEN:])
        header = blob[:_HEADER_LEN]
        if flags & _FLAG_SIGNED:
            if self._key is None:
                raise CorruptEntry("entry is signed but this cache has no signing_key")
            signature = blob[_HEADER_LEN:_HEADER_LEN + _SIG_LEN]
            body = blob[_HEADER_LEN + _SIG_LEN:]
            if not self._compare_digest(signature, self._sign(key, header, body)):
                raise CorruptEntry("bad signature")
        elif self._key is not None:
            raise CorruptEntry("entry is not signed")
        else:
            body = blob[_HEADER_LEN:]
        if flags & _FLAG_ZSTD:
            body = self._decompress(body)
        return self._unpack_body(body)

    def _unpack_body(self, body: bytes) -> tuple[Any, float, float]:
        try:
            decoded = self._unpackb(body, raw=False, strict_map_key=False, use_list=True)
        except Exception as exc:  # msgpack raises several types for garbage
            raise CorruptEntry(f"bad msgpack body: {exc}") from None
        if (
            type(decoded) is not list
            or len(decoded) != 3
            or type(decoded[0]) not in _TIME_TYPES
            or type(decoded[1]) not in _TIME_TYPES
        ):
            raise CorruptEntry("body is not [expires_at, stale_until, value]")
        return decoded[2], float(decoded[0]), float(decoded[1])

    def _decompress(self, body: bytes) -> bytes:
        """zstd-decompress at most MAX_BODY_BYTES: a frame declaring more (a bomb) is corrupt."""
        import zstandard

        try:
            declared = zstandard.frame_content_size(body)
            if declared > MAX_BODY_BYTES:
                raise CorruptEntry(f"bad zstd body: declares {declared} bytes")
            if declared >= 0:
                return self._decompressor().decompress(body)
            with self._decompressor().stream_reader(body) as reader:
                out = reader.read(MAX_BODY_BYTES + 1)
        except zstandard.ZstdError as exc:
            raise CorruptEntry(f"bad zstd body: {exc}") from None
        if len(out) > MAX_BODY_BYTES:
            raise CorruptEntry("bad zstd body: larger than the limit")
        return out

    def _sign(self, key: str, header: bytes, body: bytes) -> bytes:
        assert self._key is not None
        mac = self._hmac_new(self._key, key.encode("utf-8", "surrogatepass"), self._sha256)
        mac.update(b"\0")
        mac.update(header)
        mac.update(body)
        return mac.digest()

    def _compressor(self) -> Any:
        comp = getattr(self._local, "comp", None)
        if comp is None:
            import zstandard

            comp = self._local.comp = zstandard.ZstdCompressor(level=3)
        return comp

    def _decompressor(self) -> Any:
        dec = getattr(self._local, "dec", None)
        if dec is None:
            import zstandard

            dec = self._local.dec = zstandard.ZstdDecompressor()
        return dec
