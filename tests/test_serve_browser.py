"""The page at `/` in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium; nothing is downloaded) against `serlaq serve`.

1. A fake microphone fed from a generated WAV (a high tone, silence, a low tone): the
   timeline the page draws from the WebSocket stream shows the emotions of offline
   segmentation of that WAV, in the same order, with the silence between.
2. The same WAV chosen as a file: the windows the page lists are exactly the offline ones,
   with their out-of-domain scores; no "far from home" note, the tones being the model's
   home. Sent to a model they are far from (random input statistics), the note names
   `serlaq adapt`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import default_signals

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from rt_builders import random_model, shared_tone_model, tone, write_wav  # noqa: E402

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
    reason="needs Debian's chromium and chromium-driver (apt install chromium chromium-driver)",
)
ROOT = Path(__file__).resolve().parents[1]
EPOCH = "1764835200"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-browser")
    model = shared_tone_model()
    sr = 48000
    clip = np.concatenate([
        tone(1500.0, sr, 3.0, seed=1, amplitude=0.5),  # angry (high)
        np.zeros(int(4.0 * sr), np.float32),
        tone(180.0, sr, 3.0, seed=2, amplitude=0.5),  # sad (low)
        np.zeros(int(1.0 * sr), np.float32),
    ])
    wav = write_wav(tmp / "talk.wav", clip, sr)
    far = random_model(tmp / "far.laq")  # input statistics nothing like real features: far from home
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), SOURCE_DATE_EPOCH=EPOCH)  # an adapted file's date
    server = subprocess.Popen(
        [sys.executable, "-m", "serlaq.cli", "serve", "--model", f"tones={model.path}", "--model", f"far={far.path}",
         "--port", str(port)],
        env=env, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals,
    )
    line = server.stderr.readline()
    assert f"127.0.0.1:{port}" in line, line

    def offline(path: Path) -> list[dict]:  # the CLI's segmentation of the same file
        out = subprocess.run(
            [sys.executable, "-m", "serlaq.cli", "predict", str(path), str(wav), "--segments", "--format", "jsonl"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout
        return [json.loads(ln) for ln in out.splitlines()]

    yield {"url": f"http://127.0.0.1:{port}/", "wav": wav, "rows": offline(model.path), "far_rows": offline(far.path),
           "far": far.path, "model": model.path, "env": env}
    server.terminate()
    try:
        server.wait(timeout=20)  # SIGTERM is a graceful stop: not stopping is a failure
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def browser(extra: list[str]) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,1100",
              "--autoplay-policy=no-user-gesture-required", *extra]:
        opts.add_argument(a)
    return webdriver.Chrome(options=opts, service=Service(DRIVER))


def page_windows(drv) -> list[dict]:
    items = drv.find_elements(By.CSS_SELECTOR, "#segments li")
    keys = ("index", "start", "end", "label", "confidence", "speech", "ood")
    return [{**{k: li.get_attribute(f"data-{k}") for k in keys}, "text": li.text} for li in items]


def wait_summary(drv, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if drv.find_element(By.ID, "summary").get_attribute("data-done") == "1":
            return
        time.sleep(0.2)
    raise AssertionError("no summary: " + drv.find_element(By.ID, "status").text)


def runs(labels: list[str]) -> list[str]:
    """Labels with runs of at least two windows, consecutive repeats merged."""
    out, prev, n = [], None, 0
    for lab in labels + [None]:
        if lab == prev:
            n += 1
            continue
        if prev is not None and n >= 2 and (not out or out[-1] != prev):
            out.append(prev)
        prev, n = lab, 1
    return out


def ood_threshold(url: str, model: str) -> float:
    """The model's out-of-domain threshold as the page reads it (`/v1/models`)."""
    with urllib.request.urlopen(url + "v1/models", timeout=10) as r:
        models = json.load(r)["models"]
    return next(m["info"]["confidence"]["ood_threshold"] for m in models if m["name"] == model)


def check_ood(got: list[dict], want: list[dict]) -> None:
    """Each listed window carries its offline out-of-domain score (shown beside the
    confidence for speech; none for silence)."""
    for g, w in zip(got, want, strict=True):
        if w["speech"]:
            assert float(g["ood"]) == w["ood"] and f"out-of-domain {w['ood']:.2f})" in g["text"], (g, w)
        else:
            assert g["ood"] == "" and "out-of-domain" not in g["text"], (g, w)


