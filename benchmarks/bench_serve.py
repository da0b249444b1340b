"""`serlaq-rt serve` under load on loopback, bounded in count and time.

- HTTP: `wrk` (Debian's, a C load generator; Lua script posting one 2-s 16-kHz WAV) with
  32 / 128 / 512 connections for a few seconds each: clips/s, p50/p99 latency, errors
  (non-2xx + socket errors). The client runs on the same cores as the server (2 threads).
- WebSocket: 200 concurrent streams (aiohttp client, one asyncio loop) sending 20-ms pcm16
  frames at real-time pace for a few seconds: windows received, errors, frame-send lag.
- Server RSS before, peak (VmHWM) and after (after: within 10 MB of before).
- Baseline in the same run: `serlaq-rt predict model clip.wav` as one process per request
  (wall time per call); the ratio is server clips/s at 32 clients vs 1 / that time.
- Memory: the server trims glibc's arenas every 2 s, so "after" is measured 3 s after the load.
- Cold start: `serlaq-rt serve` spawned until its first answered /healthz.
- `serlaq-rt predict` cold: wall time and peak RSS, this binary vs --baseline-bin (main's).

    PYTHONPATH=python python3 benchmarks/bench_serve.py [--seconds 5] [--baseline-bin PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "runtime"))
from rt_builders import random_model, tone, write_wav  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int, key: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def start_server(binary: Path, model: Path, port: int) -> tuple[subprocess.Popen, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(binary), "serve", "--model", f"m={model}", "--port", str(port)],
                            stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = t0 + 10
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc, time.perf_counter() - t0
        except OSError:
            time.sleep(0.0005)
    proc.kill()
    raise SystemExit("server did not answer within 10 s")


def run_wrk(url: str, body: Path, conns: int, seconds: int, tmp: Path) -> dict:
    lua = tmp / "post.lua"
    lua.write_text(f'local f = io.open("{body}", "rb")\nwrk.method = "POST"\nwrk.body = f:read("*a")\nf:close()\n'
                   'wrk.headers["Content-Type"] = "audio/wav"\n')
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(lua), url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout

    def ms(tag: str) -> float:
        m = re.search(rf"^\s*{tag}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)) if "Socket errors" in out else 0
    return {"clients": conns, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "requests": reqs,
            "p50_ms": ms("50"), "p99_ms": ms("99"), "errors": non2xx + sock}


async def ws_load(port: int, streams: int, seconds: float) -> dict:
    import aiohttp

    sr, frame = 16000, 320  # 20-ms frames
    clip = (tone(300.0, sr, seconds, amplitude=0.4) * 32767).astype("<i2").tobytes()
    stats = {"windows": 0, "errors": 0, "lag_ms": []}

    async def one(session: aiohttp.ClientSession, k: int) -> None:
        try:
            async with session.ws_connect(f"http://127.0.0.1:{port}/v1/stream", max_msg_size=1 << 20) as ws:
                await ws.send_json({"sample_rate": sr, "format": "pcm16", "name": f"s{k}"})

                async def reader() -> None:
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            if '"error"' in msg.data:
                                stats["errors"] += 1
                            elif '"start"' in msg.data:
                                stats["windows"] += 1

                rd = asyncio.create_task(reader())
                t0 = time.perf_counter() + (k % 50) * 0.0004  # spread the streams over a frame
                for i in range(0, len(clip), 2 * frame):
                    due = t0 + i / 2 / sr
                    now = time.perf_counter()
                    if due > now:
                        await asyncio.sleep(due - now)
                    else:
                        stats["lag_ms"].append((now - due) * 1000)
                    await ws.send_bytes(clip[i:i + 2 * frame])
                await ws.send_json({"end": True})
                await asyncio.wait_for(rd, 30)
        except Exception:  # noqa: BLE001 - counted, the run goes on
            stats["errors"] += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, k) for k in range(streams)))
    lag = sorted(stats["lag_ms"]) or [0.0]
    return {"streams": streams, "windows": stats["windows"], "errors": stats["errors"],
            "send_lag_p99_ms": lag[int(0.99 * (len(lag) - 1))]}


def cold(binary: Path, model: Path, wav: Path, runs: int = 15) -> tuple[float, float]:
    """Median wall ms and max peak RSS MB of `predict` as one process."""
    times, peaks = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([str(binary), "predict", str(model), str(wav)], stdout=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t0) * 1000)
        # peak RSS from GNU time (wait4 on a Python-forked child reports the fork's own RSS)
        r = subprocess.run(["/usr/bin/time", "-f", "%M", str(binary), "predict", str(model), str(wav)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
        peaks.append(int(r.stderr.strip().splitlines()[-1]) / 1024)
    return statistics.median(times), max(peaks)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "serlaq-rt")
    ap.add_argument("--baseline-bin", type=Path, help="another serlaq-rt (main's) for the predict cold-start comparison")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--streams", type=int, default=200)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk (apt install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    model = random_model(tmp / "m.laq").path
    wav = write_wav(tmp / "clip.wav", tone(440.0, 16000, 2.0, amplitude=0.4), 16000)
    print(f"cores: {os.cpu_count()} (wrk and the server share them)")

    rt_ms, rt_mb = cold(a.bin, model, wav)
    print(f"serlaq-rt predict, one process per request: {rt_ms:.1f} ms median, peak RSS {rt_mb:.1f} MB")
    if a.baseline_bin:
        b_ms, b_mb = cold(a.baseline_bin, model, wav)
        print(f"baseline {a.baseline_bin}: {b_ms:.1f} ms, {b_mb:.1f} MB -> time ratio {rt_ms / b_ms:.2f}, RSS ratio {rt_mb / b_mb:.2f}")

    starts = []
    for _ in range(5):
        port = free_port()
        proc, t = start_server(a.bin, model, port)
        starts.append(t * 1000)
        proc.terminate()
        proc.wait(10)
    print(f"cold start of serve to first answered request: median {statistics.median(starts):.1f} ms (5 runs: "
          + ", ".join(f"{s:.1f}" for s in starts) + ")")

    port = free_port()
    proc, _ = start_server(a.bin, model, port)
    try:
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=wav.read_bytes())).read()
        before = rss_kb(proc.pid)
        rows = [run_wrk(f"http://127.0.0.1:{port}/v1/predict", wav, c, a.seconds, tmp) for c in (32, 128, 512)]
        ws = asyncio.run(ws_load(port, a.streams, float(a.seconds)))
        time.sleep(3.0)
        peak, after = rss_kb(proc.pid, "VmHWM"), rss_kb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    print("\n| clients | clips/s | p50 ms | p99 ms | errors | requests |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clients']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | {r['requests']} |")
    print(f"\nWebSocket: {ws['streams']} streams x {a.seconds} s at real-time pace: {ws['windows']} windows, "
          f"{ws['errors']} errors, client send lag p99 {ws['send_lag_p99_ms']:.1f} ms")
    print(f"server RSS: before {before / 1024:.1f} MB, peak {peak / 1024:.1f} MB, after {after / 1024:.1f} MB "
          f"(after - before {(after - before) / 1024:+.1f} MB)")
    print(f"ratio: server at 32 clients {rows[0]['rps']:.0f} clips/s vs one serlaq-rt process per clip "
          f"{1000 / rt_ms:.0f} clips/s sequential = {rows[0]['rps'] * rt_ms / 1000:.1f}x")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
