"""Corpus layouts, label mapping, speakers, ordering and errors of `discover`.

Discovery only reads names, so most tests use empty placeholder files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from m4a import write_m4a
from webm import write_webm

from serlaq.data.corpora import LABELS, Clip, canonical_label, discover, scan
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


def test_folder_per_speaker_then_class(tmp_path: Path) -> None:
    """CASIA (`speaker/emotion/clip.wav`) and ESD (`speaker/Emotion/train/clip.wav`): the
    class is the folder named for an emotion, the speaker the folder above it."""
    touch(
        tmp_path,
        "liuchang/angry/201.wav", "liuchang/sad/202.wav", "wangzhe/neutral/201.wav",
        "0011/Happy/train/0011_000701.wav", "0011/Surprise/test/0011_001401.wav",
    )  # fmt: skip
    clips = discover(tmp_path)
    assert summary(clips, tmp_path) == [
        ("0011/Happy/train/0011_000701.wav", "happy", "0011"),
        ("0011/Surprise/test/0011_001401.wav", "surprise", "0011"),
        ("liuchang/angry/201.wav", "angry", "liuchang"),
        ("liuchang/sad/202.wav", "sad", "liuchang"),
        ("wangzhe/neutral/201.wav", "neutral", "wangzhe"),
    ]
    assert scan(tmp_path).layout == "folder"
    # a folder no label names: the file and its folders, and the way to name the label
    touch(tmp_path, "wangzhe/misc/9.wav")
    found = scan(tmp_path, "folder")
    assert [(p.relative_to(tmp_path).as_posix(), why) for p, why in found.problems] == [
        ("wangzhe/misc/9.wav", f"unknown label: no folder of 'wangzhe/misc' is a known emotion ({', '.join(LABELS)}; --map NAME=LABEL names another)")
    ]


def test_shemo(tmp_path: Path) -> None:
    touch(tmp_path, "female/F01A01.wav", "female/F12W03.wav", "male/M03N10.wav", "male/M03S02.wav", "male/M07H01.wav", "female/F02F04.wav")
    clips = discover(tmp_path)
    assert summary(clips, tmp_path) == [
        ("female/F01A01.wav", "angry", "F01"),
        ("female/F02F04.wav", "fear", "F02"),
        ("female/F12W03.wav", "surprise", "F12"),
        ("male/M03N10.wav", "neutral", "M03"),
        ("male/M03S02.wav", "sad", "M03"),
        ("male/M07H01.wav", "happy", "M07"),
    ]
    assert scan(tmp_path).layout == "shemo"
    touch(tmp_path, "male/M03X01.wav")
    assert scan(tmp_path, "shemo").problems == [
        (tmp_path / "male/M03X01.wav", "unknown label: ShEMO emotion 'X' is not one of A, F, H, N, S, W")
    ]


def test_labels_a_caller_maps_are_kept_as_written(tmp_path: Path) -> None:
    """`raw_labels`: a corpus's own codes (MSP-Podcast's A, IEMOCAP's xxx) pass discovery
    as their keys, for `--map` to rename or drop; any other unknown label is still named."""
    touch(tmp_path, "a.wav", "b.wav", "c.wav", "Other/d.wav", "angry/e.wav")
    (tmp_path / "m.csv").write_text("FileName,EmoClass,SpkrID\na.wav,A,1\nb.wav,X,2\nc.wav,Q,3\n")
    found = scan(tmp_path / "m.csv", raw_labels=["a", "x"])
    assert [(c.path.name, c.label, c.speaker) for c in found.clips] == [("a.wav", "a", "1"), ("b.wav", "x", "2")]
    assert [(p.name, why.split(" (")[0]) for p, why in found.problems] == [("c.wav", "unknown label: 'Q'")]
    assert "--map Q=LABEL names it" in found.problems[0][1]
    assert scan(tmp_path / "m.csv").problems[0][1].startswith("unknown label: 'A'")  # nothing mapped: unknown
    assert summary(discover(tmp_path, "folder", raw_labels=["other"], on_error="skip"), tmp_path) == [
        ("Other/d.wav", "other", "unknown"),
        ("angry/e.wav", "angry", "unknown"),
    ]


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
    # the column names users' spreadsheets have; a quoted path may hold a comma
    touch(tmp_path / "audio", "d, e.wav")
    (tmp_path / "named.csv").write_text('File,Emotion,Speaker\n"audio/d, e.wav",sadness,s9\n')
    clips = discover(tmp_path, "csv", manifest=tmp_path / "named.csv")
    assert summary(clips, tmp_path) == [("audio/d, e.wav", "sad", "s9")]


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
    with pytest.raises(DataError, match="m.csv line 2: expected columns path,label\\[,speaker\\], got no label"):
        discover(tmp_path, "csv", manifest=m)
    m.write_text("a.wav,happy\n\n,sad\n")  # the line counts the blank one
    with pytest.raises(DataError, match="m.csv line 3: expected columns path,label\\[,speaker\\], got no path"):
        discover(tmp_path, "csv", manifest=m)
    m.write_bytes(b"RIFF\xff\xfe")  # audio given as the manifest
    with pytest.raises(DataError, match="m.csv: not a manifest: not UTF-8 text"):
        discover(tmp_path, "csv", manifest=m)
    with open(m, "wb") as f:  # sparse: refused before it is read
        f.truncate((64 << 20) + 1)
    with pytest.raises(DataError, match="m.csv: manifest is larger than 64 MiB"):
        discover(tmp_path, "csv", manifest=m)
    with pytest.raises(DataError, match="manifest not found"):
        discover(tmp_path, "csv", manifest=tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("\n")
    with pytest.raises(DataError, match="empty.csv: manifest has no rows"):
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
     ("SADNESS", "sad"), ("calm", "calm"), ("Bored", "boredom"), ("excited", "excited"), ("Frustration", "frustrated"),
     ("contempt", "contempt"), ("ANG", "angry"), ("hap", "happy"), ("exc", "excited"), ("fru", "frustrated"),
     ("joyful", None), ("oth", None)],
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
    ".aifc": ("AIFF", "FLOAT"),  # libsndfile writes float AIFF as AIFF-C (fl32)
    ".m4a": ("M4A", "ALAC"),  # tests/m4a.py: soundfile writes no MP4
    ".caf": ("CAF", "ALAC_16"),
    ".opus": ("OGG", "OPUS"),
    ".webm": ("WEBM", "OPUS"),  # tests/webm.py: libsndfile's Opus packets in WebM
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
        if fmt == "M4A":
            write_m4a(folder / name, (y * 32767).astype(np.int16), 16000)
        elif fmt == "WEBM":
            write_webm(folder / name, y, 16000)
        else:
            sf.write(str(folder / name), y, 16000, format=fmt, subtype=subtype)
    # formats soundfile writes that the decoder does not read: not audio for discovery
    sf.write(str(folder / "sun.au"), y, 16000, format="AU", subtype="PCM_16")
    sf.write(str(folder / "w64.w64"), y, 16000, format="W64", subtype="PCM_16")
    found = discover(tmp_path, "folder")
    assert sorted(c.path.suffix.lower() for c in found) == sorted(_WRITE_AS)
    for clip in found:
        wave = _native.load_audio(clip.path, 16000, 1)
        assert abs(wave.size - 8000) <= 1152, clip.path  # MP3 pads up to a frame, WebM keeps Opus' last
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


# --- RAVDESS, CREMA-D, EMOVO ------------------------------------------------------------

RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fear", "07": "disgust", "08": "surprise"}
CREMAD_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
EMOVO_EMOTIONS = {"dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fear", "rab": "angry", "sor": "surprise", "tri": "sad"}


def ravdess_names() -> list[str]:
    """Every emotion, speech and song, both intensities/statements/repetitions, in Actor_NN/ folders."""
    names = []
    for i, (code, _) in enumerate(RAVDESS_EMOTIONS.items()):
        actor = ("01", "12", "24")[i % 3]
        channel, intensity, statement, repetition = ("01", "02")[i % 2], ("01", "02")[i // 2 % 2], ("01", "02")[i // 4 % 2], ("02", "01")[i % 2]
        names.append(f"Actor_{actor}/03-{channel}-{code}-{intensity}-{statement}-{repetition}-{actor}.wav")
    return names


def test_ravdess(tmp_path: Path) -> None:
    touch(tmp_path, *ravdess_names())
    clips = discover(tmp_path, "ravdess")
    assert {(c.path.name, c.label, c.speaker) for c in clips} == {
        ("03-01-01-01-01-02-01.wav", "neutral", "01"),
        ("03-02-02-01-01-01-12.wav", "calm", "12"),
        ("03-01-03-02-01-02-24.wav", "happy", "24"),
        ("03-02-04-02-01-01-01.wav", "sad", "01"),
        ("03-01-05-01-02-02-12.wav", "angry", "12"),
        ("03-02-06-01-02-01-24.wav", "fear", "24"),
        ("03-01-07-02-02-02-01.wav", "disgust", "01"),
        ("03-02-08-02-02-01-12.wav", "surprise", "12"),
    }
    assert clips == sorted(clips)
    assert discover(tmp_path) == clips  # auto
    assert scan(tmp_path).layout == "ravdess"


def cremad_names() -> list[str]:
    """Every emotion and every intensity spelling, flat in AudioWAV/ as CREMA-D ships."""
    intensities = ("LO", "MD", "HI", "XX", "X", "XX")
    actors = ("1001", "1045", "1091")
    sentences = ("DFA", "IEO", "TIE", "IWW", "ITS", "WSI")
    return [f"AudioWAV/{actors[i % 3]}_{sentences[i]}_{code}_{intensities[i]}.wav" for i, code in enumerate(CREMAD_EMOTIONS)]


def test_cremad(tmp_path: Path) -> None:
    touch(tmp_path, *cremad_names())
    clips = discover(tmp_path, "cremad")
    assert summary(clips, tmp_path) == [
        ("AudioWAV/1001_DFA_ANG_LO.wav", "angry", "1001"),
        ("AudioWAV/1001_IWW_HAP_XX.wav", "happy", "1001"),
        ("AudioWAV/1045_IEO_DIS_MD.wav", "disgust", "1045"),
        ("AudioWAV/1045_ITS_NEU_X.wav", "neutral", "1045"),
        ("AudioWAV/1091_TIE_FEA_HI.wav", "fear", "1091"),
        ("AudioWAV/1091_WSI_SAD_XX.wav", "sad", "1091"),
    ]
    assert discover(tmp_path) == clips  # auto
    assert scan(tmp_path).layout == "cremad"


def emovo_names() -> list[str]:
    """Every emotion and speaker, in per-speaker folders as EMOVO ships."""
    speakers = ("f1", "f2", "f3", "m1", "m2", "m3")
    sentences = ("b1", "b3", "d2", "l1", "l4", "n1", "n5")
    return [f"{speakers[i % 6]}/{code}-{speakers[i % 6]}-{sentences[i]}.wav" for i, code in enumerate(EMOVO_EMOTIONS)]


def test_emovo(tmp_path: Path) -> None:
    touch(tmp_path, *emovo_names())
    clips = discover(tmp_path, "emovo")
    assert summary(clips, tmp_path) == [
        ("f1/dis-f1-b1.wav", "disgust", "f1"),
        ("f1/tri-f1-n5.wav", "sad", "f1"),
        ("f2/gio-f2-b3.wav", "happy", "f2"),
        ("f3/neu-f3-d2.wav", "neutral", "f3"),
        ("m1/pau-m1-l1.wav", "fear", "m1"),
        ("m2/rab-m2-l4.wav", "angry", "m2"),
        ("m3/sor-m3-n1.wav", "surprise", "m3"),
    ]
    assert discover(tmp_path) == clips  # auto
    assert scan(tmp_path).layout == "emovo"
    touch(tmp_path / "upper", "NEU-M2-L3.wav")  # a copy with upper-case names reads the same
    assert summary(discover(tmp_path / "upper", "emovo"), tmp_path / "upper") == [("NEU-M2-L3.wav", "neutral", "m2")]


# (layout, folder, a good name beside the bad one, the bad stem, words of its reason)
BAD_NAMES = [
    *(("ravdess", "Actor_12", "03-01-05-01-02-01-12", stem, reason) for stem, reason in [
        ("01-01-05-01-02-01-12", "RAVDESS modality 01 is audio-video; serlaq reads the audio-only files, modality 03"),
        ("02-01-05-01-02-01-12", "RAVDESS modality 02 is video-only; serlaq reads the audio-only files, modality 03"),
        ("04-01-05-01-02-01-12", "modality 04 is not 01-03"),
        ("03-03-05-01-02-01-12", "vocal channel 03 is not 01 (speech) or 02 (song)"),
        ("03-01-00-01-02-01-12", "unknown label: RAVDESS emotion 00 is not 01-08"),
        ("03-01-09-01-02-01-12", "unknown label: RAVDESS emotion 09 is not 01-08"),
        ("03-01-05-03-02-01-12", "intensity 03 is not 01-02"),
        ("03-01-05-01-00-01-12", "statement 00 is not 01-02"),
        ("03-01-05-01-02-03-12", "repetition 03 is not 01-02"),
        ("03-01-05-01-02-01-25", "actor 25 is not 01-24"),
        ("03-01-05-01-02-01-00", "actor 00 is not 01-24"),
        ("03-01-05-01-02-01", "file name does not follow RAVDESS naming (e.g. Actor_12/03-01-05-01-02-01-12.wav)"),
        ("3-1-5-1-2-1-12", "file name does not follow RAVDESS naming"),
    ]),
    *(("cremad", "", "1001_DFA_ANG_XX", stem, reason) for stem, reason in [
        ("1000_DFA_ANG_XX", "actor 1000 is not 1001-1091"),
        ("1092_DFA_ANG_XX", "actor 1092 is not 1001-1091"),
        ("1001_DFA_CAL_XX", "unknown label: CREMA-D emotion 'CAL' is not one of ANG, DIS, FEA, HAP, NEU, SAD"),
        ("1001_DFA_ANG_MM", "intensity 'MM' is not one of LO, MD, HI, XX, X"),
        ("1001_DFA_ANG", "file name does not follow CREMA-D naming (e.g. 1001_DFA_ANG_XX.wav)"),
        ("1001_dfa_ang_xx", "file name does not follow CREMA-D naming"),
        ("1001_DF_ANG_XX", "file name does not follow CREMA-D naming"),
    ]),
    *(("emovo", "f1", "dis-f1-b1", stem, reason) for stem, reason in [
        ("ans-f1-b1", "unknown label: EMOVO emotion 'ans' is not one of dis, gio, neu, pau, rab, sor, tri"),
        ("dis-f4-b1", "speaker 'f4' is not one of f1, f2, f3, m1, m2, m3"),
        ("dis-x1-b1", "speaker 'x1' is not one of"),
        ("dis-f1", "file name does not follow EMOVO naming (e.g. f1/dis-f1-b1.wav)"),
        ("dis-f1-b", "file name does not follow EMOVO naming"),
        ("disgust-f1-b1", "file name does not follow EMOVO naming"),
    ]),
]


@pytest.mark.parametrize(("layout", "folder", "good", "stem", "reason"), BAD_NAMES)
def test_a_bad_field_is_named(tmp_path: Path, layout: str, folder: str, good: str, stem: str, reason: str) -> None:
    touch(tmp_path, (Path(folder) / f"{good}.wav").as_posix(), (Path(folder) / f"{stem}.wav").as_posix())
    [(path, got)] = scan(tmp_path, layout).problems
    assert path == tmp_path / folder / f"{stem}.wav" and reason in got
    with pytest.raises(DataError, match=f"{stem}\\.wav: "):
        discover(tmp_path, layout)


@pytest.mark.parametrize(
    ("layout", "names", "strays", "first_error", "skipped"),
    [
        (
            "ravdess", "ravdess_names", ["Actor_12/01-01-05-01-02-01-12.wav", "Actor_01/notes.wav"],
            r"Actor_01/notes\.wav: file name does not follow RAVDESS naming .*and 1 more", "skipped 2 of 10 files",
        ),
        (
            "cremad", "cremad_names", ["AudioWAV/1001_DFA_XYZ_XX.wav"],
            r"1001_DFA_XYZ_XX\.wav: unknown label: CREMA-D emotion 'XYZ'", "skipped 1 of 7 files (unknown label: 1)",
        ),
        (
            "emovo", "emovo_names", ["m3/sor-m4-n1.wav"],
            r"sor-m4-n1\.wav: file name does not follow EMOVO naming: speaker 'm4'",
            "skipped 1 of 8 files (file name does not follow EMOVO naming: 1)",
        ),
    ],
)
def test_auto_keeps_a_layout_with_stray_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, layout: str, names: str, strays: list[str], first_error: str, skipped: str
) -> None:
    good = globals()[names]()
    touch(tmp_path, *good, *strays)
    assert scan(tmp_path).layout == layout  # most files follow the layout's naming
    with pytest.raises(DataError, match=first_error):
        discover(tmp_path)
    with caplog.at_level(logging.WARNING, logger="serlaq.data"):
        clips = discover(tmp_path, on_error="skip")
    assert sorted(c.path.relative_to(tmp_path).as_posix() for c in clips) == sorted(good)
    assert skipped in caplog.text


# A sample of each named corpus's file names, in its usual folders.
LAYOUT_SAMPLES = {
    "emodb": ["wav/03a01Fa.wav", "wav/16b10Wb.wav", "wav/08a02Ld.wav", "wav/11a05Ea.wav", "wav/09b03Ac.wav", "wav/13a07Td.wav", "wav/10a01Nc.wav"],
    "savee": ["DC_a01.wav", "JE_sa03.wav", "JK_su15.wav", "KL_n30.wav", "DC_d02.wav", "JE_f04.wav", "KL_h05.wav"],
    "savee-folders": ["AudioData/DC/a01.wav", "AudioData/JK/sa02.wav", "AudioData/KL/su03.wav", "AudioData/JE/n15.wav"],
    "tess": ["OAF_back_angry.wav", "OAF_bean_ps.wav", "YAF_dog_sad.wav", "YAF_chair_neutral.wav", "OAF_base_disgust.wav"],
    "tess-folders": ["OAF_angry/OAF_back_angry.wav", "YAF_pleasant_surprised/YAF_bean_ps.wav", "OAF_neutral/OA_bite_neutral.wav", "YAF_fear/YAF_mess_fear.wav"],
    "ravdess": ravdess_names(),
    "cremad": cremad_names(),
    "emovo": emovo_names(),
}


@pytest.mark.parametrize("sample", sorted(LAYOUT_SAMPLES))
def test_each_name_follows_exactly_one_layout(tmp_path: Path, sample: str) -> None:
    from serlaq.data.corpora import _PARSERS

    layout = sample.split("-")[0]
    touch(tmp_path, *LAYOUT_SAMPLES[sample])
    for name in LAYOUT_SAMPLES[sample]:
        follows = {n for n, parse in _PARSERS.items() if not isinstance(parse(tmp_path / name), str)}
        assert follows == {layout}, name
    assert scan(tmp_path).layout == layout  # auto, as before for emodb/savee/tess
    assert discover(tmp_path) == discover(tmp_path, layout)


@pytest.mark.parametrize("sample", ["ravdess", "cremad", "emovo"])
def test_named_corpus_sorted_into_label_folders_keeps_its_speakers(tmp_path: Path, sample: str) -> None:
    # a copy re-sorted by emotion (`angry/03-01-05-01-02-01-12.wav`) is still read by its names:
    # the folder layout would lose the speakers
    by_name = {c.path.name: c for c in discover(touch(tmp_path / "orig", *LAYOUT_SAMPLES[sample]), sample)}
    touch(tmp_path / "sorted", *(f"{c.label}/{name}" for name, c in by_name.items()))
    clips = discover(tmp_path / "sorted")
    assert scan(tmp_path / "sorted").layout == sample
    assert {(c.path.name, c.label, c.speaker) for c in clips} == {(n, c.label, c.speaker) for n, c in by_name.items()}


def test_folder_layouts_are_still_folders(tmp_path: Path, tiny_corpus: Path) -> None:
    assert scan(tiny_corpus).layout == "folder"
    touch(tmp_path, "Angry/x1.wav", "sadness/spk2/y.flac", "calm/c.ogg", "neutral/a-b-c.wav", "happy/1001_x.wav")
    assert scan(tmp_path).layout == "folder"


def test_layout_lists_agree() -> None:
    """Every place that lists the corpus layouts lists the same ones."""
    from typing import get_args

    import typer

    from serlaq import config
    from serlaq.cli import app
    from serlaq.data.corpora import _PARSERS, DATASETS

    assert set(get_args(config.CorpusLayout)) == set(DATASETS)
    assert set(get_args(config.Dataset)) == set(DATASETS) | {"synthetic", "multi"}
    assert set(config.NAMED_CORPORA) == set(_PARSERS) == set(DATASETS) - {"auto", "folder", "csv"}
    for name in ("evaluate", "report"):  # report: --protocol cross
        command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
        (option,) = [p for p in command.params if p.name == "dataset"]
        assert set(option.help.split("corpus layout:", 1)[1].split("(")[0].replace("|", " ").split()) == set(DATASETS)


def test_cannot_recognise_lists_every_layout(tmp_path: Path) -> None:
    from serlaq.data.corpora import DATASETS

    with pytest.raises(DataError, match="cannot recognise") as err:
        discover(touch(tmp_path, "x/1.wav", "y/2.wav"))
    assert f"(set dataset to one of {', '.join(d for d in DATASETS if d != 'auto')};" in str(err.value)
    assert "ravdess, cremad, emovo" in str(err.value)
    # what folder and csv want, so that a corpus of its own layout knows which to write
    assert str(err.value).endswith("folder wants a folder named for each clip's emotion, csv a manifest of path,label rows)")


@pytest.mark.parametrize("dataset", ["ravdess", "cremad", "emovo"])
def test_named_corpus_in_a_multi_corpus_run(tmp_path: Path, dataset: str) -> None:
    from serlaq.config import load_config
    from serlaq.data.multi import gather

    names = {"ravdess": ravdess_names, "cremad": cremad_names, "emovo": emovo_names}[dataset]()
    touch(tmp_path / "a", *names)
    touch(tmp_path / "b", "wav/03a01Fa.wav", "wav/16b10Wb.wav")
    config = load_config(None, {"data.corpora": [{"dataset": dataset, "data_dir": str(tmp_path / "a")}, {"dataset": "emodb", "data_dir": str(tmp_path / "b")}]})
    assert [c.corpus_name for c in config.data.corpora] == [dataset, "emodb"]
    found = gather(config.data.corpora)
    assert found.corpus == [dataset] * len(names) + ["emodb"] * 2
    single = discover(tmp_path / "a", dataset)
    assert [c.speaker for c in found.clips[: len(names)]] == [f"{dataset}-{c.speaker}" for c in single]
    assert found.sources[0]["dataset"] == dataset
