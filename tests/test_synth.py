"""The synthetic corpus: determinism, worker independence, layout, manifest, speaker draws."""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vgd import synth
from vgd.audio import load_audio
from vgd.config import AudioConfig
from vgd.manifest import COLUMNS, read_manifest
from vgd.synth import (
    F0_DIST,
    SynthConfig,
    generate_corpus,
    speaker_params,
    synthesize,
)

SMALL = SynthConfig(speakers=4, utterances=2, min_duration_s=0.6, max_duration_s=1.0, workers=1)


def _waves(clips) -> list[np.ndarray]:
    return [sf.read(c.path, dtype="float32")[0] for c in clips]


@pytest.mark.parametrize(
    "field,bad",
    [
        ("speakers", {"speakers": 1}),
        ("utterances", {"utterances": 0}),
        ("sample_rate", {"sample_rate": 4000}),
        ("min_duration_s", {"min_duration_s": 0}),
        ("max_duration_s", {"min_duration_s": 3.0, "max_duration_s": 2.0}),
        ("workers", {"workers": -1}),
    ],
)
def test_config_rejects_bad_values(field, bad):
    with pytest.raises(ValueError, match=rf"SynthConfig\.{field} "):
        SynthConfig(**bad)


def test_synthesize_is_deterministic_and_seed_dependent():
    p = speaker_params(1, "female", seed=0)
    a = synthesize(p, 0, 0, 16000, 0.8)
    assert a.dtype == np.float32 and a.shape == (12800,)
    assert np.isfinite(a).all() and 0 < np.abs(a).max() <= 1.0
    np.testing.assert_array_equal(a, synthesize(p, 0, 0, 16000, 0.8))
    assert not np.array_equal(a, synthesize(p, 0, 1, 16000, 0.8))
    assert not np.array_equal(a, synthesize(p, 1, 0, 16000, 0.8))
    assert speaker_params(1, "female", seed=0) == p
    assert speaker_params(1, "female", seed=1) != p


@pytest.mark.parametrize("seconds,rate", [(0.05, 16000), (0.3, 8000), (1.0, 44100)])
def test_synthesize_short_clips_and_other_rates(seconds, rate):
    wave = synthesize(speaker_params(0, "male", seed=0), 0, 0, rate, seconds)
    assert wave.shape == (round(seconds * rate),) and np.isfinite(wave).all()
    assert np.abs(wave).max() > 0


def test_generate_corpus_layout_and_manifest(tmp_path: Path):
    clips = generate_corpus(tmp_path, SMALL, progress=False)
    manifest = tmp_path / "manifest.csv"
    with open(manifest, newline="") as f:
        assert tuple(next(csv.reader(f))) == COLUMNS
    read = read_manifest(manifest)
    assert [(c.path, c.label, c.speaker) for c in read] == [
        (c.path, c.label, c.speaker) for c in clips
    ]
    assert len(clips) == 8 and {c.corpus for c in clips} == {"synth"}
    speakers = {
        label: {c.speaker for c in clips if c.label == label} for label in ("female", "male")
    }
    assert speakers == {
        "female": {"synth-f000", "synth-f001"},
        "male": {"synth-m000", "synth-m001"},
    }
    for c in read:
        path = Path(c.path)
        assert path.parent == tmp_path / c.label / c.speaker
        assert re.fullmatch(rf"{c.speaker}_\d\d\.flac", path.name)
        wave = load_audio(path, AudioConfig(min_duration_s=0.5))  # raises if silent or short
        assert SMALL.min_duration_s <= c.duration_s <= SMALL.max_duration_s
        assert wave.size / 16000 == pytest.approx(c.duration_s, abs=1e-3)


def test_results_do_not_depend_on_worker_count(tmp_path: Path):
    one = generate_corpus(tmp_path / "one", SMALL, progress=False)
    two = generate_corpus(tmp_path / "two", replace(SMALL, workers=2), False)
    assert [Path(c.path).name for c in one] == [Path(c.path).name for c in two]
    for a, b in zip(_waves(one), _waves(two)):
        np.testing.assert_array_equal(a, b)


def test_rerun_keeps_complete_files_and_new_seed_regenerates(tmp_path: Path):
    first = generate_corpus(tmp_path, SMALL, progress=False)
    old = _waves(first)
    mtimes = [Path(c.path).stat().st_mtime_ns for c in first]
    again = generate_corpus(tmp_path, SMALL, progress=False)
    assert again == first
    assert [Path(c.path).stat().st_mtime_ns for c in again] == mtimes
    reseeded = generate_corpus(tmp_path, replace(SMALL, seed=1), False)
    assert [c.path for c in reseeded] == [c.path for c in first]
    assert all(not np.array_equal(a, b) for a, b in zip(_waves(reseeded), old))


def test_interrupted_generation_leaves_no_manifest_and_resumes(tmp_path: Path, monkeypatch):
    # Equal durations: files of the old seed have the size the new ones will have.
    fixed = replace(SMALL, min_duration_s=0.8, max_duration_s=0.8)
    generate_corpus(tmp_path / "run", fixed, progress=False)
    real, calls = synth.synthesize, {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synth, "synthesize", failing)
    reseeded = replace(fixed, seed=5)
    with pytest.raises(KeyboardInterrupt):
        generate_corpus(tmp_path / "run", reseeded, progress=False)
    assert not (tmp_path / "run" / "manifest.csv").exists()
    assert not list(tmp_path.rglob("*.tmp*"))
    monkeypatch.undo()
    resumed = generate_corpus(tmp_path / "run", reseeded, progress=False)
    fresh = generate_corpus(tmp_path / "fresh", reseeded, progress=False)
    for a, b in zip(_waves(resumed), _waves(fresh)):
        np.testing.assert_array_equal(a, b)


def test_speaker_distributions_overlap_and_differ_by_gender():
    labels = ("female", "male")
    draws = {label: [speaker_params(i, label, seed=3) for i in range(300)] for label in labels}
    f0 = {label: np.array([p.f0_hz for p in ps]) for label, ps in draws.items()}
    vtl = {label: np.array([p.vtl for p in ps]) for label, ps in draws.items()}
    for label in labels:
        lo, hi = F0_DIST[label][2]
        assert lo <= f0[label].min() and f0[label].max() <= hi
    assert f0["male"].min() >= 85 and f0["male"].max() <= 185
    assert f0["female"].min() >= 150 and f0["female"].max() <= 260
    assert 115 < f0["male"].mean() < 140 and 180 < f0["female"].mean() < 210
    # Pitch alone cannot separate them: some men sit above some women.
    assert np.mean(f0["male"] > 160) > 0.03 and np.mean(f0["female"] < 160) > 0.03
    assert vtl["male"].max() > vtl["female"].min()
    ratio = vtl["female"].mean() / vtl["male"].mean()
    assert 1.12 < ratio < 1.22, ratio
