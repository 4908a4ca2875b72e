"""Codec: what goes into a shared cache comes back only if it is ours, and is never executed."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scancache.cache.codec import Codec, CorruptEntry

json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text() | st.binary(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(value=json_like, compress=st.booleans())
def test_any_json_like_value_round_trips(value, compress):
    codec = Codec(compression_threshold=0 if compress else None)
    blob = codec.encode("key", value, 10.0, 20.0)
    assert codec.decode("key", blob) == (value, 10.0, 20.0)


@given(blob=st.binary(max_size=200))
def test_random_bytes_are_corrupt_never_anything_else(blob):
    for codec in (Codec(), Codec(signing_key="k" * 16)):
        try:
            codec.decode("key", blob)
        except CorruptEntry:
            pass


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle executed')",))


def test_a_pickle_payload_is_rejected_without_running():
    payload = pickle.dumps(_Boom())
    with pytest.raises(CorruptEntry):
        Codec().decode("key", payload)
    # Even dressed in our header, pickle bytes are not msgpack of the expected shape.
    with pytest.raises(CorruptEntry):
        Codec().decode("key", b"SC\x01\x00" + payload)


def test_signatures_bind_value_key_and_times():
    signer = Codec(signing_key="correct horse battery staple")
    blob = signer.encode("key", "value", 10.0, 20.0)
    assert signer.decode("key", blob) == ("value", 10.0, 20.0)
    with pytest.raises(CorruptEntry, match="signature"):
        signer.decode("other-key", blob)  # moved to another key
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(CorruptEntry):
        signer.decode("key", bytes(tampered))
    with pytest.raises(CorruptEntry, match="not signed"):
        signer.decode("key", Codec().encode("key", "value", 10.0, 20.0))
    with pytest.raises(CorruptEntry, match="signature"):
        signer.decode("key", Codec(signing_key="another key of 16+ chars").encode("key", "v", 1, 2))


def test_a_zstd_bomb_is_refused():
    import zstandard

    from scancache.cache import codec as codec_module

    body = zstandard.ZstdCompressor().compress(b"\x00" * (codec_module.MAX_BODY_BYTES + 1))
    with pytest.raises(CorruptEntry, match="zstd"):
        Codec().decode("key", b"SC\x01\x01" + body)


def test_compression_only_when_it_helps():
    codec = Codec(compression_threshold=16)
    small = codec.encode("k", "x" * 8, 1, 2)
    assert small[3] & 1 == 0
    big = codec.encode("k", "x" * 5000, 1, 2)
    assert big[3] & 1 == 1 and len(big) < 500


def test_unsupported_values_name_their_type():
    with pytest.raises(TypeError, match="set"):
        Codec().encode("k", {1, 2}, 1, 2)


def test_a_zstd_bomb_without_declared_size_is_refused():
    import zstandard

    from scancache.cache import codec as codec_module

    compressor = zstandard.ZstdCompressor(write_content_size=False)
    body = compressor.compress(b"\x00" * (codec_module.MAX_BODY_BYTES + 1))
    with pytest.raises(CorruptEntry, match="limit"):
        Codec().decode("key", b"SC\x01\x01" + body)


def test_integers_outside_64_bits_are_a_clear_type_error():
    with pytest.raises(TypeError, match="64-bit"):
        Codec().encode("k", 2**64, 1, 2)


def test_compress_false_leaves_a_large_value_uncompressed_and_readable():
    codec = Codec(compression_threshold=16, signing_key="k" * 16)
    plain = codec.encode("k", "x" * 5000, 1, 2, compress=False)
    assert plain[3] & 1 == 0 and len(plain) > 5000
    assert codec.decode("k", plain) == ("x" * 5000, 1.0, 2.0)