def test_dropped_file_shows_the_offline_windows(setup):
    drv = browser([])
    try:
        drv.get(setup["url"])
        drv.find_element(By.ID, "file").send_keys(str(setup["wav"]))
        wait_summary(drv, 30)
        got = page_windows(drv)
        want = [r for r in setup["rows"] if "start" in r]
        assert [(float(g["start"]), float(g["end"]), g["label"]) for g in got] == [(r["start"], r["end"], r["label"]) for r in want]
        assert [float(g["confidence"]) for g in got if g["speech"] == "true"] == [r["confidence"] for r in want if r["speech"]]
        assert "angry" in drv.find_element(By.ID, "sumlist").text
        check_ood(got, want)
        # the tones are the model's home: no note
        threshold = ood_threshold(setup["url"], "tones")
        speech = [r["ood"] for r in want if r["speech"]]
        assert 2 * sum(d > threshold for d in speech) <= len(speech), (speech, threshold)
        assert not drv.find_element(By.ID, "ood").is_displayed()
    finally:
        drv.quit()


def test_far_from_home_shows_the_note(setup):
    drv = browser([])
    try:
        drv.get(setup["url"])
        Select(drv.find_element(By.ID, "model")).select_by_value("far")
        drv.find_element(By.ID, "file").send_keys(str(setup["wav"]))
        wait_summary(drv, 30)
        want = [r for r in setup["far_rows"] if "start" in r]
        check_ood(page_windows(drv), want)
        threshold = ood_threshold(setup["url"], "far")
        speech = [r["ood"] for r in want if r["speech"]]
        far = sum(d > threshold for d in speech)
        assert 2 * far > len(speech) >= 2, (speech, threshold)
        note = drv.find_element(By.ID, "ood")
        assert note.is_displayed()
        assert note.text.startswith(f"{far} of {len(speech)} speech windows lie far outside the model's training "
                                    f"distribution (out-of-domain threshold {threshold:.2f})"), note.text
        assert "serlaq adapt" in note.text
    finally:
        drv.quit()


def test_microphone_timeline_matches_offline(setup):
    drv = browser(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                   f"--use-file-for-fake-audio-capture={setup['wav']}%noloop"])
    try:
        drv.get(setup["url"])
        time.sleep(0.5)
        drv.find_element(By.ID, "mic").click()
        time.sleep(12.5)  # the 11-s WAV plays in real time
        drv.find_element(By.ID, "stop").click()
        wait_summary(drv, 20)
        got = page_windows(drv)
        assert got, drv.find_element(By.ID, "status").text
        want = [r for r in setup["rows"] if "start" in r]
        offline = runs([r["label"] for r in want])
        assert offline == ["angry", "silence", "sad", "silence"] or offline[:3] == ["angry", "silence", "sad"], offline
        live = runs([g["label"] for g in got])
        # the capture starts a moment before or after the file: leading/trailing silence may differ
        while live and live[0] == "silence":
            live.pop(0)
        assert live[:3] == ["angry", "silence", "sad"], (live, offline, [(g["start"], g["label"]) for g in got])
        # the page draws what it listed
        assert drv.execute_script("return document.getElementById('timeline').width") > 0
    finally:
        drv.quit()


RECORD_JS = """
const [mime, seconds, done] = arguments;
navigator.mediaDevices.getUserMedia({audio: true}).then((stream) => {
  const rec = new MediaRecorder(stream, {mimeType: mime}), parts = [];
  rec.ondataavailable = (e) => parts.push(e.data);
  rec.onstop = async () => {
    const bytes = new Uint8Array(await new Blob(parts).arrayBuffer());
    let s = "";
    for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
    stream.getTracks().forEach((t) => t.stop());
    done(btoa(s));
  };
  rec.start(1000);
  setTimeout(() => rec.stop(), seconds * 1000);
}).catch((e) => done("error: " + e));
"""


