"""Fuzz / soak the `.laq` reader for a bounded time and report executions and crashes.

    python benchmarks/fuzz_laq.py                 # 60 s per fuzz target + 60 s soak
    python benchmarks/fuzz_laq.py --seconds 10    # shorter
    python benchmarks/fuzz_laq.py --mode soak     # stable-Rust mutation soak only

Two engines:
- libFuzzer (targets in rust/core/fuzz: `laq_reader`, `bitpack`, `laq_model`), coverage-guided, with
  AddressSanitizer. The targets are built the way `cargo fuzz build -O` builds them
  (sanitizer-coverage and ASan flags, `--cfg fuzzing`, release + debug assertions), with
  the nightly toolchain when rustup has one, else stable with RUSTC_BOOTSTRAP=1; cargo-fuzz
  itself is not needed. The corpus starts from valid files written by
  serlaq._native.write_laq; `laq_model`'s also from the shipped general model (a whole
  model: features, calibration, the out-of-domain reference with its growth and floor).
- `laq_soak` (rust/core/examples): random mutations of valid files on plain stable Rust,
  half of them with the checksum and lengths repaired so the structural checks are hit.

`--mode auto` (default) runs both; `--mode fuzz` only libFuzzer. A failed build is an
error (exit status 2, naming the target and cargo's last lines), never "0 crashes". A
crash is counted only from a run that actually executed inputs: libFuzzer's crash report
(a panic, a sanitizer error, a timeout or out-of-memory input, each saved under
rust/core/fuzz/artifacts/<target>/) or a soak panic (saved under target/laq-soak-crashes/).
A run that fails without such a report is an error (exit 2). Exit status 1 if anything
crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FUZZ_DIR = ROOT / "rust" / "core" / "fuzz"


def write_seeds(corpus: Path) -> int:
    """Valid files of every width and granularity as the starting corpus."""
    from serlaq import _native

    corpus.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = 0
    for bits in range(1, 9):
        for per_row in (False, True):
            rows, cols = int(rng.integers(1, 12)), int(rng.integers(1, 40))
            k = rows if per_row else 1
            layers = [
                {
                    "name": "net.0",
                    "bits": bits,
                    "quantizer": "binary" if bits == 1 and not per_row else "affine",
                    "codes": rng.integers(0, 2**bits, size=(rows, cols), dtype=np.uint8),
                    "scale": rng.uniform(0.01, 1, size=k).astype(np.float32),
                    "zero": np.full(k, 0.5 if bits == 1 else 2.0, np.float32),
                    "bias": rng.normal(size=rows).astype(np.float32) if per_row else None,
                },
                {
                    "name": "net.3",
                    "bits": 8,
                    "quantizer": "affine",
                    "codes": rng.integers(0, 256, size=(3, rows), dtype=np.uint8),
                    "scale": np.ones(1, np.float32),
                    "zero": np.zeros(1, np.float32),
                    "bias": np.zeros(3, np.float32),
                },
            ]
            tensors = {"norm.mean": np.zeros(cols, np.float32), "norm.std": np.ones(cols, np.float32)}
            meta = {"labels": ["angry", "sad", "happy"], "laq": {"avg_bits": bits}}
            _native.write_laq(str(corpus / f"seed-{bits}-{int(per_row)}.laq"), json.dumps(meta), layers, tensors)
            n += 1
    return n


def write_model_seeds(corpus: Path, files: Path) -> int:
    """`laq_model`'s starting corpus: the shipped general model (when the checkout has it) and
    the reader's valid files."""
    corpus.mkdir(parents=True, exist_ok=True)
    general = ROOT / "rust" / "core" / "models" / "general.laq"
    if general.is_file():
        shutil.copyfile(general, corpus / "general.laq")
    for f in files.glob("seed-*.laq"):
        shutil.copyfile(f, corpus / f.name)
    return len(list(corpus.iterdir()))


# The flags `cargo fuzz build -O` passes (cargo-fuzz 0.12, libFuzzer + ASan, debug assertions on).
FUZZ_RUSTFLAGS = (
    "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 "
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table "
    "-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Zsanitizer=address "
    "-Cdebug-assertions -Cforce-frame-pointers"
)
CRASH_MARKERS = ("==ERROR: libFuzzer", "ERROR: AddressSanitizer", "panicked at", "SUMMARY: libFuzzer")


class FuzzError(RuntimeError):
    """A fuzz build or run that failed without a crash report (not a crash)."""


def host_triple() -> str:
    out = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("host:"))


def fuzz_toolchain() -> tuple[list[str], dict[str, str]]:
    """`cargo +nightly` when rustup has nightly, else stable with RUSTC_BOOTSTRAP=1."""
    env = dict(os.environ, RUSTFLAGS=FUZZ_RUSTFLAGS)
    if shutil.which("rustup"):
        probe = subprocess.run(["rustup", "run", "nightly", "rustc", "--version"], capture_output=True)
        if probe.returncode == 0:
            return ["cargo", "+nightly"], env
    env["RUSTC_BOOTSTRAP"] = "1"
    return ["cargo"], env


