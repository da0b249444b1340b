"""Kernel benchmark: serlaq._native pack/unpack vs numpy, qgemm vs torch fp32 F.linear.

    python benchmarks/bench_kernels.py            # full run (16M codes, all shapes)
    python benchmarks/bench_kernels.py --quick    # a smoke run in a few seconds

Every figure is the median of repeated timings; ratios compare numbers from this run.
Rust (rayon) and torch use the same thread count (default: RAYON_NUM_THREADS or the CPU
count), printed in the header; torch is also timed at 1 thread and the faster figure is
the baseline. `SERLAQ_KERNELS=avx2|portable` benchmarks a fallback kernel; the header
prints the kernel that actually ran (`serlaq._native.kernel()`) and those available.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

TARGET_PACK = 10.0  # x numpy, every width
TARGET_GEMV = {1: 6.0, 2: 6.0, 4: 3.0}  # x torch fp32, 4096x4096, batch 1


def median_time(fn: Callable[[], object], min_time: float, min_reps: int, max_reps: int = 1000) -> float:
    """Median seconds per call over at least `min_reps` calls and `min_time` seconds."""
    fn()  # warm-up (page faults, thread pool start)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --- numpy references: vectorized, generic in the bit width (the layout's definition) ---


def np_pack_words(codes: np.ndarray, bits: int) -> np.ndarray:
    """Groups of 8 codes -> one uint64 word -> its low `bits` bytes (len % 8 == 0)."""
    g = codes.reshape(-1, 8).astype(np.uint64)
    w = g[:, 0].copy()
    for i in range(1, 8):
        w |= g[:, i] << np.uint64(i * bits)
    return w.view(np.uint8).reshape(-1, 8)[:, :bits].reshape(-1)


def np_unpack_words(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    g = packed.reshape(-1, bits)
    buf = np.zeros((g.shape[0], 8), np.uint8)
    buf[:, :bits] = g
    w = buf.view(np.uint64).reshape(-1)
    out = np.empty((g.shape[0], 8), np.uint8)
    mask = np.uint64((1 << bits) - 1)
    for i in range(8):
        out[:, i] = (w >> np.uint64(i * bits)) & mask
    return out.reshape(-1)[:count]


def np_pack_bits(codes: np.ndarray, bits: int) -> np.ndarray:
    """Bit planes through np.packbits (LSB-first)."""
    planes = (codes[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
    return np.packbits(planes.reshape(-1), bitorder="little")


def np_unpack_bits(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    b = np.unpackbits(packed, bitorder="little")[: count * bits].reshape(count, bits)
    return (b << np.arange(bits, dtype=np.uint8)).sum(axis=1, dtype=np.uint8)


def bench_pack(native, n: int, min_time: float, reps: int) -> list[tuple]:
    rng = np.random.default_rng(0)
    rows = []
    for bits in range(1, 9):
        codes = rng.integers(0, 2**bits, size=n, dtype=np.uint8)
        packed = native.pack(codes, bits)
        assert np.array_equal(packed, np_pack_words(codes, bits))
        assert np.array_equal(native.unpack(packed, bits, n), codes)
        t_pack = median_time(lambda: native.pack(codes, bits), min_time, reps)
        t_unpack = median_time(lambda: native.unpack(packed, bits, n), min_time, reps)
        # The numpy baseline is the faster of the two vectorized formulations.
        np_pack = min(
            median_time(lambda: np_pack_words(codes, bits), min_time, 3, 20),
            median_time(lambda: np_pack_bits(codes, bits), min_time, 3, 20),
        )
        np_unpack = min(
            median_time(lambda: np_unpack_words(packed, bits, n), min_time, 3, 20),
            median_time(lambda: np_unpack_bits(packed, bits, n), min_time, 3, 20),
        )
        rows.append((bits, t_pack, np_pack, t_unpack, np_unpack))
    return rows


def torch_time(torch, fn: Callable[[], object], threads: int, min_time: float, reps: int) -> float:
    """The faster of torch at `threads` threads and at 1 thread.

    Same thread count as rayon is the fair setting; 1 thread is also tried because
    torch's OpenMP pool can stall for milliseconds when other processes hold the cores,
    and the baseline should be torch at its best.
    """
    times = []
    for n in sorted({threads, 1}):
        torch.set_num_threads(n)
        times.append(median_time(fn, min_time, reps))
    torch.set_num_threads(threads)
    return min(times)


def bench_qgemm(native, torch, shapes, batches, threads: int, min_time: float, reps: int) -> list[tuple]:
    import torch.nn.functional as F

    rng = np.random.default_rng(1)
    out = []
    for rows_, cols in shapes:
        w = torch.randn(rows_, cols)
        bias = torch.randn(rows_)
        for batch in batches:
            x = torch.randn(batch, cols) if batch > 1 else torch.randn(cols)
            t_torch = torch_time(torch, lambda: F.linear(x, w, bias), threads, min_time, reps)
            xn, bn = x.numpy(), bias.numpy()
            for bits in range(1, 9):
                codes = rng.integers(0, 2**bits, size=(rows_, cols), dtype=np.uint8)
                packed = native.pack(codes, bits)
                scale = rng.uniform(0.01, 0.1, size=rows_).astype(np.float32)
                zero = np.full(rows_, (2**bits - 1) / 2, np.float32)
                t = median_time(lambda: native.qgemm(packed, bits, cols, scale, zero, bn, xn), min_time, reps)
                out.append((f"{rows_}x{cols}", batch, bits, t, t_torch))
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (smoke test)")
    parser.add_argument("--codes", type=int, default=None, help="codes per pack/unpack run (default 16M, quick 2M)")
    args = parser.parse_args(argv)

    threads = int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count() or 1))
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # before the first parallel call
    import torch

    from serlaq import _native

    torch.set_num_threads(threads)
    n = args.codes or (2 * 2**20 if args.quick else 16 * 2**20)
    min_time, reps = (0.05, 3) if args.quick else (0.5, 15)
    shapes = [(256, 180), (1024, 1024), (4096, 4096)]

    print(f"serlaq kernel benchmark: threads rayon={threads} torch={torch.get_num_threads()} "
          f"(torch {torch.__version__}, numpy {np.__version__}); medians of repeated timings")
    print(f"cpu: {cpu_model()}; kernel: {_native.kernel()} (available in this build: {', '.join(_native.kernels())})")
    print()
    print(f"pack/unpack of {n / 2**20:.0f}M codes (Mcodes/s; numpy = faster of two vectorized references;"
          f" Rust splits streams over 1M codes across threads)")
    print(f"{'bits':>4} | {'pack':>9} {'numpy':>8} {'ratio':>7} | {'unpack':>9} {'numpy':>8} {'ratio':>7}")
    pack_rows = bench_pack(_native, n, min_time, reps)
    worst = float("inf")
    for bits, tp, npp, tu, npu in pack_rows:
        worst = min(worst, npp / tp, npu / tu)
        print(f"{bits:>4} | {n / tp / 1e6:>9.0f} {n / npp / 1e6:>8.0f} {npp / tp:>6.1f}x |"
              f" {n / tu / 1e6:>9.0f} {n / npu / 1e6:>8.0f} {npu / tu:>6.1f}x")
    print(f"worst ratio {worst:.1f}x (target >= {TARGET_PACK:.0f}x): {'met' if worst >= TARGET_PACK else 'MISSED'}")
    print()

    print("qgemm y = x W^T + b from packed codes vs torch fp32 F.linear (microseconds per call;")
    print(f"fp32 = torch at {threads} threads or 1 thread, whichever is faster; ratio = fp32 / qgemm)")
    results = bench_qgemm(_native, torch, shapes, [1, 32], threads, min_time, reps)
    print(f"{'shape':>9} {'batch':>5} | " + " ".join(f"{f'{b}-bit':>8}" for b in range(1, 9)) + f" | {'fp32':>8}")
    by_row: dict[tuple[str, int], dict[int, float]] = {}
    torch_t: dict[tuple[str, int], float] = {}
    for shape, batch, bits, t, tt in results:
        by_row.setdefault((shape, batch), {})[bits] = t
        torch_t[(shape, batch)] = tt
    for (shape, batch), ts in by_row.items():
        tt = torch_t[(shape, batch)]
        print(f"{shape:>9} {batch:>5} | " + " ".join(f"{ts[b] * 1e6:>8.1f}" for b in range(1, 9)) + f" | {tt * 1e6:>8.1f}")
        print(f"{'':>9} {'':>5} | " + " ".join(f"{f'{tt / ts[b]:.1f}x':>8}" for b in range(1, 9)) + f" | {'1.0x':>8}")
    big = by_row[("4096x4096", 1)]
    tt = torch_t[("4096x4096", 1)]
    print()
    for bits, target in TARGET_GEMV.items():
        ratio = tt / big[bits]
        print(f"target 4096x4096 batch 1, {bits}-bit: {ratio:.1f}x vs fp32 (>= {target:.0f}x): "
              f"{'met' if ratio >= target else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
