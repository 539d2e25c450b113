"""Manifest round trip and speaker-disjoint, stratified, seeded splits."""

import pytest

from vgd.config import SplitConfig
from vgd.manifest import Clip, ManifestError, format_stats, read_manifest, stats, write_manifest
from vgd.splits import (
    assign_splits,
    check_speaker_disjoint,
    ensure_splits,
    speaker_folds,
    speaker_key,
)


def corpus(n_female=20, n_male=60, utts=3):
    clips = []
    for label, n in (("female", n_female), ("male", n_male)):
        for s in range(n):
            clips += [
                Clip(f"/x/{label}{s}_{u}.wav", label, f"{label[0]}{s}", 2.0, "c")
                for u in range(utts)
            ]
    return clips


def test_no_speaker_in_two_splits():
    clips = assign_splits(corpus(), SplitConfig(0.2, 0.2, seed=3))
    split_of = {}
    for c in clips:
        assert split_of.setdefault(speaker_key(c), c.split) == c.split
    check_speaker_disjoint(clips)


def test_every_split_holds_both_genders_even_when_imbalanced():
    clips = assign_splits(corpus(n_female=5, n_male=60), SplitConfig(0.15, 0.15))
    for split in ("train", "val", "test"):
        assert {c.label for c in clips if c.split == split} == {"female", "male"}


def test_fractions_are_per_label():
    clips = assign_splits(corpus(40, 40, 1), SplitConfig(0.25, 0.25))
    test_female = {c.speaker for c in clips if c.split == "test" and c.label == "female"}
    assert len(test_female) == 10


def test_seeded_and_deterministic():
    a = assign_splits(corpus(), SplitConfig(seed=1))
    assert a == assign_splits(corpus(), SplitConfig(seed=1))
    assert a != assign_splits(corpus(), SplitConfig(seed=2))


def test_too_few_speakers_is_a_clear_error():
    with pytest.raises(ManifestError, match="'female' has 2 speaker"):
        assign_splits(corpus(n_female=2, n_male=10), SplitConfig(0.2, 0.2))


def test_same_speaker_id_in_two_corpora_is_two_speakers():
    clips = [
        Clip("/a.wav", "male", "19", 1, "librispeech"),
        Clip("/b.wav", "male", "19", 1, "vctk"),
    ]
    assert len({speaker_key(c) for c in clips}) == 2


def test_ensure_splits_rejects_a_leaking_manifest():
    clips = [
        Clip("/a.wav", "male", "s1", 1, "c", "train"),
        Clip("/b.wav", "male", "s1", 1, "c", "test"),
    ]
    with pytest.raises(ManifestError, match="'s1'.*both 'train' and 'test'"):
        ensure_splits(clips)


def test_ensure_splits_keeps_given_splits():
    clips = assign_splits(corpus(), SplitConfig(seed=5))
    assert ensure_splits(clips, SplitConfig(seed=99)) == clips


def test_folds_are_speaker_disjoint_and_stratified():
    clips = corpus(25, 25, 2)
    folds = speaker_folds(clips, 5, seed=0)
    fold_of = {}
    for c, f in zip(clips, folds):
        assert fold_of.setdefault(speaker_key(c), f) == f
    for k in range(5):
        assert {c.label for c, f in zip(clips, folds) if f == k} == {"female", "male"}


def test_manifest_round_trip_with_relative_paths(tmp_path):
    (tmp_path / "d").mkdir()
    clips = [
        Clip(str(tmp_path / "d" / "a.wav"), "female", "s1", 1.25, "c", "train"),
        Clip("/elsewhere/b.wav", "male", "s2", 2.5, "c", "test"),
    ]
    path = write_manifest(clips, tmp_path / "m.csv")
    text = path.read_text()
    assert "d/a.wav" in text and str(tmp_path) not in text
    assert read_manifest(path) == clips


def test_manifest_missing_column_and_empty_rows(tmp_path):
    (tmp_path / "m.csv").write_text("path,speaker\na.wav,s1\n")
    with pytest.raises(ManifestError, match="missing column.*label"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "n.csv").write_text("path,label,speaker\na.wav,,s1\n")
    with pytest.raises(ManifestError, match="n.csv:2: empty label"):
        read_manifest(tmp_path / "n.csv")
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "absent.csv")


def test_stats_count_clips_speakers_hours():
    rows = {r.label: r for r in stats(corpus(4, 6, 3))}
    assert (rows["female"].clips, rows["female"].speakers) == (12, 4)
    assert rows["total"].hours == pytest.approx(30 * 2.0 / 3600)
    assert "female" in format_stats(corpus(4, 6, 3))
