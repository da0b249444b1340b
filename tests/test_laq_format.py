"""The `.laq` writer and reader through serlaq._native: round trip, determinism, atomic
writes, and clear LaqFormatError on every kind of damaged file."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serlaq import _native
from serlaq.errors import LaqFormatError, SerlaqError

METADATA = {
    "serlaq_version": "0.1.0",
    "labels": ["angry", "happy", "sad"],
    "features": {"sample_rate": 22050, "n_mfcc": 40},
    "architecture": {"type": "mlp", "input_dim": 12, "hidden": [16, 8], "activation": "relu", "num_classes": 3},
    "normalization": {"mean": "norm.mean", "std": "norm.std"},
    "laq": {"avg_bits": 1.9, "mode": "paper", "importance": [0.1, 0.25, 1e-7]},
}


def model_layers(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    layers = []
    for i, (rows, cols, bits, quantizer, per_row) in enumerate(
        [(16, 12, 3, "affine", True), (8, 16, 1, "binary", False), (3, 8, 8, "affine", False)]
    ):
        n = rows if per_row else 1
        layers.append(
            {
                "name": f"net.{3 * i}",
                "bits": bits,
                "quantizer": quantizer,
                "codes": rng.integers(0, 2**bits, size=(rows, cols), dtype=np.uint8),
                "scale": rng.uniform(0.01, 0.1, size=n).astype(np.float32),
                "zero": np.full(n, 0.5 if quantizer == "binary" else 3.0, np.float32),
                "bias": None if i == 1 else rng.normal(size=rows).astype(np.float32),
            }
        )
    return layers


def tensors() -> dict[str, np.ndarray]:
    return {
        "norm.std": np.linspace(0.5, 2.0, 12, dtype=np.float32),
        "norm.mean": np.linspace(-1.0, 1.0, 12, dtype=np.float32),
    }


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.laq"
    _native.write_laq(str(path), json.dumps(METADATA), model_layers(), tensors())
    return path


def refresh_crc(data: bytearray) -> bytearray:
    data[24:28] = struct.pack("<I", zlib.crc32(bytes(data[28:]), zlib.crc32(bytes(data[:24]))))
    return data


def test_round_trip_is_exact(model_file: Path) -> None:
    f = _native.LaqFile(str(model_file))
    layers = model_layers()
    assert f.version == _native.FORMAT_VERSION == 1
    assert f.file_size == model_file.stat().st_size
    assert json.loads(f.metadata_json) == METADATA
    info = f.layers()
    assert [d["name"] for d in info] == ["net.0", "net.3", "net.6"]
    assert info[0] == {
        "name": "net.0", "rows": 16, "cols": 12, "bits": 3, "quantizer": "affine",
        "granularity": "channel", "has_bias": True, "packed_bytes": 16 * 5,
    }
    assert (info[1]["quantizer"], info[1]["granularity"], info[1]["has_bias"]) == ("binary", "tensor", False)
    for i, layer in enumerate(layers):
        np.testing.assert_array_equal(f.codes(i), layer["codes"])
        np.testing.assert_array_equal(f.packed(i), _native.pack(layer["codes"], layer["bits"]))
        np.testing.assert_array_equal(f.scale(i), layer["scale"])
        np.testing.assert_array_equal(f.zero(i), layer["zero"])
        if layer["bias"] is None:
            assert f.bias(i) is None
        else:
            np.testing.assert_array_equal(f.bias(i), layer["bias"])
    assert f.tensor_names() == ["norm.mean", "norm.std"]
    for name, value in tensors().items():
        np.testing.assert_array_equal(f.tensor(name), value)
    assert f.codes(-1).shape == (3, 8)


def test_tensor_shapes_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "m.laq"
    grid = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    _native.write_laq(path, "{}", [], {"grid": grid, "scalar": np.float32(2.5)})
    f = _native.LaqFile(path)
    np.testing.assert_array_equal(f.tensor("grid"), grid)
    assert f.tensor("scalar").shape == () and float(f.tensor("scalar")) == 2.5


def test_same_inputs_give_byte_identical_files(tmp_path: Path, model_file: Path) -> None:
    again = tmp_path / "again.laq"
    # Same content, dict keys in another order: still the same bytes.
    reordered = dict(reversed(list(METADATA.items())))
    _native.write_laq(str(again), json.dumps(reordered), model_layers(), dict(reversed(list(tensors().items()))))
    assert again.read_bytes() == model_file.read_bytes()
    # Rewriting what the reader returns reproduces the file.
    f = _native.LaqFile(model_file)
    layers = [
        {"name": d["name"], "bits": d["bits"], "quantizer": d["quantizer"], "codes": f.codes(i),
         "scale": f.scale(i), "zero": f.zero(i), "bias": f.bias(i)}
        for i, d in enumerate(f.layers())
    ]
    rewrite = tmp_path / "rewrite.laq"
    _native.write_laq(rewrite, f.metadata_json, layers, {n: f.tensor(n) for n in f.tensor_names()})
    assert rewrite.read_bytes() == model_file.read_bytes()


def test_write_is_atomic_and_leaves_no_temporary_files(model_file: Path) -> None:
    before = model_file.read_bytes()
    layers = model_layers(seed=1)
    _native.write_laq(model_file, json.dumps(METADATA), layers, tensors())
    assert model_file.read_bytes() != before
    assert os.listdir(model_file.parent) == ["model.laq"]
    # A failing write (bad input) leaves the previous file untouched.
    good = model_file.read_bytes()
    layers[0]["codes"][0, 0] = 200
    with pytest.raises(ValueError, match=r"layer \"net.0\": code 200 at \(0, 0\) does not fit in 3 bits"):
        _native.write_laq(model_file, json.dumps(METADATA), layers, tensors())
    assert model_file.read_bytes() == good
    assert os.listdir(model_file.parent) == ["model.laq"]


def test_forward_runs_the_stored_layer(model_file: Path) -> None:
    f = _native.LaqFile(model_file)
    layer = model_layers()[0]
    x = np.random.default_rng(3).normal(size=(5, 12)).astype(np.float32)
    # Same bits as qgemm on the layer's own arrays, for every kernel.
    packed = _native.pack(layer["codes"], 3)
    for kernel in _native.kernels():
        for xb in (x, x[0]):  # batch 5 and batch 1 take different kernel paths
            want = _native.qgemm(packed, 3, 12, layer["scale"], layer["zero"], layer["bias"], xb, kernel=kernel)
            np.testing.assert_array_equal(f.forward(0, xb, kernel=kernel), want)
    # And close to the dequantized product (float64; the bound is tests/test_qgemm.py's).
    w = layer["scale"][:, None].astype(np.float64) * (layer["codes"] - layer["zero"][:, None].astype(np.float64))
    np.testing.assert_allclose(f.forward(0, x), x.astype(np.float64) @ w.T + layer["bias"], rtol=0, atol=1e-5)


def test_special_files_are_refused_without_blocking(tmp_path: Path) -> None:
    # A FIFO with no writer: a plain open() for reading would block forever.
    fifo = tmp_path / "pipe.laq"
    os.mkfifo(fifo)
    with pytest.raises(LaqFormatError, match=r"pipe.laq: not a regular file \(a named pipe\)"):
        _native.LaqFile(fifo)
    with pytest.raises(LaqFormatError, match=r"not a regular file \(a directory\)"):
        _native.LaqFile(tmp_path)


def test_non_zero_padding_in_the_data_region_is_rejected(model_file: Path) -> None:
    data = bytearray(model_file.read_bytes())
    header_len = struct.unpack("<I", data[12:16])[0]
    start = 32 + header_len
    header = json.loads(data[32:start])
    codes = header["layers"][0]["codes"]  # 16 rows x 5 bytes: 48 padding bytes follow
    at = codes["offset"] + codes["length"]
    data[start + at] = 1
    with pytest.raises(LaqFormatError, match=f"padding byte at offset {at} between layer 0"):
        _native.LaqFile.from_bytes(bytes(refresh_crc(data)))


def test_writer_rejects_bad_input_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.laq"

    def write(**change) -> None:
        layers = model_layers()
        layers[2].update(change)
        _native.write_laq(path, json.dumps(METADATA), layers, tensors())

    with pytest.raises(ValueError, match="unknown key 'scales'"):
        write(scales=1)
    with pytest.raises(ValueError, match="binary quantizer needs bits 1"):
        write(quantizer="binary")
    with pytest.raises(ValueError, match="'ternary' is not 'affine' or 'binary'"):
        write(quantizer="ternary")
    with pytest.raises(ValueError, match="bits must be in 1..8"):
        write(bits=9)
    with pytest.raises(TypeError, match="uint8"):
        write(codes=np.zeros((3, 8), np.int32))
    with pytest.raises(ValueError, match="scale and zero must both have length 1 or 3"):
        write(scale=np.ones(2, np.float32))
    with pytest.raises(ValueError, match="scale: value 0 is NaN"):
        write(scale=np.array([np.nan], np.float32))
    with pytest.raises(ValueError, match="bias has length 4"):
        write(bias=np.ones(4, np.float32))
    layers = model_layers()
    del layers[0]["zero"]
    with pytest.raises(ValueError, match=r"layers\[0\]: missing key 'zero'"):
        _native.write_laq(path, "{}", layers, {})
    with pytest.raises(ValueError, match="not valid JSON"):
        _native.write_laq(path, json.dumps({"a": float("nan")}), [], {})
    with pytest.raises(ValueError, match="must be a JSON object"):
        _native.write_laq(path, "[]", [], {})
    with pytest.raises(ValueError, match="duplicate layer name"):
        _native.write_laq(path, "{}", model_layers()[:1] * 2, {})
    assert not path.exists()


def test_read_errors_name_the_file_and_the_problem(tmp_path: Path, model_file: Path) -> None:
    data = bytearray(model_file.read_bytes())
    bad = tmp_path / "bad.laq"

    def error_for(content: bytes) -> str:
        bad.write_bytes(content)
        with pytest.raises(LaqFormatError) as err:
            _native.LaqFile(bad)
        assert str(bad) in str(err.value)
        assert isinstance(err.value, SerlaqError) and isinstance(err.value, ValueError)
        return str(err.value)

    assert "truncated" in error_for(bytes(data[:-1]))
    assert "truncated" in error_for(bytes(data[:20]))
    assert "truncated" in error_for(b"")
    assert "trailing bytes" in error_for(bytes(data) + b"\0")
    assert "bad magic" in error_for(b"RIFF" + bytes(data[4:]))
    assert "unsupported .laq format version 7" in error_for(bytes(refresh_crc(data[:8] + struct.pack("<I", 7) + data[12:])))
    huge = data[:12] + struct.pack("<I", 0xFFFF_FFF0) + data[16:]
    assert "exceeds" in error_for(bytes(refresh_crc(huge)))
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    assert "checksum mismatch" in error_for(bytes(flipped))

    with pytest.raises(FileNotFoundError, match="missing.laq"):
        _native.LaqFile(tmp_path / "missing.laq")
    with pytest.raises(LaqFormatError, match="<bytes>: truncated"):
        _native.LaqFile.from_bytes(bytes(data[:100]))


def test_structural_damage_behind_a_valid_checksum_is_caught(model_file: Path) -> None:
    data = bytearray(model_file.read_bytes())
    header_len = struct.unpack_from("<I", data, 12)[0]
    header = json.loads(data[32 : 32 + header_len])

    def with_header(h: dict) -> bytes:
        text = json.dumps(h, separators=(",", ":")).encode()
        assert len(text) <= header_len
        return bytes(refresh_crc(data[:32] + text.ljust(header_len) + data[32 + header_len :]))

    def message(h: dict) -> str:
        with pytest.raises(LaqFormatError) as err:
            _native.LaqFile.from_bytes(with_header(h))
        return str(err.value)

    h = json.loads(json.dumps(header))
    h["layers"][1]["codes"]["offset"] = h["layers"][0]["codes"]["offset"]
    assert "buffers overlap" in message(h)
    h = json.loads(json.dumps(header))
    h["layers"][0]["codes"]["offset"] = 2**62
    assert "runs past the data region" in message(h)
    h = json.loads(json.dumps(header))
    h["layers"][2]["bits"] = 9
    assert "bits 9 is not in 1..8" in message(h)
    h = json.loads(json.dumps(header))
    h["layers"][0]["rows"] = 15
    assert "buffer length" in message(h)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(["flip", "set", "truncate"]), st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    ),
    fix_checksum=st.booleans(),
)
def test_any_corruption_raises_laq_format_error(model_file: Path, edits, fix_checksum: bool) -> None:
    original = model_file.read_bytes()
    data = bytearray(original)
    for kind, where, value in edits:
        at = int(where * len(data))
        if kind == "flip":
            data[at] ^= 1 << (value % 8)
        elif kind == "set":
            data[at] = value
        else:
            del data[max(at, 1) :]
    if fix_checksum and len(data) >= 32:
        refresh_crc(data)
    try:
        f = _native.LaqFile.from_bytes(bytes(data))
    except LaqFormatError as err:
        assert str(err).startswith("<bytes>: ")
        return
    # Accepted only when the damage was undone or landed in a don't-care place (JSON
    # padding whitespace, zero padding between buffers) and the checksum was repaired:
    # then every accessor still works.
    for i in range(len(f.layers())):
        f.codes(i), f.scale(i), f.zero(i), f.bias(i), f.forward(i, np.ones(f.layers()[i]["cols"], np.float32))
    for name in f.tensor_names():
        f.tensor(name)


def test_index_and_name_errors(model_file: Path) -> None:
    f = _native.LaqFile(model_file)
    with pytest.raises(IndexError, match="layer index 3 out of range"):
        f.codes(3)
    with pytest.raises(IndexError):
        f.scale(-4)
    with pytest.raises(KeyError, match="norm.var"):
        f.tensor("norm.var")
    assert "model.laq" in repr(f)
