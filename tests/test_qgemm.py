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


KERNELS = _native.kernels()


def gamma(k: int, u: float) -> float:
    return k * u / (1 - k * u)


def error_bound(codes, scale, zero, bias, x) -> np.ndarray:
    """serlaq_core::gemv::qgemm_error_bound, elementwise (see gemv.rs "Accuracy").

    The kernels sum q * x in float32 with at most ceil(cols / QGEMM_DOT_COLS_PER_ROUNDING)
    + QGEMM_DOT_EXTRA_ROUNDINGS roundings per product; sum(x) and the affine combination
    are float64, rounded once. Measured: errors stay under 1% of this bound.
    """
    cols = codes.shape[1]
    u = _native.F32_UNIT_ROUNDOFF
    k = -(-cols // _native.QGEMM_DOT_COLS_PER_ROUNDING) + _native.QGEMM_DOT_EXTRA_ROUNDINGS
    x64 = np.atleast_2d(x).astype(np.float64)
    s = np.broadcast_to(np.abs(scale.astype(np.float64)), (codes.shape[0],))
    z = np.broadcast_to(np.abs(zero.astype(np.float64)), (codes.shape[0],))
    abs_qx = np.abs(x64) @ codes.astype(np.float64).T  # (batch, rows)
    abs_zx = np.abs(x64).sum(axis=1, keepdims=True) * z
    b = 0.0 if bias is None else np.abs(bias.astype(np.float64))
    y = reference(codes, scale, zero, bias, np.atleast_2d(x))
    bound = (gamma(k, u) * s * abs_qx + u * np.abs(y) + gamma(cols + 4, 2.0**-53) * (s * (abs_qx + abs_zx) + b)
             + np.finfo(np.float32).tiny)
    return bound.reshape(y.shape if np.ndim(x) == 2 else y.shape[1:])


def outside(got: np.ndarray, want: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Indices of outputs further from the reference than their bound."""
    return np.argwhere(np.abs(got.astype(np.float64) - want) > bound)


def test_registry_names_the_running_kernel() -> None:
    assert KERNELS[0] == "portable"
    assert _native.kernel() in KERNELS
    with pytest.raises(ValueError, match="not available here"):
        _native.qgemm(np.zeros((1, 1), np.uint8), 8, 1, [1.0], [0.0], None, [1.0], kernel="sse9")


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
    want, bound = reference(codes, scale, zero, bias, x), error_bound(codes, scale, zero, bias, x)
    for kernel in KERNELS:
        y = _native.qgemm(_native.pack(codes, bits), bits, cols, scale, zero, bias, x, kernel=kernel)
        assert y.dtype == np.float32
        assert y.shape == ((batch, rows) if batch else (rows,))
        assert outside(y, want, bound).size == 0, kernel


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize(("rows", "cols", "batch"), [(33, 520, 1), (33, 520, 3), (7, 65, 2), (40, 1100, 1)])
def test_bit_exact_on_exactly_representable_inputs(kernel: str, bits: int, rows: int, cols: int, batch: int) -> None:
    # Integer x and zero points, power-of-two scales, bias in eighths: no sum any kernel
    # forms is rounded, so every kernel must give the reference's float32 bits.
    rng = np.random.default_rng(bits * 1000 + cols)
    codes = rng.integers(0, 2**bits, size=(rows, cols), dtype=np.uint8)
    scale = (2.0 ** -rng.integers(0, 8, size=rows)).astype(np.float32)
    zero = rng.integers(0, 2**bits, size=rows).astype(np.float32)
    bias = (rng.integers(-16, 17, size=rows) / 8).astype(np.float32)
    x = rng.integers(-4, 5, size=(batch, cols)).astype(np.float32)
    y = _native.qgemm(_native.pack(codes, bits), bits, cols, scale, zero, bias, x, kernel=kernel)
    np.testing.assert_array_equal(y, reference(codes, scale, zero, bias, x).astype(np.float32))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("bits", "rows", "cols", "batch"),
                         [(8, 33, 520, 1), (8, 33, 520, 4), (4, 33, 520, 1), (3, 7, 65, 2), (2, 9, 257, 1), (1, 2, 180, 5)])
def test_one_wrong_code_fails_the_comparison(kernel: str, bits: int, rows: int, cols: int, batch: int) -> None:
    # The bound is tighter than one code step: compared with the reference of a matrix
    # that differs in one code (by one, at the column of largest |x|), the output fails.
    rng = np.random.default_rng(bits + cols)
    codes, scale, zero, bias = make_layer(rng, rows, cols, bits, per_row=True)
    x = rng.uniform(-1, 1, size=(batch, cols)).astype(np.float32)
    y = _native.qgemm(_native.pack(codes, bits), bits, cols, scale, zero, bias, x, kernel=kernel)
    assert outside(y, reference(codes, scale, zero, bias, x), error_bound(codes, scale, zero, bias, x)).size == 0
    wrong = codes.copy()
    r, c = rows // 2, int(np.abs(x[0]).argmax())
    wrong[r, c] = codes[r, c] - 1 if codes[r, c] == 2**bits - 1 else codes[r, c] + 1
    bad = outside(y, reference(wrong, scale, zero, bias, x), error_bound(wrong, scale, zero, bias, x))
    assert [0, r] in bad.tolist()


@pytest.mark.parametrize(
    ("rows", "cols", "batch", "bits"),
    [(2100, 2050, 1, 4), (2100, 2050, 1, 2), (300, 700, 70, 3), (256, 512, 2, 1), (130, 180, 33, 2)],
)
def test_large_layers_and_batches(rows: int, cols: int, batch: int, bits: int) -> None:
    # Sizes that take the multi-threaded path and more than one pass of 64 batch rows.
    rng = np.random.default_rng(rows + cols)
    codes, scale, zero, bias = make_layer(rng, rows, cols, bits, per_row=True)
    x = rng.normal(size=(batch, cols)).astype(np.float32)
    want, bound = reference(codes, scale, zero, bias, x), error_bound(codes, scale, zero, bias, x)
    for kernel in KERNELS:
        y = _native.qgemm(_native.pack(codes, bits), bits, cols, scale, zero, bias, x, kernel=kernel)
        assert outside(y, want, bound).size == 0, kernel


def test_agrees_with_torch_linear_on_the_dequantized_weight() -> None:
    rng = np.random.default_rng(0)
    codes, scale, zero, bias = make_layer(rng, 64, 180, 2, per_row=False)
    w = torch.from_numpy(scale[0] * (codes.astype(np.float32) - zero[0]))
    x = torch.randn(8, 180)
    expected = torch.nn.functional.linear(x, w, torch.from_numpy(bias)).numpy()
    got = _native.qgemm(_native.pack(codes, 2), 2, 180, scale, zero, bias, x.numpy())
    # torch's float32 product has its own error: at most gamma(cols + 2) * sum |w x| + |b|.
    u = _native.F32_UNIT_ROUNDOFF
    torch_err = gamma(180 + 2, u) * (np.abs(x.numpy()) @ np.abs(w.numpy()).T + np.abs(bias))
    bound = error_bound(codes, scale, zero, bias, x.numpy()) + torch_err
    assert outside(got, expected.astype(np.float64), bound).size == 0


def test_binary_layer_is_alpha_times_sign() -> None:
    rng = np.random.default_rng(1)
    signs = rng.choice([-1.0, 1.0], size=(16, 33)).astype(np.float32)
    alpha = np.float32(0.37)
    codes = (signs > 0).astype(np.uint8)
    x = rng.normal(size=33).astype(np.float32)
    scale, zero = np.array([2 * alpha], np.float32), np.array([0.5], np.float32)
    for kernel in KERNELS:
        y = _native.qgemm(_native.pack(codes, 1), 1, 33, scale, zero, None, x, kernel=kernel)
        assert outside(y, (alpha.astype(np.float64) * signs) @ x.astype(np.float64),
                       error_bound(codes, scale, zero, None, x)).size == 0


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