def test_a_browsers_own_recording_is_read(setup, tmp_path):
    """What a browser records (MediaRecorder: WebM with Opus, a segment of unknown length),
    saved and dropped on the page, gives the timeline of the recording it holds, and the
    same windows as `serlaq predict --segments` on the saved file."""
    drv = browser(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                   f"--use-file-for-fake-audio-capture={setup['wav']}%noloop"])
    try:
        drv.get(setup["url"])
        drv.set_script_timeout(40)
        b64 = drv.execute_async_script(RECORD_JS, "audio/webm;codecs=opus", 12)
        assert not b64.startswith("error"), b64
        memo = tmp_path / "memo.webm"
        memo.write_bytes(base64.b64decode(b64))
        assert memo.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM file
        drv.find_element(By.ID, "file").send_keys(str(memo))
        wait_summary(drv, 30)
        got = page_windows(drv)
        live = runs([g["label"] for g in got])
        while live and live[0] == "silence":  # the capture starts a moment before the file
            live.pop(0)
        assert live[:3] == ["angry", "silence", "sad"], (live, [(g["start"], g["label"]) for g in got])
        out = subprocess.run(
            [sys.executable, "-m", "serlaq.cli", "predict", str(setup["model"]), str(memo), "--segments", "--format",
             "jsonl"], env=setup["env"], capture_output=True, text=True, check=True).stdout
        want = [r for r in map(json.loads, out.splitlines()) if "start" in r]
        assert [(float(g["start"]), g["label"]) for g in got] == [(r["start"], r["label"]) for r in want]
    finally:
        drv.quit()


@pytest.mark.parametrize("count", [24, 5])
def test_adapt_on_recordings_gives_the_file_serlaq_adapt_writes(setup, tmp_path, count):
    """Recordings chosen in "Adapt on recordings of your room" (one not audio) go to /v1/adapt:
    the page offers the adapted model as a download, the file `serlaq adapt` writes from
    the same recordings; with too few it says how many more."""
    clips = [write_wav(tmp_path / f"room{k:02d}.wav", tone(180.0 + 40 * k, 16000, 1.5, seed=k, amplitude=0.2 + 0.02 * k),
                       16000) for k in range(count)]  # fmt: skip
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all " * 10)
    drv = browser([])
    try:
        drv.get(setup["url"])
        Select(drv.find_element(By.ID, "model")).select_by_value("far")
        drv.find_element(By.CSS_SELECTOR, "#adaptbox summary").click()
        drv.find_element(By.ID, "adaptfiles").send_keys("\n".join(str(p) for p in [*clips, junk]))
        end = time.monotonic() + 60
        while drv.find_element(By.ID, "adaptnote").get_attribute("data-done") != "1":
            assert time.monotonic() < end, drv.find_element(By.ID, "adaptnote").text
            time.sleep(0.2)
        note = drv.find_element(By.ID, "adaptnote").text
        link = drv.find_element(By.ID, "adaptlink")
        if count < 20:
            assert note.startswith("Not adapted: adapt: too little audio") and "(15 more clips and " in note, note
            assert "left out: junk.wav: " in note and not link.is_displayed()
            return
        assert note.startswith("Adapted far on 24 clips (") and "Left out: junk.wav: " in note, note
        assert "serlaq serve --model room=far-adapted.laq" in note and link.is_displayed()
        # the server serves the adapted model too, and the page has selected it
        assert "The page now answers with far-room, which this server keeps until it stops" in note, note
        chosen = Select(drv.find_element(By.ID, "model")).first_selected_option
        assert (chosen.get_attribute("value"), chosen.text) == ("far-room", "far-room (adapted here)")
        downloads = tmp_path / "downloads"
        drv.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        link.click()  # as a user saves it
        saved = downloads / "far-adapted.laq"
        while not saved.exists():
            assert time.monotonic() < end, f"no download in {downloads}"
            time.sleep(0.2)
        got = saved.read_bytes()
        # a recording dropped now is answered by the adapted model
        drv.find_element(By.ID, "file").send_keys(str(setup["wav"]))
        wait_summary(drv, 30)
        page = page_windows(drv)
    finally:
        drv.quit()
    names = [p.name for p in [*clips, junk]]
    subprocess.run([sys.executable, "-m", "serlaq.cli", "adapt", str(setup["far"]), *names, "--out", "want.laq"],
                   cwd=tmp_path, env=setup["env"], capture_output=True, text=True, check=True)  # fmt: skip
    assert got == (tmp_path / "want.laq").read_bytes()
    out = subprocess.run([sys.executable, "-m", "serlaq.cli", "predict", "want.laq", str(setup["wav"]), "--segments",
                          "--format", "jsonl"], cwd=tmp_path, env=setup["env"], capture_output=True, text=True, check=True)  # fmt: skip
    want = [r for r in map(json.loads, out.stdout.splitlines()) if "start" in r]
    assert [(g["label"], float(g["confidence"]) if g["speech"] == "true" else None) for g in page] == [
        (r["label"], r["confidence"] if r["speech"] else None) for r in want
    ]
    check_ood(page, want)
    assert want != [r for r in setup["far_rows"] if "start" in r]  # not the unadapted model's answers