def build_fuzz_target(target: str) -> Path:
    """Builds one libFuzzer binary; FuzzError (with cargo's last lines) when it fails."""
    if shutil.which("cargo") is None:
        raise FuzzError("cargo not found on PATH")
    cargo, env = fuzz_toolchain()
    triple = host_triple()
    # --target keeps RUSTFLAGS off build scripts and proc macros, as cargo-fuzz does.
    cmd = [*cargo, "build", "--release", "--target", triple, "--bin", target]
    build = subprocess.run(cmd, cwd=FUZZ_DIR, env=env, capture_output=True, text=True)
    binary = FUZZ_DIR / "target" / triple / "release" / target
    if build.returncode != 0 or not binary.is_file():
        tail = "\n".join(build.stderr.strip().splitlines()[-12:])
        raise FuzzError(f"fuzz build of {target} failed (exit {build.returncode}: {' '.join(cmd)}):\n{tail}")
    return binary


def run_libfuzzer(target: str, seconds: int, corpus: Path) -> dict:
    binary = build_fuzz_target(target)
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts = FUZZ_DIR / "artifacts" / target
    artifacts.mkdir(parents=True, exist_ok=True)
    args = [str(binary), str(corpus), f"-max_total_time={seconds}", "-print_final_stats=1", "-max_len=65536",
            "-timeout=10", "-rss_limit_mb=4096", f"-artifact_prefix={artifacts}/"]
    t0 = time.monotonic()
    proc = subprocess.run(args, cwd=FUZZ_DIR, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    written = re.findall(r"Test unit written to (\S+)", out)
    crashed = bool(written) or any(m in out for m in CRASH_MARKERS)
    tail = "\n".join(out.strip().splitlines()[-15:])
    if crashed:
        print(f"--- libFuzzer {target} crashed (exit {proc.returncode}) ---\n{tail}", file=sys.stderr)
    elif proc.returncode != 0 or execs is None:
        raise FuzzError(f"libFuzzer {target} ran but reported no crash and no statistics "
                        f"(exit {proc.returncode}):\n{tail}")
    return {
        "engine": f"libFuzzer {target}",
        "seconds": round(time.monotonic() - t0, 1),
        "executions": int(execs.group(1)) if execs else 0,
        "crashes": max(len(written), int(crashed)),
        "corpus": len(list(corpus.iterdir())),
    }


def run_soak(seconds: int) -> dict:
    args = ["cargo", "run", "--release", "-q", "--example", "laq_soak", "--", "--seconds", str(seconds)]
    t0 = time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    out = proc.stdout
    m = re.search(r"executions: (\d+)\s+accepted: (\d+)\s+rejected: (\d+)\s+crashes: (\d+)", out)
    if m is None:
        # A build failure or an abort before the summary: an error, not a crash count.
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
        raise FuzzError(f"the laq_soak example failed (exit {proc.returncode}) without its summary line:\n{tail}")
    print(out.split("executions:")[0].rstrip())
    return {
        "engine": "stable soak laq_reader",
        "seconds": round(time.monotonic() - t0, 1),
        "executions": int(m.group(1)),
        "accepted": int(m.group(2)),
        "crashes": int(m.group(4)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="time per engine/target")
    parser.add_argument("--mode", choices=["auto", "fuzz", "soak"], default="auto")
    args = parser.parse_args(argv)

    results = []
    try:
        if args.mode in ("auto", "soak"):
            results.append(run_soak(args.seconds))
        if args.mode in ("auto", "fuzz"):
            corpus = FUZZ_DIR / "corpus" / "laq_reader"
            print(f"seed corpus: {write_seeds(corpus)} valid files in {corpus.relative_to(ROOT)}")
            results.append(run_libfuzzer("laq_reader", args.seconds, corpus))
            results.append(run_libfuzzer("bitpack", args.seconds, FUZZ_DIR / "corpus" / "bitpack"))
            models = FUZZ_DIR / "corpus" / "laq_model"
            print(f"model corpus: {write_model_seeds(models, corpus)} files in {models.relative_to(ROOT)}")
            results.append(run_libfuzzer("laq_model", args.seconds, models))
    except FuzzError as exc:
        print(f"fuzz_laq: {exc}", file=sys.stderr)
        return 2

    print()
    print(f"{'engine':<26} {'seconds':>8} {'executions':>12} {'exec/s':>9} {'crashes':>8}")
    crashes = 0
    for r in results:
        rate = r["executions"] / max(r["seconds"], 1e-9)
        print(f"{r['engine']:<26} {r['seconds']:>8.1f} {r['executions']:>12,} {rate:>9,.0f} {r['crashes']:>8}")
        crashes += r["crashes"]
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
