"""The atomic writer: whole files or the old one, with the mode the umask gives (not the temp file's 0600)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from serlaq.io import atomic_write_bytes, atomic_write_json, current_umask


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path: Path, umask, mask: int, expected: int) -> None:
    umask(mask)
    assert current_umask() == mask
    atomic_write_json(tmp_path / "metrics.json", {"a": 1})
    assert mode(tmp_path / "metrics.json") == expected
    atomic_write_bytes(tmp_path / "metrics.json", b"{}\n")  # a rewrite too
    assert mode(tmp_path / "metrics.json") == expected


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    atomic_write_json(target, {"old": True})
    with pytest.raises(ValueError):
        atomic_write_json(target, {"bad": float("nan")})  # strict JSON refuses before writing
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == '{\n  "old": true\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_the_rust_writer_of_laq_files_honours_the_umask_too(tmp_path: Path, umask) -> None:
    from rt_builders import random_model  # tests/runtime (torch-free)

    for mask, expected in ((0o022, 0o644), (0o077, 0o600)):
        umask(mask)
        built = random_model(tmp_path / f"m{mask:o}.laq")
        assert mode(built.path) == expected
