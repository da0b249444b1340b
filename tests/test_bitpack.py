"""serlaq._native.pack / unpack against a bit-by-bit numpy reference of the layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from serlaq import _native

KERNELS = _native.kernels()  # every kernel this build has and this CPU runs


def ref_pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Code i takes bits i*bits.. of its row, LSB-first; each row padded to a byte."""
    planes = (codes[..., None] >> np.arange(bits, dtype=np.uint8)) & 1
    flat = planes.reshape(*codes.shape[:-1], codes.shape[-1] * bits)
    return np.packbits(flat, axis=-1, bitorder="little")


def ref_unpack(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    b = np.unpackbits(packed, axis=-1, bitorder="little")[..., : count * bits]
    b = b.reshape(*packed.shape[:-1], count, bits).astype(np.uint16)
    return (b << np.arange(bits, dtype=np.uint16)).sum(-1).astype(np.uint8)


@st.composite
def codes_and_bits(draw: st.DrawFn, max_dims: int = 2) -> tuple[np.ndarray, int]:
    bits = draw(st.integers(1, 8))
    ndim = draw(st.integers(1, max_dims))
    shape = tuple(draw(st.lists(st.integers(0 if ndim == 1 else 1, 70), min_size=ndim, max_size=ndim)))
    codes = draw(arrays(np.uint8, shape, elements=st.integers(0, 2**bits - 1)))
    return codes, bits


@settings(max_examples=300, deadline=None)
@given(codes_and_bits())
def test_pack_matches_reference_and_round_trips(case: tuple[np.ndarray, int]) -> None:
    codes, bits = case
    for kernel in KERNELS:
        packed = _native.pack(codes, bits, kernel=kernel)
        np.testing.assert_array_equal(packed, ref_pack(codes, bits))
        assert packed.shape[-1] == -(-codes.shape[-1] * bits // 8)
        np.testing.assert_array_equal(_native.unpack(packed, bits, codes.shape[-1], kernel=kernel), codes)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8), st.integers(0, 100), st.integers(0, 2**32 - 1))
def test_unpack_of_arbitrary_bytes_matches_reference(bits: int, count: int, seed: int) -> None:
    # Any byte pattern, including set padding bits, decodes like the reference.
    rng = np.random.default_rng(seed)
    packed = rng.integers(0, 256, size=(3, -(-count * bits // 8)), dtype=np.uint8)
    for kernel in KERNELS:
        np.testing.assert_array_equal(_native.unpack(packed, bits, count, kernel=kernel), ref_unpack(packed, bits, count))


def test_layout_is_lsb_first() -> None:
    # The spec's example (docs/laq-format.md).
    packed = _native.pack(np.array([1, 2, 3, 0, 3, 1], np.uint8), 2)
    assert packed.tolist() == [0x39, 0x07]
    # A 3-bit code straddling bytes: 5, 7, 4 -> 101 111 001 (LSB-first).
    assert _native.pack(np.array([5, 7, 4], np.uint8), 3).tolist() == [0b0011_1101, 0b0000_0001]


def test_rows_are_byte_aligned_and_decodable_alone() -> None:
    codes = np.arange(5 * 11, dtype=np.uint8).reshape(5, 11) % 8
    packed = _native.pack(codes, 3)
    assert packed.shape == (5, 5)
    for r in range(5):
        np.testing.assert_array_equal(_native.unpack(packed[r], 3, 11), codes[r])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bits", range(1, 9))
def test_large_streams_match_reference(bits: int, kernel: str) -> None:
    # Above the size where the kernel splits work across threads.
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 2**bits, size=3_000_011, dtype=np.uint8)
    packed = _native.pack(codes, bits, kernel=kernel)
    np.testing.assert_array_equal(packed, ref_pack(codes, bits))
    np.testing.assert_array_equal(_native.unpack(packed, bits, codes.size, kernel=kernel), codes)


def test_non_contiguous_input_is_read_in_logical_order() -> None:
    codes = (np.arange(200, dtype=np.uint8) % 16).reshape(10, 20)
    view = codes[::2, ::3]
    np.testing.assert_array_equal(_native.pack(view, 4), ref_pack(np.ascontiguousarray(view), 4))


def test_bad_arguments_raise_clear_errors() -> None:
    codes = np.array([0, 1, 2, 3], np.uint8)
    for bits in (0, 9):
        with pytest.raises(ValueError, match="bits must be in 1..8"):
            _native.pack(codes, bits)
        with pytest.raises(ValueError, match="bits must be in 1..8"):
            _native.unpack(codes, bits, 4)
    with pytest.raises(ValueError, match=r"code 4 at index 2 does not fit in 2 bits"):
        _native.pack(np.array([1, 3, 4, 0], np.uint8), 2)
    with pytest.raises(ValueError, match=r"code 2 at index 7 does not fit in 1 bits"):
        _native.pack(np.array([[0, 1, 1, 0], [1, 0, 1, 2]], np.uint8), 1)
    with pytest.raises(TypeError, match="uint8"):
        _native.pack(codes.astype(np.int64), 2)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        _native.pack(np.zeros((2, 2, 2), np.uint8), 2)
    with pytest.raises(ValueError, match="need 2"):
        _native.unpack(np.zeros(3, np.uint8), 4, 4)
    with pytest.raises(ValueError, match="need 3"):
        _native.unpack(np.zeros((2, 2), np.uint8), 3, 8)