# Sends the bytes (base64) as a file named NAME the way a dropped file goes (`sendFile`), and
# answers the status once the answer has been read to its end, and whether a summary is shown.
SEND_JS = """
const [b64, name, done] = arguments;
const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
sendFile(new File([bytes], name, { type: "audio/wav" })).then(
  () => done({ status: document.getElementById("status").textContent,
               summary: document.getElementById("summary").dataset.done || "",
               windows: document.querySelectorAll("#segments li").length }),
  (e) => done({ status: "exception: " + e }));
"""


def cut_wav(path: Path, sr: int = 16000) -> Path:
    """A WAV whose header declares 10 s but whose data ends after 0.02 s: the server
    answers 200, then the runtime's error record (truncated audio), no window."""
    n = 2 * sr * 10
    head = b"RIFF" + struct.pack("<I", 36 + n) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, 2 * sr, 2, 16)
    path.write_bytes(head + b"data" + struct.pack("<I", n) + b"\0\0" * int(sr * 0.02))
    return path


def test_a_file_unreadable_part_way_keeps_its_error(setup, tmp_path):
    """The first file dropped being cut short, the status keeps the error (it said "Done.",
    no window shown); after a good file's summary, the next cut file is not shown as done."""
    cut = base64.b64encode(cut_wav(tmp_path / "cut.wav").read_bytes()).decode()
    good = base64.b64encode(Path(setup["wav"]).read_bytes()).decode()
    drv = browser([])
    try:
        drv.get(setup["url"])
        drv.set_script_timeout(60)
        first = drv.execute_async_script(SEND_JS, cut, "cut.wav")
        assert first["status"].startswith("Error") and "truncated audio" in first["status"], first
        assert (first["summary"], first["windows"]) == ("", 0), first
        ok = drv.execute_async_script(SEND_JS, good, "talk.wav")
        assert (ok["status"], ok["summary"]) == ("Done.", "1"), ok
        again = drv.execute_async_script(SEND_JS, cut, "cut.wav")
        assert again["status"].startswith("Error") and (again["summary"], again["windows"]) == ("", 0), again
        assert not drv.find_element(By.ID, "summary").is_displayed()
    finally:
        drv.quit()


def test_the_key_prompt_goes_once_the_key_is_right(setup, tmp_path):
    """On a server with an API key the page asks for it; a wrong key is named so; the right
    one loads the models and the prompt goes."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "serlaq.cli", "serve", "--model", f"tones={setup['model']}", "--port", str(port),
         "--api-key", "s3cret"],
        env=setup["env"], stderr=subprocess.PIPE, text=True, preexec_fn=default_signals,
    )
    drv = None
    try:
        line = server.stderr.readline()
        assert f"127.0.0.1:{port}" in line, line
        drv = browser([])
        drv.get(f"http://127.0.0.1:{port}/")
        drv.set_script_timeout(30)
        load = """const [key, done] = arguments; document.getElementById("key").value = key;
                  loadModels().then(() => done(document.getElementById("status").textContent), (e) => done("exception: " + e));"""
        assert drv.execute_async_script(load, "") == "This server needs an API key: enter it above."
        assert drv.find_element(By.ID, "keybox").is_displayed()
        assert "does not match" in drv.execute_async_script(load, "wrong")
        assert drv.execute_async_script(load, "s3cret") == "Ready."
        assert [o.get_attribute("value") for o in Select(drv.find_element(By.ID, "model")).options] == ["tones"]
    finally:
        if drv is not None:
            drv.quit()
        server.terminate()
        try:
            server.wait(timeout=20)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
