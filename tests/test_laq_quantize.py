"""Quantizers: the paper's binary and affine formulas, per channel, range search, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from serlaq.laq.quantize import (
    QuantScheme,
    affine_minmax,
    affine_range_search,
    binary,
    dequantize,
    quantize,
    relative_rmse,
)


def test_binary_per_tensor_by_hand() -> None:
    w = np.array([[1.0, -3.0], [0.5, -0.5]])  # alpha = mean|w| = 1.25
    q = binary(w)
    assert q.bits == 1 and q.quantizer == "binary" and q.granularity == "tensor"
    np.testing.assert_array_equal(q.codes, [[1, 0], [1, 0]])
    np.testing.assert_array_equal(q.scale, np.float32([2.5]))
    np.testing.assert_array_equal(q.zero, np.float32([0.5]))
    np.testing.assert_array_equal(q.dequantize().numpy(), [[1.25, -1.25], [1.25, -1.25]])


def test_binary_per_channel_scales_each_row_by_its_mean_abs() -> None:
    q = binary(np.array([[1.0, -3.0], [0.5, -0.5]]), per_channel=True)
    assert q.granularity == "channel"
    np.testing.assert_array_equal(q.scale, np.float32([4.0, 1.0]))
    np.testing.assert_array_equal(q.dequantize().numpy(), [[2.0, -2.0], [0.5, -0.5]])


def test_binary_maps_zero_to_plus_alpha() -> None:
    q = binary(np.array([[0.0, -2.0]]))
    np.testing.assert_array_equal(q.codes, [[1, 0]])


def test_affine_minmax_two_bits_by_hand() -> None:
    # scale = (2 - -1) / 3 = 1, zero = round(1 / 1) = 1, q = clamp(rint(w / 1) + 1, 0, 3);
    # rint rounds halves to even: -0.5 -> -0 and 0.5 -> 0
    w = np.array([[-1.0, -0.5, 0.0, 0.5, 2.0]])
    q = affine_minmax(w, 2)
    assert q.scale[0] == 1.0 and q.zero[0] == 1.0
    np.testing.assert_array_equal(q.codes, [[0, 1, 1, 1, 3]])
    np.testing.assert_array_equal(q.dequantize().numpy(), [[-1.0, 0.0, 0.0, 0.0, 2.0]])


def test_affine_minmax_clamps_codes_of_a_range_the_integer_zero_shifts() -> None:
    # scale = 2/3; -min/scale is ~1.5 so the integer zero leaves the top level short of max
    w = np.array([[-1.0, 1.0]])
    q = affine_minmax(w, 2)
    assert int(q.codes.max()) <= 3
    assert q.zero[0] == np.rint(1.0 / np.float64(np.float32(2 / 3)))


def test_affine_minmax_eight_bits_is_close_and_on_its_grid() -> None:
    w = torch.randn(32, 48, generator=torch.Generator().manual_seed(1))
    q = affine_minmax(w, 8)
    deq = q.dequantize()
    scale = float(q.scale[0])
    err = (deq - w).abs().numpy()
    interior = (q.codes > 0) & (q.codes < 255)
    # an unclamped weight is rounded to the nearest level: at most half a step off (+ f32 rounding)
    assert err[interior].max() <= 0.5 * scale * (1 + 1e-5)
    # the two end codes hold min and max: the integer zero point shifts them by at most half a step
    assert err[~interior].max() <= 0.5 * scale * (1 + 1e-5)
    steps = (deq / float(q.scale[0])).numpy()
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("range_search", [False, True])
def test_codes_scales_and_dequantization_follow_the_runtime_formula(bits: int, per_channel: bool, range_search: bool) -> None:
    w = torch.randn(17, 23, generator=torch.Generator().manual_seed(bits)) * 0.1
    q = quantize(w, bits, QuantScheme(per_channel, range_search))
    assert q.codes.dtype == np.uint8 and q.codes.shape == (17, 23)
    assert int(q.codes.max()) < 2**bits
    rows = 17 if per_channel else 1
    assert q.scale.dtype == np.float32 and q.scale.shape == (rows,) and q.zero.shape == (rows,)
    # exactly the decode the Rust GEMV performs: f32 scale * (f32 code - f32 zero)
    want = q.scale.reshape(-1, 1) * (q.codes.astype(np.float32) - q.zero.reshape(-1, 1))
    np.testing.assert_array_equal(q.dequantize().numpy(), want.astype(np.float32))
    assert q.packed_bytes() == 17 * ((23 * bits + 7) // 8)


def test_error_shrinks_as_bits_grow() -> None:
    w = torch.randn(64, 64, generator=torch.Generator().manual_seed(3))
    errs = [relative_rmse(w, affine_minmax(w, b)) for b in range(2, 9)]
    assert all(a > b for a, b in zip(errs, errs[1:]))


def test_range_search_beats_minmax_at_two_bits_on_gaussian_weights() -> None:
    # the measured failure: per-tensor 2-bit min-max reconstructs worse than binary
    w = torch.randn(256, 128, generator=torch.Generator().manual_seed(4)) * 0.05
    minmax, searched, one_bit = affine_minmax(w, 2), affine_range_search(w, 2), binary(w)
    assert relative_rmse(w, minmax) > relative_rmse(w, one_bit)
    assert relative_rmse(w, searched) < 0.7 * relative_rmse(w, minmax)
    assert relative_rmse(w, searched) < relative_rmse(w, one_bit)


@settings(max_examples=40, deadline=None)
@given(
    w=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 9)), elements=st.floats(-4, 4, width=32)),
    bits=st.integers(2, 8),
    per_channel=st.booleans(),
)
def test_range_search_is_never_worse_than_minmax(w: np.ndarray, bits: int, per_channel: bool) -> None:
    a = affine_minmax(w, bits, per_channel)
    r = affine_range_search(w, bits, per_channel)
    err_a = float(((a.dequantize().double().numpy() - w) ** 2).sum())
    err_r = float(((r.dequantize().double().numpy() - w) ** 2).sum())
    assert err_r <= err_a * (1 + 1e-6) + 1e-12
    assert int(r.codes.max()) < 2**bits


@pytest.mark.parametrize("bits", [1, 2, 5, 8])
@pytest.mark.parametrize("value", [-0.7, 0.0, 1.5])
@pytest.mark.parametrize("range_search", [False, True])
def test_constant_tensors_are_stored_exactly(bits: int, value: float, range_search: bool) -> None:
    w = torch.full((3, 4), value)
    q = quantize(w, bits, QuantScheme(range_search=range_search))
    np.testing.assert_array_equal(q.dequantize().numpy(), np.full((3, 4), np.float32(value)))
    if value == 0.0:
        assert q.scale[0] == 0.0


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1)])
@pytest.mark.parametrize("bits", [1, 3, 8])
@pytest.mark.parametrize("per_channel", [False, True])
def test_tiny_tensors(shape: tuple[int, int], bits: int, per_channel: bool) -> None:
    w = torch.tensor([0.3, -0.2])[: shape[0] * shape[1]].reshape(shape)
    q = quantize(w, bits, QuantScheme(per_channel=per_channel))
    assert q.codes.shape == shape
    if shape == (1, 1) or (per_channel and shape == (2, 1)):
        # one value per scale group reconstructs exactly
        np.testing.assert_array_equal(q.dequantize().numpy(), w.numpy())


def test_per_channel_constant_rows_do_not_break_other_rows() -> None:
    w = np.array([[0.5, 0.5, 0.5], [-1.0, 0.0, 1.0]])
    q = affine_minmax(w, 2, per_channel=True)
    deq = q.dequantize().numpy()
    np.testing.assert_array_equal(deq[0], np.float32([0.5, 0.5, 0.5]))
    np.testing.assert_allclose(deq[1], [-1.0, 0.0, 1.0], atol=0.34)


@pytest.mark.parametrize("bits", [0, 9, 2.5])
def test_bits_out_of_range_are_rejected(bits: object) -> None:
    with pytest.raises(ValueError, match="bits"):
        quantize(torch.ones(2, 2), bits)  # type: ignore[arg-type]


def test_non_finite_weights_are_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        quantize(torch.tensor([[1.0, float("nan")]]), 4)


def test_dequantize_broadcasts_per_row() -> None:
    codes = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    out = dequantize(codes, np.float32([1.0, 0.5]), np.float32([1.0, 0.0]))
    np.testing.assert_array_equal(out.numpy(), [[-1.0, 0.0], [1.0, 1.5]])


def test_layer_dict_is_what_write_laq_takes() -> None:
    q = quantize(torch.randn(4, 5), 3)
    d = q.layer_dict("net.0", np.zeros(4, np.float32))
    assert set(d) == {"name", "bits", "quantizer", "codes", "scale", "zero", "bias"}
    assert d["codes"].dtype == np.uint8 and d["scale"].dtype == np.float32 and d["bias"].dtype == np.float32
    assert d["quantizer"] == "affine" and d["bits"] == 3
