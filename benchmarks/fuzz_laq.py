"""Fuzz / soak the `.laq` reader for a bounded time and report executions and crashes.

    python benchmarks/fuzz_laq.py                 # 60 s per fuzz target + 60 s soak
    python benchmarks/fuzz_laq.py --seconds 10    # shorter
    python benchmarks/fuzz_laq.py --mode soak     # stable-Rust mutation soak only

Two engines:
- libFuzzer through `cargo fuzz` (targets in rust/core/fuzz: `laq_reader`, `bitpack`),
  coverage-guided, with AddressSanitizer. cargo-fuzz needs nightly flags; on a stable
  toolchain they are unlocked with RUSTC_BOOTSTRAP=1. Install: `cargo install cargo-fuzz`.
  The corpus starts from valid files written by serlaq._native.write_laq.
- `laq_soak` (rust/core/examples): random mutations of valid files on plain stable Rust,
  half of them with the checksum and lengths repaired so the structural checks are hit.

`--mode auto` (default) runs the soak and, when cargo-fuzz is installed, libFuzzer too.
Crash inputs are kept under rust/core/fuzz/artifacts/ (libFuzzer) or
target/laq-soak-crashes/ (soak). Exit status 1 if anything crashed.
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


def cargo_fuzz_available() -> bool:
    if shutil.which("cargo") is None:
        return False
    return subprocess.run(["cargo", "fuzz", "--version"], capture_output=True).returncode == 0


def run_libfuzzer(target: str, seconds: int, corpus: Path) -> dict:
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    build = subprocess.run(["cargo", "fuzz", "build", "-O", target], cwd=FUZZ_DIR.parent, env=env,
                           capture_output=True, text=True)
    if build.returncode != 0:
        return {"engine": f"libFuzzer {target}", "error": build.stderr.strip().splitlines()[-1:]}
    corpus.mkdir(parents=True, exist_ok=True)
    args = ["cargo", "fuzz", "run", "-O", target, str(corpus), "--",
            f"-max_total_time={seconds}", "-print_final_stats=1", "-max_len=65536",
            "-timeout=10", "-rss_limit_mb=4096"]
    t0 = time.monotonic()
    proc = subprocess.run(args, cwd=FUZZ_DIR.parent, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    crashed = proc.returncode != 0
    if crashed:
        tail = "\n".join(out.strip().splitlines()[-15:])
        print(f"--- libFuzzer {target} failed (exit {proc.returncode}) ---\n{tail}", file=sys.stderr)
    return {
        "engine": f"libFuzzer {target}",
        "seconds": round(time.monotonic() - t0, 1),
        "executions": int(execs.group(1)) if execs else 0,
        "crashes": int(crashed),
        "corpus": len(list(corpus.iterdir())),
    }


def run_soak(seconds: int) -> dict:
    args = ["cargo", "run", "--release", "-q", "--example", "laq_soak", "--", "--seconds", str(seconds)]
    t0 = time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    out = proc.stdout
    m = re.search(r"executions: (\d+)\s+accepted: (\d+)\s+rejected: (\d+)\s+crashes: (\d+)", out)
    if m is None:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return {"engine": "stable soak", "error": "no summary line", "crashes": 1}
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
    if args.mode in ("auto", "soak"):
        results.append(run_soak(args.seconds))
    if args.mode in ("auto", "fuzz"):
        if cargo_fuzz_available():
            corpus = FUZZ_DIR / "corpus" / "laq_reader"
            print(f"seed corpus: {write_seeds(corpus)} valid files in {corpus.relative_to(ROOT)}")
            results.append(run_libfuzzer("laq_reader", args.seconds, corpus))
            results.append(run_libfuzzer("bitpack", max(5, args.seconds // 3), FUZZ_DIR / "corpus" / "bitpack"))
        elif args.mode == "fuzz":
            print("cargo-fuzz is not installed (cargo install cargo-fuzz)", file=sys.stderr)
            return 2
        else:
            print("cargo-fuzz not installed: libFuzzer skipped (cargo install cargo-fuzz)")

    print()
    print(f"{'engine':<26} {'seconds':>8} {'executions':>12} {'exec/s':>9} {'crashes':>8}")
    crashes = 0
    for r in results:
        if "error" in r:
            print(f"{r['engine']:<26} error: {r['error']}")
            crashes += r.get("crashes", 0)
            continue
        rate = r["executions"] / max(r["seconds"], 1e-9)
        print(f"{r['engine']:<26} {r['seconds']:>8.1f} {r['executions']:>12,} {rate:>9,.0f} {r['crashes']:>8}")
        crashes += r["crashes"]
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
