"""The WebAssembly package (`make wasm` -> dist/wasm): node's test runner checks serlaq.js
against serlaq-rt on generated WAVs (rust/wasm/tests/api.test.mjs), and headless Chromium
loads the page from a loopback server and classifies a generated file with the native
runtime's label, probabilities (within 1e-5, the bound api.test.mjs explains) and
out-of-domain score, with the "far from home" note shown for a model the clip is far from
and not for one that is its home."""

from __future__ import annotations

import functools
import http.server
import json
import os
import queue
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from edge_fixtures import DIST, ROOT, build_fixtures, need, tool

WASM = DIST / "wasm"


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    need(WASM / "serlaq.wasm", "make wasm")
    out = tmp_path_factory.mktemp("wasm")
    return out, build_fixtures(out)


def test_node_api_matches_native(fixtures: tuple[Path, dict]) -> None:
    out, _ = fixtures
    env = dict(os.environ, SERLAQ_FIXTURES=str(out), SERLAQ_WASM_DIR=str(WASM))
    r = subprocess.run([tool("node"), "--test", str(ROOT / "rust" / "wasm" / "tests" / "api.test.mjs")], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert re.search(r"^# pass [1-9]", r.stdout, re.M) and re.search(r"^# fail 0$", r.stdout, re.M), r.stdout


def test_node_adapter_matches_serlaq_rt_adapt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The module built with the adapter (`make wasm-adapt`): Model.adapter() on 24 clips
    (and one that is not audio) gives the model `serlaq-rt adapt` writes from them, with
    and without labels (rust/wasm/tests/adapt.test.mjs); the default module has none."""
    from edge_fixtures import fixture_model, rt_json, serlaq_rt
    from rt_builders import tone, write_wav

    adapt_dist = need(DIST / "wasm-adapt" / "serlaq.wasm", "make wasm-adapt").parent
    need(WASM / "serlaq.wasm", "make wasm")
    fixture_model(tmp_path / "model.laq")
    clips = [write_wav(tmp_path / f"room{k}.wav", tone(180 + 40 * k, 16000, 1.5, seed=k, amplitude=0.2 + 0.02 * k),
                       16000).name for k in range(24)]
    (tmp_path / "junk.wav").write_bytes(b"not audio at all " * 10)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764835200")
    cases = []
    for name, labels in [("all", []), ("held", ["sad", "angry"])]:
        extra = ["--labels", ",".join(labels)] if labels else []
        rt = subprocess.run([str(serlaq_rt()), "adapt", "model.laq", *clips,
                             "--out", f"{name}.laq", *extra], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert rt.returncode == 0, rt.stderr
        record = json.loads(subprocess.run([str(serlaq_rt()), "info",
                                            str(tmp_path / f"{name}.laq"), "--json"],
                                           capture_output=True, text=True, check=True).stdout)
        adaptation = record["provenance"]["adaptations"][-1]
        cases.append({"labels": labels, "file": f"{name}.laq", "source": adaptation["source"],
                      "created": adaptation["created"],
                      "predictions": rt_json(tmp_path / f"{name}.laq", *(tmp_path / c for c in clips[:4]))})
    (tmp_path / "adapt.json").write_text(json.dumps({"clips": clips, "cases": cases}))
    env = dict(os.environ, SERLAQ_FIXTURES=str(tmp_path), SERLAQ_WASM_DIR=str(adapt_dist),
               SERLAQ_WASM_DEFAULT_DIR=str(WASM))
    r = subprocess.run([tool("node"), "--test", str(ROOT / "rust" / "wasm" / "tests" / "adapt.test.mjs")], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert re.search(r"^# pass [1-9]", r.stdout, re.M) and re.search(r"^# fail 0$", r.stdout, re.M), r.stdout


class _Site(http.server.SimpleHTTPRequestHandler):
    """The package folder, plus POST /report where the page leaves its result."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript", ".mjs": "text/javascript"}
    reports: "queue.Queue[str]"

    def do_POST(self) -> None:
        n = min(int(self.headers.get("content-length", 0)), 1 << 20)
        self.reports.put(self.rfile.read(n).decode())
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    return tool("chromium")


def page_report(site: Path, tmp_path: Path, fragment: str) -> dict:
    """The JSON the page at `site` POSTs to /report, opened in headless Chromium with
    `#fragment&report=/report` from a loopback server."""
    reports: queue.Queue[str] = queue.Queue()
    handler = type("Site", (_Site,), {"reports": reports})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html#{fragment}&report=/report"
    log = tmp_path / "chromium.log"
    with log.open("w") as errf:
        browser = subprocess.Popen([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                    f"--user-data-dir={tmp_path / 'profile'}", url],
                                   stdout=subprocess.DEVNULL, stderr=errf)
    try:
        body = reports.get(timeout=120)
    except queue.Empty:
        body = None
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=30)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        server.shutdown()
        server.server_close()
    assert body, f"the page reported nothing in 120 s: {log.read_text()[-3000:]}"
    return json.loads(body)


