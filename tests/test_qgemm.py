"""serlaq._native.qgemm against a float64 decode-then-matmul reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from serlaq import _native


def make_layer(rng: np.random.Generator, rows: int, cols: int, bits: int, per_row: bool):
    codes = rng.integers(0, 2**bits, size=(rows, cols), dtype=np.uint8)
    n = rows if per_row else 1
    scale = rng.uniform(0.001, 0.2, size=n).astype(np.float32)
    zero = rng.integers(0, 2**bits, size=n).astype(np.float32) + rng.uniform(-0.5, 0.5, size=n).astype(np.float32)
    bias = rng.normal(size=rows).astype(np.float32)
    return codes, scale, zero, bias


def reference(codes, scale, zero, bias, x) -> np.ndarray:
    # (1,) or (rows,) parameters broadcast over the rows alike.
    w = scale[:, None].astype(np.float64) * (codes.astype(np.float64) - zero[:, None].astype(np.float64))
    y = x.astype(np.float64) @ w.T
    return y + (0.0 if bias is None else bias.astype(np.float64))


def tolerance(codes: np.ndarray, scale: np.ndarray, x: np.ndarray, bits: int) -> float:
    # The kernel sums codes * x in float32 and subtracts zero * sum(x): error grows with
    # the magnitude of those sums.
    return 2e-6 * codes.shape[1] * (2**bits) * float(scale.max()) * max(1.0, float(np.abs(x).max())) + 1e-5


@settings(max_examples=150, deadline=None)
@given(
    bits=st.integers(1, 8),
    rows=st.integers(1, 40),
    cols=st.integers(1, 300),
    batch=st.integers(0, 9),
    per_row=st.booleans(),
    with_bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_qgemm_matches_reference(bits, rows, cols, batch, per_row, with_bias, seed) -> None:
    rng = np.random.default_rng(seed)
    codes, scale, zero, bias = make_layer(rng, rows, cols, bits, per_row)
    bias = bias if with_bias else None
    x = rng.normal(size=(batch, cols) if batch else (cols,)).astype(np.float32)
    y = _native.qgemm(_native.pack(codes, bits), bits, cols, scale, zero, bias, x)
    assert y.dtype == np.float32
    assert y.shape == ((batch, rows) if batch else (rows,))
    np.testing.assert_allclose(y, reference(codes, scale, zero, bias, x), rtol=0, atol=tolerance(codes, scale, x, bits))


@pytest.mark.parametrize(
    ("rows", "cols", "batch", "bits"),
    [(2100, 2050, 1, 4), (2100, 2050, 1, 2), (300, 700, 70, 3), (256, 512, 2, 1), (130, 180, 33, 2)],
)
def test_large_layers_and_batches(rows: int, cols: int, batch: int, bits: int) -> None:
    # Sizes that take the multi-threaded path and more than one pass of 64 batch rows.
    rng = np.random.default_rng(rows + cols)
    codes, scale, zero, bias = make_layer(rng, rows, cols, bits, per_row=True)
    x = rng.normal(size=(batch, cols)).astype(np.float32)
    y = _native.qgemm(_native.pack(codes, bits), bits, cols, scale, zero, bias, x)
    np.testing.assert_allclose(y, reference(codes, scale, zero, bias, x), rtol=0, atol=tolerance(codes, scale, x, bits))


def test_agrees_with_torch_linear_on_the_dequantized_weight() -> None:
    rng = np.random.default_rng(0)
    codes, scale, zero, bias = make_layer(rng, 64, 180, 2, per_row=False)
    w = torch.from_numpy(scale[0] * (codes.astype(np.float32) - zero[0]))
    x = torch.randn(8, 180)
    expected = torch.nn.functional.linear(x, w, torch.from_numpy(bias)).numpy()
    got = _native.qgemm(_native.pack(codes, 2), 2, 180, scale, zero, bias, x.numpy())
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_binary_layer_is_alpha_times_sign() -> None:
    rng = np.random.default_rng(1)
    signs = rng.choice([-1.0, 1.0], size=(16, 33)).astype(np.float32)
    alpha = np.float32(0.37)
    codes = (signs > 0).astype(np.uint8)
    x = rng.normal(size=33).astype(np.float32)
    y = _native.qgemm(_native.pack(codes, 1), 1, 33, np.array([2 * alpha]), np.array([0.5]), None, x)
    np.testing.assert_allclose(y, (alpha * signs) @ x, atol=1e-5)


def test_inputs_of_other_float_types_are_converted() -> None:
    codes = np.array([[1, 2, 3]], np.uint8)
    y = _native.qgemm(_native.pack(codes, 2), 2, 3, [1.0], [0.0], None, np.array([1.0, 1.0, 1.0]))
    assert y.dtype == np.float32 and y.tolist() == [6.0]


def test_bad_shapes_raise_value_errors() -> None:
    packed = _native.pack(np.zeros((4, 10), np.uint8), 4)
    one, x = np.ones(1, np.float32), np.ones(10, np.float32)
    with pytest.raises(ValueError, match="last dimension must be 10"):
        _native.qgemm(packed, 4, 10, one, one, None, np.ones(9, np.float32))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        _native.qgemm(packed, 4, 10, one, one, None, np.ones((1, 1, 10), np.float32))
    with pytest.raises(ValueError, match="need 4"):
        _native.qgemm(packed, 4, 8, one, one, None, np.ones(8, np.float32))
    with pytest.raises(ValueError, match="scale has length 3"):
        _native.qgemm(packed, 4, 10, np.ones(3, np.float32), one, None, x)
    with pytest.raises(ValueError, match="bias has length 2"):
        _native.qgemm(packed, 4, 10, one, one, np.ones(2, np.float32), x)
    with pytest.raises(ValueError, match="bits must be in 1..8"):
        _native.qgemm(packed, 0, 10, one, one, None, x)
    with pytest.raises(ValueError, match="2-D"):
        _native.qgemm(packed.ravel(), 4, 10, one, one, None, x)
