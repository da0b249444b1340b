"""`serlaq adapt` / `LaqModel.adapt`: a new room's statistics recover what a level and
microphone shift costs; the adapted file round-trips with its provenance; bad input is one
line, the input untouched. Generated audio only (the synthetic corpus), no torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import serlaq
from serlaq import _native
from serlaq.data.synthetic import generate_corpus
from serlaq.errors import LaqFormatError
from serlaq.runtime.adapt import AdaptError, adapt as run_adapt

from conftest import run_serlaq
from rt_builders import PAPER_FEATURES, _train_mlp, write_model

LABELS = ["angry", "neutral", "sad"]


def shifted(x: np.ndarray, sr: int) -> np.ndarray:
    """Another microphone and level: a telephone band (300-3400 Hz) at +9.5 dB."""
    from scipy.signal import butter, lfilter

    y = lfilter(*butter(4, [300 / (sr / 2), 3400 / (sr / 2)], "band"), x.astype(np.float64))
    return np.clip(3.0 * y, -1.0, 1.0).astype(np.float32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A model trained (numpy) on speakers of a synthetic corpus, its held-out clips as
    recorded (`same`) and the same clips re-recorded in another room (`room`)."""
    tmp = tmp_path_factory.mktemp("adapt")
    corpus = generate_corpus(tmp / "corpus", seed=3, clips_per_class=32, speakers=4, seconds=1.5, emotions=LABELS)
    spec = json.dumps(PAPER_FEATURES)
    train_x, train_y, held = [], [], []
    for k, lab in enumerate(LABELS):
        for wav in sorted((corpus / lab).rglob("*.wav")):
            if wav.parent.name.endswith("3"):  # the last speaker is held out
                held.append((wav, k))
            else:
                train_x.append(_native.features(spec, _native.load_audio(str(wav), 22050, 2048)))
                train_y.append(k)
    x = np.stack(train_x).astype(np.float32)
    mean, std = x.mean(0), x.std(0) + 1e-6
    ws, bs = _train_mlp((x - mean) / std, np.asarray(train_y), hidden=32, classes=3, steps=400)
    model = write_model(tmp / "model.laq", ws, bs, [8, 8], LABELS, mean, std, per_channel=True).path
    same, room = [], []
    for wav, k in held:
        data, sr = sf.read(str(wav), dtype="float32")
        out = tmp / "room" / wav.name
        out.parent.mkdir(exist_ok=True)
        sf.write(str(out), shifted(data, sr), sr, subtype="PCM_16")
        same.append((str(wav), k))
        room.append((str(out), k))
    return {"tmp": tmp, "model": model, "same": same, "room": room}


def accuracy(model: serlaq.LaqModel, clips: list[tuple[str, int]]) -> float:
    preds = model.predict_files([p for p, _ in clips], workers=1)
    return float(np.mean([model.labels.index(r.label) == k for r, (_, k) in zip(preds, clips)]))


def test_adapt_recovers_the_accuracy_a_new_room_costs(setup):
    model = serlaq.load(setup["model"])
    home = accuracy(model, setup["same"])
    away = accuracy(model, setup["room"])
    adapted = model.adapt([str(Path(setup["room"][0][0]).parent)])
    back = accuracy(adapted, setup["room"])
    assert len(setup["room"]) == 24
    assert home >= 0.8, home  # the model works where it was trained
    assert away <= home - 0.3, (home, away)  # the new room breaks it
    assert back >= home - 0.15 and back >= away + 0.25, (home, away, back)  # adaptation brings it back
    assert adapted.adaptation.ood_after < adapted.adaptation.ood_before