@pytest.mark.parametrize("model", ["model.laq", "home.laq"], ids=["far", "home"])
def test_page_in_headless_chromium(fixtures: tuple[Path, dict], tmp_path: Path, model: str) -> None:
    out, expected = fixtures
    site = tmp_path / "site"
    shutil.copytree(WASM, site)
    shutil.copy(out / model, site / model)
    clip = expected["files" if model == "model.laq" else "home_files"][1]
    shutil.copy(out / clip["path"], site / "clip.wav")
    result = page_report(site, tmp_path, f"model={model}&audio=clip.wav")
    assert "error" not in result, result
    assert result["canAdapt"] is False and result["adapted"] is None  # the default module: no adapt panel
    assert result["clip"]["label"] == clip["label"]
    got = result["clip"]["probabilities"]
    assert got.keys() == clip["probabilities"].keys()
    # within the bound the node tests explain (AVX2 natively, portable code in the module)
    assert all(abs(got[k] - v) <= 1e-5 for k, v in clip["probabilities"].items()), (got, clip)
    segs = result["segments"]
    assert segs and all(s["label"] in [*expected["labels"], "silence"] for s in segs)
    assert segs[-1]["end"] == pytest.approx(2.0, abs=0.05)  # the clip's 2 s, decoded by the browser
    # the out-of-domain score beside the confidence, and the note when the clip is far from home
    ood, threshold = clip["ood"], expected["ood_threshold"]
    assert result["oodThreshold"] == threshold
    assert result["clip"]["ood"] == pytest.approx(ood, rel=1e-4)
    assert f"({result['clip']['confidence']:.3f}, out-of-domain score {ood:.2f})" in result["head"], result["head"]
    if model == "model.laq":
        assert ood > threshold
        assert "far outside the model's training distribution" in result["note"], result["note"]
        assert f"{ood:.2f}, threshold {threshold:.2f}" in result["note"] and "serlaq adapt" in result["note"]
    else:
        assert ood <= threshold and result["note"] == "", result["note"]


@pytest.mark.parametrize("count", [24, 5])
def test_page_adapts_on_recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """The page of the module built with the adapter: recordings chosen (here `#adapt=`, one
    not audio) adapt the model as `serlaq-rt adapt` does on them, and the clip then
    classified is answered by the adapted model (probabilities within 1e-4: portable
    features in the module, AVX2 natively); with too few, the page says how many more."""
    from edge_fixtures import fixture_model, rt_json, serlaq_rt
    from rt_builders import tone, write_wav

    site = tmp_path / "site"
    shutil.copytree(need(DIST / "wasm-adapt" / "serlaq.wasm", "make wasm-adapt").parent, site)
    fixture_model(site / "model.laq")
    clips = [write_wav(site / f"room{k}.wav", tone(180 + 40 * k, 16000, 1.5, seed=k, amplitude=0.2 + 0.02 * k),
                       16000).name for k in range(count)]
    (site / "junk.wav").write_bytes(b"not audio at all " * 10)
    result = page_report(site, tmp_path, f"model=model.laq&adapt={','.join([*clips, 'junk.wav'])}&audio={clips[3]}")
    assert result["canAdapt"] is True  # the panel is shown
    adapted = result["adapted"]
    assert len(adapted["failures"]) == 1 and adapted["failures"][0].startswith("junk.wav: "), adapted
    if count < 20:
        assert adapted["error"].endswith("(15 more clips and 12.5 more seconds of speech)"), adapted
        want = rt_json(site / "model.laq", site / clips[3])[0]  # the model as it was
        # far from home, and this page can adapt: the note says where
        assert 'recordings chosen under "Adapt the model" above' in result["note"], result["note"]
    else:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764835200")
        rt = subprocess.run([str(serlaq_rt()), "adapt", "model.laq", *clips, "--out", str(tmp_path / "rt.laq")],
                            cwd=site, capture_output=True, text=True, timeout=120)
        assert rt.returncode == 0, rt.stderr
        assert adapted["clips"] == count and adapted["speechSeconds"] == pytest.approx(1.5 * count, abs=0.5)
        want = rt_json(tmp_path / "rt.laq", site / clips[3])[0]
        before = rt_json(site / "model.laq", site / clips[3])[0]
        assert max(abs(before["probabilities"][k] - v) for k, v in want["probabilities"].items()) > 0.01  # it moved
    got = result["clip"]
    assert got["label"] == want["label"], (got, want)
    assert all(abs(got["probabilities"][k] - v) <= 1e-4 for k, v in want["probabilities"].items()), (got, want)
