"""Corpus layouts, label mapping, speakers, ordering and errors of `discover`.

Discovery only reads names, so most tests use empty placeholder files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from serlaq.data.corpora import Clip, canonical_label, discover, scan
from serlaq.errors import DataError


def touch(root: Path, *names: str) -> Path:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    return root


def summary(clips: list[Clip], root: Path) -> list[tuple[str, str, str]]:
    return [(c.path.relative_to(root).as_posix(), c.label, c.speaker) for c in clips]


def test_emodb(tmp_path: Path) -> None:
    touch(tmp_path / "wav", "03a01Fa.wav", "16b10Wb.wav", "08a02Ld.wav", "11a05Ea.wav", "09b03Ac.wav", "13a07Td.wav", "10a01Nc.wav")
    clips = discover(tmp_path, "emodb")
    assert summary(clips, tmp_path) == [
        ("wav/03a01Fa.wav", "happy", "03"),
        ("wav/08a02Ld.wav", "boredom", "08"),
        ("wav/09b03Ac.wav", "fear", "09"),
        ("wav/10a01Nc.wav", "neutral", "10"),
        ("wav/11a05Ea.wav", "disgust", "11"),
        ("wav/13a07Td.wav", "sad", "13"),
        ("wav/16b10Wb.wav", "angry", "16"),
    ]
    assert discover(tmp_path) == clips  # auto


@pytest.mark.parametrize("nested", [False, True])
def test_tess_flat_and_per_emotion_folders(tmp_path: Path, nested: bool) -> None:
    names = ["OAF_back_angry.wav", "OAF_bean_ps.wav", "YAF_dog_sad.wav", "YAF_chair_neutral.wav", "OAF_base_disgust.wav", "YAF_mess_fear.wav", "OAF_pole_happy.wav"]
    if nested:
        names = [f"{n.split('_')[0]}_{n.rsplit('_', 1)[1][:-4]}/{n}".replace("_ps/", "_Pleasant_surprise/") for n in names]
    touch(tmp_path, *names)
    clips = discover(tmp_path, "tess")
    got = {(c.path.name, c.label, c.speaker) for c in clips}
    assert ("OAF_bean_ps.wav", "surprise", "OAF") in got
    assert ("YAF_dog_sad.wav", "sad", "YAF") in got
    assert {c.label for c in clips} == {"angry", "surprise", "sad", "neutral", "disgust", "fear", "happy"}
    assert discover(tmp_path) == clips


def test_savee_flat_and_speaker_folders(tmp_path: Path) -> None:
    touch(tmp_path / "flat", "DC_a01.wav", "JE_sa03.wav", "JK_su15.wav", "KL_n30.wav", "DC_d02.wav", "JE_f04.wav", "KL_h05.wav")
    clips = discover(tmp_path / "flat")  # auto
    assert {(c.path.name, c.label, c.speaker) for c in clips} == {
        ("DC_a01.wav", "angry", "DC"), ("JE_sa03.wav", "sad", "JE"), ("JK_su15.wav", "surprise", "JK"),
        ("KL_n30.wav", "neutral", "KL"), ("DC_d02.wav", "disgust", "DC"), ("JE_f04.wav", "fear", "JE"),
        ("KL_h05.wav", "happy", "KL"),
    }
    touch(tmp_path / "orig", "AudioData/DC/a01.wav", "AudioData/JK/sa02.wav", "AudioData/KL/su03.wav")
    clips = discover(tmp_path / "orig", "savee")
    assert summary(clips, tmp_path / "orig") == [
        ("AudioData/DC/a01.wav", "angry", "DC"),
        ("AudioData/JK/sa02.wav", "sad", "JK"),
        ("AudioData/KL/su03.wav", "surprise", "KL"),
    ]
    assert discover(tmp_path / "orig") == clips


def test_folder_per_class_with_and_without_speaker_folders(tmp_path: Path) -> None:
    touch(tmp_path, "Angry/x1.wav", "sadness/spk2/y.flac", "neutral/spk1/deeper/z.WAV", "calm/c.ogg", "notes.txt", "happy/readme.md")
    clips = discover(tmp_path, "folder")
    assert summary(clips, tmp_path) == [
        ("Angry/x1.wav", "angry", "unknown"),
        ("calm/c.ogg", "calm", "unknown"),
        ("neutral/spk1/deeper/z.WAV", "neutral", "spk1"),
        ("sadness/spk2/y.flac", "sad", "spk2"),
    ]
    assert discover(tmp_path) == clips


def test_synthetic_corpus_is_recognised(tiny_corpus: Path) -> None:
    clips = discover(tiny_corpus)
    assert len(clips) == 7 * 6
    assert {c.speaker for c in clips} == {"f01", "m02", "f03"}
    assert clips == sorted(clips) and clips == discover(tiny_corpus, "folder")


def test_csv_manifest_with_and_without_header(tmp_path: Path) -> None:
    touch(tmp_path / "audio", "a.wav", "b.wav", "c.wav")
    (tmp_path / "with.csv").write_text("speaker,label,path\ns1,Anger,audio/b.wav\ns2,happy,audio/a.wav\n")
    clips = discover(tmp_path, "csv", manifest=tmp_path / "with.csv")
    assert summary(clips, tmp_path) == [("audio/a.wav", "happy", "s2"), ("audio/b.wav", "angry", "s1")]
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "plain.csv").write_text(f"../audio/c.wav,sad\n{tmp_path / 'audio' / 'a.wav'},neutral,bob\n\n")
    clips = discover(tmp_path / "lists" / "plain.csv")  # auto: a .csv root is a manifest
    assert [(c.path.name, c.label, c.speaker) for c in clips] == [("a.wav", "neutral", "bob"), ("c.wav", "sad", "unknown")]
    assert clips[1].path == tmp_path / "lists" / ".." / "audio" / "c.wav"


def test_csv_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    touch(tmp_path, "a.wav", "b.wav")
    m = tmp_path / "m.csv"
    m.write_text("path,label\na.wav,happy\nb.wav,exstatic\nmissing.wav,sad\n")
    with pytest.raises(DataError, match=r"b\.wav: unknown label: 'exstatic' \(.*m\.csv line 3"):
        discover(tmp_path, "csv", manifest=m)
    with caplog.at_level(logging.WARNING, logger="serlaq.data"):
        clips = discover(tmp_path, "csv", manifest=m, on_error="skip")
    assert [c.path.name for c in clips] == ["a.wav"]
    assert "skipped 2 of 3 files (unknown label: 1, file not found: 1)" in caplog.text
    m.write_text("path,label\na.wav\n")
    with pytest.raises(DataError, match="line 2: expected columns path,label"):
        discover(tmp_path, "csv", manifest=m)
    with pytest.raises(DataError, match="manifest not found"):
        discover(tmp_path, "csv", manifest=tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("\n")
    with pytest.raises(DataError, match="manifest is empty"):
        discover(tmp_path, "csv", manifest=tmp_path / "empty.csv")


def test_unparsable_names_fail_or_skip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    touch(tmp_path, "03a01Fa.wav", "03a01Wa.wav", "03a02Xa.wav", "recording.wav")
    with pytest.raises(DataError, match=r"03a02Xa\.wav: file name does not follow EMODB naming .*and 1 more"):
        discover(tmp_path, "emodb")
    with caplog.at_level(logging.WARNING, logger="serlaq.data"):
        clips = discover(tmp_path, "emodb", on_error="skip")
    assert [c.label for c in clips] == ["happy", "angry"]
    assert "skipped 2 of 4 files (file name does not follow EMODB naming: 2)" in caplog.text
    found = scan(tmp_path, "emodb")
    assert [p.name for p, _ in found.problems] == ["03a02Xa.wav", "recording.wav"]


def test_corpus_level_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="corpus directory not found"):
        discover(tmp_path / "absent")
    with pytest.raises(DataError, match="no audio files"):
        discover(touch(tmp_path / "texts", "a.txt"))
    with pytest.raises(DataError, match="unknown corpus layout 'timit'"):
        discover(tmp_path, "timit")
    with pytest.raises(DataError, match="cannot recognise the corpus layout"):
        discover(touch(tmp_path / "odd", "x/1.wav", "y/2.wav"))
    with pytest.raises(DataError, match="no usable audio clips"):
        discover(touch(tmp_path / "bad", "a.wav", "b.wav"), "emodb", on_error="skip")
    with pytest.raises(DataError, match="on_error"):
        discover(tmp_path, "emodb", on_error="ignore")
    f = touch(tmp_path, "file.wav") / "file.wav"
    with pytest.raises(DataError, match="not a directory"):
        discover(f, "emodb")


def test_hidden_files_are_ignored(tmp_path: Path) -> None:
    touch(tmp_path, "03a01Fa.wav", "._03a01Fa.wav", ".tmp/03a01Wa.wav")
    assert [c.path.name for c in discover(tmp_path)] == ["03a01Fa.wav"]


@pytest.mark.parametrize(
    "name,label",
    [("Anger", "angry"), ("pleasant surprise", "surprise"), ("Pleasant_surprised", "surprise"), ("ps", "surprise"),
     ("SADNESS", "sad"), ("calm", "calm"), ("Bored", "boredom"), ("excited", None)],
)
def test_canonical_labels(name: str, label: str | None) -> None:
    assert canonical_label(name) == label


# soundfile's container + codec for each suffix the native decoder reads
_WRITE_AS = {
    ".wav": ("WAV", "PCM_16"),
    ".wave": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".oga": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
    ".aif": ("AIFF", "PCM_16"),
    ".aiff": ("AIFF", "PCM_16"),
}


def test_discovery_finds_exactly_what_the_decoder_reads(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    from serlaq import _native
    from serlaq.data import corpora
    from serlaq.errors import AudioError

    assert corpora.AUDIO_SUFFIXES == frozenset(_native.AUDIO_SUFFIXES)
    assert set(_WRITE_AS) == set(_native.AUDIO_SUFFIXES), "a suffix without a test file"
    y = (0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000)).astype(np.float32)
    folder = tmp_path / "happy"
    folder.mkdir()
    for i, (suffix, (fmt, subtype)) in enumerate(sorted(_WRITE_AS.items())):
        name = f"c{i}{suffix.upper() if i % 2 else suffix}"  # suffixes match in any case
        sf.write(str(folder / name), y, 16000, format=fmt, subtype=subtype)
    # formats soundfile writes that the decoder does not read: not audio for discovery
    sf.write(str(folder / "sun.au"), y, 16000, format="AU", subtype="PCM_16")
    sf.write(str(folder / "w64.w64"), y, 16000, format="W64", subtype="PCM_16")
    found = discover(tmp_path, "folder")
    assert sorted(c.path.suffix.lower() for c in found) == sorted(_WRITE_AS)
    for clip in found:
        wave = _native.load_audio(clip.path, 16000, 1)
        assert abs(wave.size - 8000) <= 1152, clip.path  # MP3 pads up to a frame
    for name in ("sun.au", "w64.w64"):
        with pytest.raises(AudioError):
            _native.load_audio(folder / name, 16000, 1)


@pytest.mark.parametrize("nested", [False, True])
def test_tess_mistyped_speaker_prefix_is_its_speaker(tmp_path: Path, nested: bool) -> None:
    # the public TESS copy holds OAF_neutral/OA_bite_neutral.wav: TESS has two speakers, OAF and YAF
    names = ["OAF_back_neutral.wav", "OA_bite_neutral.wav", "YAF_back_neutral.wav", "YA_dog_sad.wav", "YAF_bean_sad.wav"]
    if nested:
        names = [f"{'OAF' if n.startswith('OA') else 'YAF'}_{n[:-4].rsplit('_', 1)[1]}/{n}" for n in names]
    touch(tmp_path, *names)
    clips = discover(tmp_path, "tess")
    assert {c.path.name: c.speaker for c in clips} == {
        "OAF_back_neutral.wav": "OAF", "OA_bite_neutral.wav": "OAF", "YAF_back_neutral.wav": "YAF",
        "YA_dog_sad.wav": "YAF", "YAF_bean_sad.wav": "YAF",
    }


def test_tess_naming_with_other_speakers_keeps_them(tmp_path: Path) -> None:
    touch(tmp_path, "Bob_back_angry.wav", "Ann_dog_sad.wav", "F_cat_happy.wav")
    assert sorted(c.speaker for c in discover(tmp_path, "tess")) == ["ANN", "BOB", "F"]  # "F" abbreviates no TESS speaker
