"""Thread pools are sized by the CPUs the process may use: affinity, capped by a cgroup quota."""

from __future__ import annotations

from pathlib import Path

import pytest

from serlaq import cpus


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})


@pytest.mark.parametrize(
    ("cpu_max", "expected"), [("max 100000\n", 4), ("150000 100000\n", 2), ("50000 100000\n", 1), ("800000 100000", 4)]
)
def test_cgroup_v2_quota_caps_the_affinity(tmp_path: Path, four_cpus: None, cpu_max: str, expected: int) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert cpus.available_cpus(tmp_path) == expected


def test_cgroup_v1_quota(tmp_path: Path, four_cpus: None) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.available_cpus(tmp_path) == 2
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # unlimited
    assert cpus.available_cpus(tmp_path) == 4


def test_no_cgroup_files_means_the_affinity_mask(tmp_path: Path, four_cpus: None) -> None:
    assert cpus.available_cpus(tmp_path) == 4


def test_the_real_process_gets_at_least_one_and_no_more_than_its_affinity() -> None:
    import os

    assert 1 <= cpus.available_cpus() <= len(os.sched_getaffinity(0))


def test_feature_extraction_workers_follow_it(tmp_path: Path, four_cpus: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from serlaq.data import cache

    monkeypatch.setattr(cpus, "CGROUP", tmp_path)
    monkeypatch.setattr(cpus.available_cpus, "__defaults__", (tmp_path,))
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert cache.default_workers() == 1
