"""Corpus builders on tiny generated trees: labels, speakers, durations, bad files, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from conftest import voice
from vgd.audio import save_audio
from vgd.cli import main
from vgd.corpora import build, normalise_label
from vgd.manifest import Clip, ManifestError, read_manifest, write_manifest

RATE = 16000


def speech(path: Path, seconds: float = 1.0, f0: float = 150.0, seed: int = 0) -> Path:
    save_audio(path, voice(f0, seconds, seed=seed), RATE)
    return path


def corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).bytes(2048))
    return path


def empty(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def silent(path: Path, seconds: float = 1.0) -> Path:
    save_audio(path, np.zeros(int(seconds * RATE), dtype=np.float32), RATE)
    return path


def by_name(clips: list[Clip]) -> dict[str, Clip]:
    return {Path(c.path).name: c for c in clips}


def failed_names(failures: list[str]) -> set[str]:
    return {Path(line.split(": ")[0]).name for line in failures}


# ----------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "text, expected",
    [
        ("F", "female"),
        ("Female", "female"),
        (" female_feminine ", "female"),
        ("m", "male"),
        ("MALE", "male"),
        ("male_masculine", "male"),
        ("other", None),
        ("non-binary", None),
        ("do_not_wish_to_say", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_label(text, expected):
    assert normalise_label(text) == expected


def test_unknown_source_is_rejected_naming_the_choices(tmp_path):
    with pytest.raises(ValueError, match="librispeech"):
        build("timit", tmp_path)


def test_missing_root_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build("folder", tmp_path / "nowhere")


# ----------------------------------------------------------------------------- folder


def folder_tree(root: Path) -> Path:
    speech(root / "female" / "anna_01.wav", 1.0, 220)
    speech(root / "female" / "anna-02.flac", 1.5, 220)
    speech(root / "F" / "cara_01.ogg", 1.0, 230)
    speech(root / "male" / "bob" / "session1" / "take.wav", 2.0, 110)
    speech(root / "male" / "dan_01.wav", 1.0, 100)
    corrupt(root / "male" / "bad.wav")
    empty(root / "male" / "empty.wav")
    silent(root / "male" / "quiet.wav")
    (root / "male" / "notes.txt").write_text("not audio, not listed")
    speech(root / "child" / "kid_01.wav", 1.0, 300)  # not a label folder: ignored
    return root


def test_folder_labels_speakers_durations_and_failures(tmp_path):
    result = build("folder", folder_tree(tmp_path / "mycorpus"), progress=False)
    clips = by_name(result.clips)
    assert {n: (c.label, c.speaker) for n, c in clips.items()} == {
        "anna_01.wav": ("female", "anna"),
        "anna-02.flac": ("female", "anna"),
        "cara_01.ogg": ("female", "cara"),
        "take.wav": ("male", "bob"),
        "dan_01.wav": ("male", "dan"),
        "quiet.wav": ("male", "quiet"),  # silent, but only decoding finds that out
    }
    assert clips["take.wav"].duration_s == pytest.approx(2.0)
    assert clips["anna-02.flac"].duration_s == pytest.approx(1.5)
    assert {c.corpus for c in result.clips} == {"mycorpus"}
    assert failed_names(result.failures) == {"bad.wav", "empty.wav"}
    assert any("empty" in line for line in result.failures)
    assert [c.path for c in result.clips] == sorted(c.path for c in result.clips)
    assert (
        result.summary()
        == "folder: 6 clips from 5 speakers, 2 unreadable, 0 without a usable label"
    )


def test_decode_also_leaves_out_silent_files(tmp_path):
    result = build("folder", folder_tree(tmp_path / "c"), validate="decode", progress=False)
    assert failed_names(result.failures) == {"bad.wav", "empty.wav", "quiet.wav"}
    assert any("silent" in line for line in result.failures)
    assert by_name(result.clips)["take.wav"].duration_s == pytest.approx(2.0)


def test_validate_none_touches_no_file(tmp_path):
    result = build("folder", folder_tree(tmp_path / "c"), validate="none", progress=False)
    assert len(result.clips) == 8 and result.failures == []
    assert {c.duration_s for c in result.clips} == {0.0}


def test_folder_without_label_folders_is_an_error(tmp_path):
    speech(tmp_path / "x.wav")
    with pytest.raises(ManifestError, match="female"):
        build("folder", tmp_path)


def test_progress_line_for_the_validation_pass(tmp_path, capsys):
    build("folder", folder_tree(tmp_path / "c"), progress=True)
    assert "folder: checking audio: 8/8" in capsys.readouterr().err


# ----------------------------------------------------------------------------- csv / synth


def test_csv_normalises_label_spellings_and_resolves_relative_paths(tmp_path):
    speech(tmp_path / "a" / "1.wav", 1.0)
    speech(tmp_path / "a" / "2.wav", 1.2)
    speech(tmp_path / "a" / "3.wav", 0.8)
    speech(tmp_path / "a" / "4.wav", 1.0)
    corrupt(tmp_path / "a" / "5.wav")
    table = tmp_path / "list.csv"
    table.write_text(
        "path,label,speaker\n"
        "a/1.wav,F,s1\n"
        "a/2.wav,Male,s2\n"
        "a/3.wav,female_feminine,s3\n"
        "a/4.wav,child,s4\n"
        "a/5.wav,m,s5\n"
    )
    result = build("csv", table, progress=False)
    clips = by_name(result.clips)
    assert {n: (c.label, c.speaker) for n, c in clips.items()} == {
        "1.wav": ("female", "s1"),
        "2.wav": ("male", "s2"),
        "3.wav": ("female", "s3"),
    }
    assert clips["2.wav"].duration_s == pytest.approx(1.2)
    assert Path(clips["1.wav"].path).is_absolute() and Path(clips["1.wav"].path).exists()
    assert result.skipped == 1 and failed_names(result.failures) == {"5.wav"}


def test_csv_root_may_be_a_folder_with_manifest_csv(tmp_path):
    speech(tmp_path / "x.wav")
    (tmp_path / "manifest.csv").write_text("path,label,speaker,corpus\nx.wav,f,s,mine\n")
    [clip] = build("csv", tmp_path, progress=False).clips
    assert (clip.label, clip.corpus) == ("female", "mine")


def test_synth_reads_the_generated_manifest(tmp_path):
    clips = [Clip(str(speech(tmp_path / f"{g}.wav")), g, f"s_{g}") for g in ("female", "male")]
    write_manifest(clips, tmp_path / "manifest.csv")
    result = build("synth", tmp_path, progress=False)
    assert [(c.label, c.corpus) for c in result.clips] == [("female", "synth"), ("male", "synth")]
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(FileNotFoundError, match="manifest.csv"):
        build("synth", tmp_path / "elsewhere")


# ----------------------------------------------------------------------------- librispeech

SPEAKERS_TXT = """\
; Some pipe(|) separated metadata about all LibriVox readers
;ID  |SEX| SUBSET           |MINUTES| NAME
19   | F | train-clean-100  | 25.19 | Kara Shallenberg
26   | M | train-clean-100  | 25.08 | Denny Sayers
60   | M | train-clean-100  | 20.18 | |CBW|Simon
77   | X | train-clean-100  | 10.00 | Nobody
"""


def librispeech_tree(root: Path) -> Path:
    (root / "SPEAKERS.TXT").parent.mkdir(parents=True)
    (root / "SPEAKERS.TXT").write_text(SPEAKERS_TXT)
    subset = root / "train-clean-100"
    speech(subset / "19" / "198" / "19-198-0000.flac", 1.0, 220)
    speech(subset / "19" / "198" / "19-198-0001.flac", 1.5, 220)
    speech(subset / "26" / "495" / "26-495-0000.flac", 2.0, 110)
    speech(subset / "60" / "121" / "60-121-0000.flac", 1.0, 100)
    speech(subset / "77" / "1" / "77-1-0000.flac", 1.0, 100)  # SEX X: skipped
    speech(subset / "999" / "1" / "999-1-0000.flac", 1.0, 100)  # not in the table: skipped
    corrupt(subset / "26" / "495" / "26-495-0001.flac")
    return root


def test_librispeech(tmp_path):
    root = librispeech_tree(tmp_path / "LibriSpeech")
    result = build("librispeech", root, progress=False)
    clips = by_name(result.clips)
    assert {n: (c.label, c.speaker) for n, c in clips.items()} == {
        "19-198-0000.flac": ("female", "19"),
        "19-198-0001.flac": ("female", "19"),
        "26-495-0000.flac": ("male", "26"),
        "60-121-0000.flac": ("male", "60"),
    }
    assert clips["26-495-0000.flac"].duration_s == pytest.approx(2.0)
    assert {c.corpus for c in result.clips} == {"librispeech"}
    assert result.skipped == 2 and failed_names(result.failures) == {"26-495-0001.flac"}
    assert "4 clips from 3 speakers, 1 unreadable, 2 without" in result.summary()
    subset = build("librispeech", root / "train-clean-100", progress=False)
    assert subset.clips == result.clips


def test_librispeech_without_speakers_txt_names_it(tmp_path):
    speech(tmp_path / "LibriSpeech" / "dev-clean" / "19" / "1" / "19-1-0000.flac")
    with pytest.raises(FileNotFoundError, match="SPEAKERS.TXT"):
        build("librispeech", tmp_path / "LibriSpeech", progress=False)


# ----------------------------------------------------------------------------- vctk

SPEAKER_INFO = """\
ID  AGE  GENDER  ACCENTS  REGION COMMENTS
p225  23  F    English    Southern  England
p226  22  M    English    Surrey
227  38  M    English    Cumbria
p280  25  F    French    France  (mic2 files unavailable)
"""


def test_vctk(tmp_path):
    root = tmp_path / "VCTK"
    root.mkdir()
    (root / "speaker-info.txt").write_text(SPEAKER_INFO)
    speech(root / "wav48" / "p225" / "p225_001.wav", 1.0, 220)
    speech(root / "wav48_silence_trimmed" / "p226" / "p226_001_mic1.flac", 1.5, 110)
    speech(root / "wav48_silence_trimmed" / "p226" / "p226_001_mic2.flac", 1.5, 110)
    speech(root / "wav48" / "p227" / "p227_001.wav", 1.0, 110)  # table says "227"
    speech(root / "wav48" / "p999" / "p999_001.wav", 1.0, 110)  # not in the table
    empty(root / "wav48" / "p280" / "p280_001.wav")
    result = build("vctk", root, progress=False)
    clips = by_name(result.clips)
    assert {n: (c.label, c.speaker) for n, c in clips.items()} == {
        "p225_001.wav": ("female", "p225"),
        "p226_001_mic1.flac": ("male", "p226"),
        "p226_001_mic2.flac": ("male", "p226"),
        "p227_001.wav": ("male", "227"),
    }
    assert clips["p226_001_mic1.flac"].duration_s == pytest.approx(1.5)
    assert {c.corpus for c in result.clips} == {"vctk"}
    assert result.skipped == 1 and failed_names(result.failures) == {"p280_001.wav"}


def test_vctk_without_speaker_info_names_it(tmp_path):
    speech(tmp_path / "wav48" / "p225" / "p225_001.wav")
    with pytest.raises(FileNotFoundError, match="speaker-info.txt"):
        build("vctk", tmp_path, progress=False)


# ----------------------------------------------------------------------------- common voice


def common_voice_tree(root: Path) -> Path:
    rows = [
        ("c1", "a.mp3", 'He said "hi', "male"),
        ("c1", "b.mp3", "Plain.", "male"),
        ("c2", "c.mp3", "She's here.", "female_feminine"),
        ("c3", "d.mp3", "x", "male_masculine"),
        ("c4", "e.mp3", "x", "female"),
        ("c5", "f.mp3", "x", ""),
        ("c6", "g.mp3", "x", "other"),
        ("c7", "h.mp3", "x", "do_not_wish_to_say"),
        ("c8", "i.mp3", "x", "non-binary"),
        ("c9", "j.mp3", "x", "female"),
    ]
    header = "client_id\tpath\tsentence_id\tsentence\tup_votes\tdown_votes\tage\tgender\taccents"
    lines = [header] + [f"{c}\t{p}\tid\t{s}\t2\t0\ttwenties\t{g}\t" for c, p, s, g in rows]
    root.mkdir(parents=True)
    (root / "validated.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for _, name, _, _ in rows[:5]:
        speech(root / "clips" / name)
    corrupt(root / "clips" / "j.mp3")
    return root


def test_common_voice_both_spellings_and_rows_without_gender(tmp_path):
    result = build("common_voice", common_voice_tree(tmp_path / "en"), progress=False)
    clips = by_name(result.clips)
    assert {n: (c.label, c.speaker) for n, c in clips.items()} == {
        "a.mp3": ("male", "c1"),
        "b.mp3": ("male", "c1"),
        "c.mp3": ("female", "c2"),
        "d.mp3": ("male", "c3"),
        "e.mp3": ("female", "c4"),
    }
    assert clips["a.mp3"].duration_s == pytest.approx(1.0, abs=0.1)
    assert {c.corpus for c in result.clips} == {"common_voice"}
    assert result.skipped == 4 and failed_names(result.failures) == {"j.mp3"}


def test_common_voice_root_may_be_a_tsv(tmp_path):
    root = common_voice_tree(tmp_path / "en")
    with open(root / "validated.tsv") as f:
        head = [next(f) for _ in range(3)]
    (root / "dev.tsv").write_text("".join(head))
    assert len(build("common_voice", root / "dev.tsv", progress=False).clips) == 2


def test_common_voice_without_validated_tsv_names_it(tmp_path):
    (tmp_path / "clips").mkdir()
    with pytest.raises(FileNotFoundError, match="validated.tsv"):
        build("common_voice", tmp_path, progress=False)


# ----------------------------------------------------------------------------- CLI


def cli(capsys, *argv):
    code = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def balanced_folder(root: Path, speakers: int = 4) -> Path:
    for s in range(speakers):
        for label, f0 in (("female", 220), ("male", 110)):
            for u in range(2):
                speech(root / label / f"{label[0]}{s}_{u}.wav", 1.0, f0 + 5 * s, seed=s * 10 + u)
    return root


def test_cli_data_build_writes_speaker_disjoint_splits(tmp_path, capsys):
    root = balanced_folder(tmp_path / "corpus")
    out = tmp_path / "m" / "manifest.csv"
    code, stdout, err = cli(capsys, "data", "build", "folder", root, "--out", out)
    assert code == 0, err
    assert "folder: 16 clips from 8 speakers, 0 unreadable" in stdout
    clips = read_manifest(out)
    assert len(clips) == 16
    splits_of: dict[str, set[str]] = {}
    for c in clips:
        splits_of.setdefault(c.speaker, set()).add(c.split)
    assert all(len(s) == 1 for s in splits_of.values())
    assert {c.split for c in clips} == {"train", "val", "test"}
    with open(out, newline="") as f:
        assert next(csv.reader(f))[:3] == ["path", "label", "speaker"]

    code, stdout, _ = cli(capsys, "data", "stats", out)
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in stdout.splitlines()}
    assert rows["female"][:2] == ["8", "4"] and rows["male"][:2] == ["8", "4"]
    assert rows["total"] == ["16", "8", f"{16 / 3600:.2f}"]


def test_cli_data_build_returns_1_when_files_are_left_out(tmp_path, capsys):
    root = balanced_folder(tmp_path / "corpus")
    corrupt(root / "male" / "m9_0.wav")
    silent(root / "female" / "f9_0.wav")
    out = tmp_path / "manifest.csv"
    code, stdout, err = cli(capsys, "data", "build", "folder", root, "--out", out)
    assert code == 1
    assert "left out:" in err and "m9_0.wav" in err and "f9_0.wav: silent" in err
    assert len(read_manifest(out)) == 16


def test_cli_data_build_failure_paths(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["-q", "data", "build", "timit", str(tmp_path), "--out", str(tmp_path / "m.csv")])
    assert e.value.code == 2
    capsys.readouterr()
    code, _, err = cli(
        capsys, "data", "build", "librispeech", tmp_path, "--out", tmp_path / "m.csv"
    )
    assert code == 2 and "SPEAKERS.TXT" in err and err.count("\n") == 1