def test_adapted_model_round_trips_with_its_provenance(setup, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796000000")
    model = serlaq.load(setup["model"])
    room = str(Path(setup["room"][0][0]).parent)
    adapted = model.adapt([room])
    out = tmp_path / "adapted.laq"
    adapted.save(out)
    again = serlaq.load(out)
    rec = again.metadata["provenance"]["adaptations"]
    shift = rec[0].pop("bias_shift")
    assert rec == [
        {"created": "2026-11-30T00:53:20Z", "clips": 24, "seconds": pytest.approx(36.0, abs=0.1), "source": room,
         "adapted": ["normalization", "label_balance"], "std": "widen"}
    ]
    assert len(shift) == len(model.labels) and abs(sum(shift)) < 1e-3
    # the layers and labels are the model's; only the statistics and the output bias changed
    assert again.labels == model.labels and [layer.bits for layer in again.layers] == [8, 8]
    x = np.stack([model.features_from_file(p) for p, _ in setup["room"][:4]])
    assert np.allclose(again.predict_proba(x), adapted.predict_proba(x))
    assert not np.allclose(again.predict_proba(x), model.predict_proba(x))
    # deterministic: the same audio gives the same bytes
    second = tmp_path / "second.laq"
    model.adapt([room]).save(second)
    assert second.read_bytes() == out.read_bytes()
    # without the label balance only the statistics change
    plain = model.adapt([room], balance=False)
    assert plain.metadata["provenance"]["adaptations"][0]["adapted"] == ["normalization"]
    assert np.allclose(plain.predict_proba(x), adapted.predict_proba(x)) is False
    # the original file still loads and is unchanged by any of this
    assert "provenance" not in serlaq.load(setup["model"]).metadata


def normalization(model: serlaq.LaqModel, tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The stored (mean, std) of a model, read back from its saved file."""
    path = tmp_path / f"{id(model)}.laq"
    model.save(path)
    f = _native.LaqFile(str(path))
    return f.tensor("norm.mean"), f.tensor("norm.std")


def test_std_rules_widen_by_default_and_follow_their_names(setup, tmp_path):
    """The mean becomes the room's; the std the larger of the model's and the room's per
    feature (default), the room's own ("target") or the model's ("model")."""
    model = serlaq.load(setup["model"])
    room = str(Path(setup["room"][0][0]).parent)
    x = np.stack([model.features_from_file(p) for p, _ in setup["room"]]).astype(np.float64)
    mean0, std0 = normalization(model, tmp_path)
    rules = {rule: model.adapt([room], balance=False, std=rule) for rule in ("widen", "target", "model")}
    got = {rule: normalization(m, tmp_path) for rule, m in rules.items()}
    expect = {"target": x.std(0), "model": std0, "widen": np.maximum(std0, x.std(0))}
    for rule, (mean, std) in got.items():
        assert np.allclose(mean, x.mean(0), rtol=1e-4, atol=1e-4), rule
        assert np.allclose(std, np.maximum(expect[rule], 1e-3 * std0), rtol=1e-4, atol=1e-6), rule
        assert rules[rule].metadata["provenance"]["adaptations"][0]["std"] == rule
    narrower = x.std(0) < std0
    assert 0 < narrower.sum() < len(std0), "the room must be narrower than the model in some features only"
    assert np.array_equal(got["widen"][1], normalization(model.adapt([room], balance=False), tmp_path)[1])
    with pytest.raises(ValueError, match=r"std: unknown rule 'wide' \(accepted: widen, target, model\)"):
        model.adapt([room], std="wide")


def test_manifest_labels_are_ignored(setup, tmp_path):
    manifest = tmp_path / "room.csv"
    rows = ["path,label"] + [f"{p},{'sad' if i % 2 else 'nonsense'}" for i, (p, _) in enumerate(setup["room"])]
    manifest.write_text("\n".join(rows) + "\n")
    model = serlaq.load(setup["model"])
    by_manifest = model.adapt(manifest=manifest)
    by_folder = model.adapt([str(Path(setup["room"][0][0]).parent)])
    x = np.stack([model.features_from_file(p) for p, _ in setup["room"][:3]])
    assert np.array_equal(by_manifest.predict_proba(x), by_folder.predict_proba(x))


def test_cli_adapt_writes_the_model_and_names_bad_files(setup, tmp_path, capsys):
    room = tmp_path / "room"
    room.mkdir()
    for p, _ in setup["room"]:
        (room / Path(p).name).write_bytes(Path(p).read_bytes())
    (room / "broken.wav").write_bytes(b"RIFF....not audio")
    sf.write(str(room / "silence.wav"), np.zeros(22050, np.float32), 22050)
    out = tmp_path / "mine.laq"
    code, stdout, err = run_serlaq(["adapt", str(setup["model"]), str(room), "--out", str(out)], capsys)
    assert code == 0, err
    assert "on 24 clips" in stdout and str(out) in stdout and "2 files left out" in stdout
    lines = err.strip().splitlines()
    assert len(lines) == 2 and any("broken.wav" in l for l in lines) and any("silence.wav" in l for l in lines)
    assert serlaq.load(out).metadata["provenance"]["adaptations"][0]["clips"] == 24
    assert "most predicted label" in stdout
    assert serlaq.load(out).metadata["provenance"]["adaptations"][0]["adapted"] == ["normalization", "label_balance"]
    plain = tmp_path / "plain.laq"
    code, _, err = run_serlaq(["adapt", str(setup["model"]), str(room), "--out", str(plain), "--no-balance"], capsys)
    assert code == 0, err
    assert serlaq.load(plain).metadata["provenance"]["adaptations"][0]["adapted"] == ["normalization"]
    assert serlaq.load(out).metadata["provenance"]["adaptations"][0]["std"] == "widen"
    target = tmp_path / "target.laq"
    code, _, err = run_serlaq(["adapt", str(setup["model"]), str(room), "--out", str(target), "--std", "target"], capsys)
    assert code == 0, err
    assert serlaq.load(target).metadata["provenance"]["adaptations"][0]["std"] == "target"
    code, _, err = run_serlaq(["adapt", str(setup["model"]), str(room), "--out", str(tmp_path / "x.laq"), "--std", "wide"], capsys)
    assert code == 2 and "--std: unknown rule 'wide'" in err and not (tmp_path / "x.laq").exists()


def test_cli_adapt_reports_the_collapse_it_undoes(setup, tmp_path, capsys):
    """"most predicted label A% -> B%": A is what the model answered in the new room before
    adapting (its own statistics), not after the new statistics were applied."""
    room = str(Path(setup["room"][0][0]).parent)
    model = serlaq.load(setup["model"])
    answers = [r.label for r in model.predict_files([p for p, _ in setup["room"]])]
    before = max(map(answers.count, set(answers))) / len(answers)
    out = tmp_path / "a.laq"
    code, stdout, err = run_serlaq(["adapt", str(setup["model"]), room, "--out", str(out), "--no-balance"], capsys)
    assert code == 0, err
    adapted = [r.label for r in serlaq.load(out).predict_files([p for p, _ in setup["room"]])]
    after = max(map(adapted.count, set(adapted))) / len(adapted)
    assert before != after  # the room skews the answers; the new statistics spread them
    assert f"most predicted label {100 * before:.0f}% -> {100 * after:.0f}% of the clips" in stdout, stdout


def test_cli_adapt_records_a_folder_however_it_is_typed(setup, tmp_path, capsys, monkeypatch):
    """`room/`, `./room` and `room` are one source: the core's record of the inputs, which
    `serlaq-rt adapt` (given the words as typed) uses too, spells each path as pathlib does,
    so both commands write the same bytes whichever spelling each was given."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796000000")
    monkeypatch.chdir(Path(setup["room"][0][0]).parent.parent)
    sources = set()
    for i, spelled in enumerate(["room/", "./room", "room"]):
        out = tmp_path / f"{i}.laq"
        code, _, err = run_serlaq(["adapt", str(setup["model"]), spelled, "--out", str(out)], capsys)
        assert code == 0, err
        sources.add(serlaq.load(out).metadata["provenance"]["adaptations"][0]["source"])
    assert sources == {"room"}
    assert _native.adapt_source(["./room/", "a//b.wav"]) == "room, a/b.wav"


def test_cli_adapt_refuses_an_out_that_is_the_model_or_its_name(setup, tmp_path, capsys, monkeypatch):
    """A run folder stands for its model.laq, so --out RUN/model.laq would overwrite the
    input; `--out general` beside the shipped model would be read back as the shipped one."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.laq").write_bytes(Path(setup["model"]).read_bytes())
    before = (run / "model.laq").read_bytes()
    room = str(Path(setup["room"][0][0]).parent)
    code, _, err = run_serlaq(["adapt", str(run), room, "--out", str(run / "model.laq")], capsys)
    assert code == 2 and "is the model being adapted" in err and (run / "model.laq").read_bytes() == before
    monkeypatch.chdir(tmp_path)
    code, _, err = run_serlaq(["adapt", "general", room, "--out", "general"], capsys)
    assert code == 2 and "general is the shipped model's name" in err and "./general" in err
    assert not (tmp_path / "general").exists()


def test_cli_adapt_bad_input_is_one_line_and_the_input_untouched(setup, tmp_path, capsys):
    model = Path(setup["model"])
    before = model.read_bytes()
    few = tmp_path / "few"
    few.mkdir()
    for p, _ in setup["room"][:5]:
        (few / Path(p).name).write_bytes(Path(p).read_bytes())
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    for i in range(3):
        sf.write(str(quiet / f"s{i}.wav"), np.zeros(22050, np.float32), 22050)
    out = tmp_path / "out.laq"
    cases = [
        (["adapt", str(model), str(few), "--out", str(out)], "needs at least 20 clips", "15 more clips"),
        (["adapt", str(model), str(quiet), "--out", str(out)], "none of the 3 files holds usable audio", None),
        (["adapt", str(model), str(few), "--out", str(model)], "is the model being adapted", None),
        (["adapt", str(model), str(tmp_path / "nowhere"), "--out", str(out)], "no audio files given (1 input named above)", None),
        # a folder as --out, or one under a file: named before adapting (a traceback after it)
        (["adapt", str(model), str(few), "--out", str(quiet)], f"--out: {quiet}: is a folder; give the file to write", None),
        (["adapt", str(model), str(few), "--out", str(model / "x.laq")], f"{model} is a file, not a folder", None),
    ]
    for args, want, also in cases:
        code, _, err = run_serlaq(args, capsys)
        last = err.strip().splitlines()[-1]
        assert code != 0 and want in last, err
        if also:
            assert also in last, err
        assert "Traceback" not in err
        assert not out.exists()
        assert model.read_bytes() == before
    # a value given to the --balance/--no-balance switch: a usage error naming it, nothing written
    code, _, err = run_serlaq(["adapt", str(model), str(few), "--out", str(out), "--balance=maybe"], capsys)
    assert code == 2 and "'--balance' does not take a value" in err and "Traceback" not in err
    assert not out.exists() and model.read_bytes() == before
    # each input that gave nothing is named once, on its own line above the verdict
    _, _, err = run_serlaq(cases[3][0], capsys)
    assert [line for line in err.splitlines() if "nowhere" in line] == [err.splitlines()[0]], err
    # the silent files are each named on stderr
    _, _, err = run_serlaq(cases[1][0], capsys)
    assert sum("all silent" in l for l in err.splitlines()) == 3
    # missing folders above --out are made, as compress makes its own
    deep = tmp_path / "rooms" / "kitchen" / "adapted.laq"
    code, _, err = run_serlaq(["adapt", str(model), *[p for p, _ in setup["room"]], "--out", str(deep)], capsys)
    assert code == 0 and serlaq.load(deep).labels == serlaq.load(model).labels, err


def test_labels_the_room_holds_are_the_only_answers(setup, tmp_path, capsys):
    """A room of angry and sad speech only: told so, adapt balances over those two and the
    adapted model never answers neutral; the record names the labels; a label the model lacks,
    one given twice or a single one is one line, nothing written."""
    model = serlaq.load(setup["model"])
    room = [p for p, k in setup["room"] if LABELS[k] != "neutral"]
    held, _ = run_adapt(model, room, labels=["Anger", "sad"], min_clips=10, min_speech_seconds=10.0)
    rec = held.metadata["provenance"]["adaptations"][0]
    assert rec["labels"] == ["angry", "sad"] and rec["adapted"] == ["normalization", "labels", "label_balance"]
    assert rec["bias_shift"][LABELS.index("neutral")] == -1000.0
    x = np.stack([model.features_from_file(p) for p in room])
    proba = held.predict_proba(x)
    assert proba[:, LABELS.index("neutral")].max() < 1e-9
    assert {r.label for r in held.predict_files(room, workers=1)} <= {"angry", "sad"}
    # the balance over the two alone: their mean probabilities on the room are equal
    assert abs(proba[:, 0].mean() - proba[:, 2].mean()) < 0.02, proba.mean(0)
    # without the balance the held labels keep their logits, the others are still out of reach
    plain, _ = run_adapt(model, room, labels=["angry", "sad"], balance=False, min_clips=10, min_speech_seconds=10.0)
    rec = plain.metadata["provenance"]["adaptations"][0]
    assert rec["adapted"] == ["normalization", "labels"] and rec["bias_shift"] == [0.0, -1000.0, 0.0]
    # bad names: one line each, before any audio is read
    for labels, want in ((["angry", "calm"], '"calm" is not a label of the model (angry, neutral, sad)'),
                         (["sad", "sad"], '"sad" is given twice'), (["sad"], "at least 2")):
        with pytest.raises(AdaptError, match="adapt: labels: ") as info:
            run_adapt(model, room, labels=labels)
        assert want in str(info.value)
    out = tmp_path / "two.laq"
    code, stdout, err = run_serlaq(
        ["adapt", str(setup["model"]), *room, "--out", str(out), "--labels", "angry,sad", "--labels", ""], capsys
    )
    assert code != 0 and "needs at least 20 clips" in err  # 16 clips: the minimum still holds
    all_room = [p for p, _ in setup["room"]]
    code, stdout, err = run_serlaq(["adapt", str(setup["model"]), *all_room, "--out", str(out), "--labels", "angry,sad"], capsys)
    assert code == 0, err
    assert "answers among angry, sad" in stdout
    assert serlaq.load(out).metadata["provenance"]["adaptations"][0]["labels"] == ["angry", "sad"]
    bad = tmp_path / "bad.laq"
    code, _, err = run_serlaq(["adapt", str(setup["model"]), *all_room, "--out", str(bad), "--labels", "angry,boredom"], capsys)
    assert code == 1 and err.strip().splitlines()[-1].endswith('"boredom" is not a label of the model (angry, neutral, sad)')
    assert not bad.exists()


def test_waveforms_in_memory_adapt_as_their_files_do(setup, monkeypatch):
    """Clips a program holds as arrays (a microphone's utterances) adapt the model as the
    same clips' files do; one that cannot be used is named by its place and left out."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796000000")
    model = serlaq.load(setup["model"])
    paths = [p for p, _ in setup["room"]]
    waves, rates = zip(*(sf.read(p, dtype="int16") for p in paths))  # PCM integers, as a microphone gives
    from_files = model.adapt(paths, source="kitchen")
    from_waves = model.adapt([*waves[:5], np.full(4000, np.nan, np.float32), *waves[5:]], sample_rate=rates[0],
                             source="kitchen")
    assert from_waves.adaptation.failures == ["waveform 5: NaN/inf samples (4000 of 4000)"]
    assert from_waves.adaptation.clips == from_files.adaptation.clips == 24
    assert _native.model_bytes(from_waves._native) == _native.model_bytes(from_files._native)
    # mixed with files, the record names both
    mixed = model.adapt([paths[0], *waves[1:]], sample_rate=rates[0])
    assert mixed.metadata["provenance"]["adaptations"][0]["source"] == f"{paths[0]}, 23 waveforms"
    assert accuracy(mixed, setup["room"]) >= accuracy(model, setup["room"]) + 0.25
    # a waveform needs its rate; with none usable, one error naming the first
    with pytest.raises(AdaptError, match=r"no usable audio given \(waveform 0: needs its sample rate"):
        model.adapt(list(waves))


def test_one_long_recording_of_the_room_is_enough(setup, tmp_path, capsys):
    """A long recording (here the room's clips joined, twice over: 72 s) counts as its 2-s
    speech windows, so `serlaq adapt` on that one file adapts, and as well as on the clips."""
    model = serlaq.load(setup["model"])
    waves = [sf.read(p, dtype="float32") for p, _ in setup["room"]]
    rate = waves[0][1]
    joined = tmp_path / "afternoon.wav"
    sf.write(str(joined), np.concatenate([w for w, _ in waves] * 2), rate, subtype="FLOAT")
    out = tmp_path / "afternoon.laq"
    code, stdout, err = run_serlaq(["adapt", str(setup["model"]), str(joined), "--out", str(out)], capsys)
    assert code == 0, err
    assert stdout.startswith(f"adapted {setup['model']} on 36 clips (36 of them windows of 1 long recording; 72.0 s, "), stdout
    adapted = serlaq.load(out)
    assert adapted.metadata["provenance"]["adaptations"][0]["clips"] == 36
    away, back = accuracy(model, setup["room"]), accuracy(adapted, setup["room"])
    assert back >= away + 0.25 and back >= accuracy(model.adapt([p for p, _ in setup["room"]]), setup["room"]) - 0.1
    # the same recording held as one array is one input, not one clip per sample
    wave, rate = sf.read(str(joined), dtype="float32")
    from_array = model.adapt(wave, sample_rate=rate)
    assert from_array.adaptation.clips == 36
    clips = [p for p, _ in setup["room"]]
    assert [r.probabilities for r in from_array.predict(clips)] == [r.probabilities for r in adapted.predict(clips)]


def test_python_api_too_little_audio_raises_with_the_bad_files(setup):
    model = serlaq.load(setup["model"])
    with pytest.raises(AdaptError, match="too little audio") as info:
        run_adapt(model, [p for p, _ in setup["room"][:3]] + ["/nonexistent.wav"])
    assert any("nonexistent.wav" in f for f in info.value.failures)


def test_hostile_statistics_are_refused_by_the_reader(tmp_path):
    """A `.laq` whose normalization holds a huge std, or a width that does not match."""
    from rt_builders import random_model

    built = random_model(tmp_path / "ok.laq")
    layers = [(w, b) for w, b in zip(built.weights, built.biases)]
    std = built.std.copy()
    std[3] = 1e30
    with pytest.raises(LaqFormatError, match=r"'normalization.std' value 3 is 1e30"):
        write_model(tmp_path / "huge.laq", [w for w, _ in layers], [b for _, b in layers], [8, 8, 8], built.labels,
                    built.mean, std)
        serlaq.load(tmp_path / "huge.laq")
    with pytest.raises(LaqFormatError, match=r"'normalization.mean' tensor \"norm.mean\" has 179 values, expected 180"):
        write_model(tmp_path / "narrow.laq", [w for w, _ in layers], [b for _, b in layers], [8, 8, 8], built.labels,
                    built.mean[:179], built.std)
        serlaq.load(tmp_path / "narrow.laq")


def room_stream(setup: dict, order_seed: int = 0) -> tuple[np.ndarray, list[int], float]:
    """The room's clips back to back in a shuffled order, each cut (or looped) to 64 STFT hops
    of the model, so that window k of a (window = hop = 64 hops) timeline is clip k (the first
    clip once more at the end, so the last clip's window is a full one)."""
    rng = np.random.default_rng(order_seed)
    clips = [setup["room"][i] for i in rng.permutation(len(setup["room"]))]
    n = 64 * int(PAPER_FEATURES["hop_length"])
    waves = [np.resize(_native.load_audio(p, 22050, 2048), n) for p, _ in clips]  # a short clip repeats
    wave = np.concatenate([*waves, waves[0]])
    return wave, [k for _, k in clips], n / 22050


def stream_accuracy(model: serlaq.LaqModel, setup: dict, skip: int = 0, **running) -> tuple[float, list]:
    wave, truth, seconds = room_stream(setup)
    segs = list(model.segments(wave, 22050, window=seconds, hop=seconds, vad=False, **running))[: len(truth)]
    assert len(segs) == len(truth) and all(s.start_sample == k * len(wave) // (len(truth) + 1) for k, s in enumerate(segs))
    hits = [model.labels.index(s.label) == k for s, k in zip(segs, truth)]
    return float(np.mean(hits[skip:])), segs


def test_running_normalisation_adapts_a_stream_to_its_room(setup):
    """A recording made in the new room, streamed: with running normalisation the windows
    after the first few are judged as well as after `adapt` on the whole room; without it
    the room's shift stays; a huge prior gives back the model's own statistics."""
    model = serlaq.load(setup["model"])
    fixed, plain = stream_accuracy(model, setup, skip=8)
    running, _ = stream_accuracy(model, setup, skip=8, running_norm=True, running_prior=2.0)
    home = accuracy(model, setup["same"])
    assert fixed <= home - 0.3, (home, fixed)
    assert running >= fixed + 0.25 and running >= home - 0.2, (home, fixed, running)
    _, frozen = stream_accuracy(model, setup, running_norm=True, running_prior=1e9)
    for a, b in zip(plain, frozen):
        assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) < 1e-4
    # the stream's state: a live push in two chunks gives the same windows as offline
    wave, _, seconds = room_stream(setup)
    stream = model.stream(22050, window=seconds, hop=seconds, vad=False, running_norm=True, running_prior=2.0)
    live = stream.push(wave[:50_000]) + stream.push(wave[50_000:]) + stream.flush()
    offline = list(model.segments(wave, 22050, window=seconds, hop=seconds, vad=False, running_norm=True, running_prior=2.0))
    assert [s.probabilities for s in live] == [s.probabilities for s in offline]


def test_running_balance_is_on_by_default_and_can_be_turned_off(setup, tmp_path, capsys):
    """Running normalisation divides each window by the stream's label mix unless
    `running_balance=False` (Python) / `--no-running-balance` (CLI), which gives the
    statistics-only timeline; the balance spreads the stream over more labels."""
    model = serlaq.load(setup["model"])
    wave, truth, seconds = room_stream(setup)

    def probs(**kw) -> list[dict]:
        return [s.probabilities for s in model.segments(wave, 22050, window=seconds, hop=seconds, vad=False,
                                                       running_norm=True, running_prior=2.0, **kw)]  # fmt: skip

    default, balanced, stats_only = probs(), probs(running_balance=True), probs(running_balance=False)
    assert default == balanced and stats_only != balanced
    top = {name: max(np.unique([max(p, key=p.get) for p in ps], return_counts=True)[1]) / len(ps)
           for name, ps in [("balanced", balanced), ("stats_only", stats_only)]}  # fmt: skip
    assert top["balanced"] <= top["stats_only"], top
    wav = tmp_path / "room.wav"
    sf.write(str(wav), wave, 22050, subtype="FLOAT")
    args = ["predict", str(setup["model"]), str(wav), "--segments", "--no-vad", "--window", repr(seconds), "--hop",
            repr(seconds), "--format", "jsonl", "--running-norm", "--running-prior", "2", "--no-running-balance"]  # fmt: skip
    code, out, err = run_serlaq(args, capsys)
    assert code == 0, err
    cli = [rec["probabilities"] for rec in map(json.loads, out.splitlines()) if "start" in rec]
    assert [max(p, key=p.get) for p in cli] == [max(p, key=p.get) for p in stats_only]
    for c, w in zip(cli, stats_only):
        assert max(abs(c[k] - w[k]) for k in w) < 1e-6
    code, _, err = run_serlaq(["predict", str(setup["model"]), str(wav), "--segments", "--no-running-balance"], capsys)
    assert code == 2 and "only with --running-norm" in err


@pytest.mark.parametrize("flag,value", [("running_prior", 0.5), ("running_horizon", float("nan")), ("running_prior", 1e12)])
def test_running_normalisation_bad_numbers_name_the_option(setup, flag, value):
    model = serlaq.load(setup["model"])
    with pytest.raises(ValueError, match=flag):
        model.stream(22050, running_norm=True, **{flag: value})


def test_cli_running_norm_only_with_segments(setup, tmp_path, capsys):
    code, _, err = run_serlaq(["predict", str(setup["model"]), setup["room"][0][0], "--running-norm"], capsys)
    assert code == 2 and "--running-norm: only with --segments" in err
    code, _, err = run_serlaq(["predict", str(setup["model"]), setup["room"][0][0], "--segments", "--running-prior", "5"], capsys)
    assert code == 2 and "only with --running-norm" in err
    wave, truth, seconds = room_stream(setup)
    wav = tmp_path / "room.wav"
    sf.write(str(wav), wave, 22050, subtype="FLOAT")
    hits = {}
    for extra in ([], ["--running-norm", "--running-prior", "2"]):
        args = ["predict", str(setup["model"]), str(wav), "--segments", "--no-vad", "--window", repr(seconds),
                "--hop", repr(seconds), "--format", "jsonl", *extra]  # fmt: skip
        code, out, err = run_serlaq(args, capsys)
        assert code == 0, err
        labels = [rec["label"] for rec in map(json.loads, out.splitlines()) if "start" in rec][: len(truth)]
        hits[bool(extra)] = np.mean([LABELS[k] == lab for k, lab in zip(truth[8:], labels[8:])])
    assert hits[True] >= hits[False] + 0.25, hits
