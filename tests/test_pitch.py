"""The pitch-only baseline: F0 estimation, threshold fitting and evaluation on a tiny corpus."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import voice
from vgd.config import AudioConfig, SplitConfig
from vgd.manifest import Clip
from vgd.pitch import PitchBaseline, evaluate_pitch_baseline, fit_threshold, median_f0
from vgd.splits import assign_splits
from vgd.synth import SynthConfig, generate_corpus, speaker_params, synthesize


@pytest.mark.parametrize("f0", [120.0, 210.0, 85.0, 300.0])
def test_median_f0_of_a_harmonic_tone(f0):
    assert median_f0(voice(f0, 1.0), 16000) == pytest.approx(f0, rel=0.03)


@pytest.mark.parametrize("label,index", [("male", 0), ("male", 2), ("female", 1), ("female", 4)])
def test_median_f0_of_synthetic_speech_is_near_the_speakers_f0(label, index):
    params = speaker_params(index, label, seed=0)
    estimates = [median_f0(synthesize(params, u, 0, 16000, 2.0), 16000) for u in range(3)]
    assert np.median(estimates) == pytest.approx(params.f0_hz, rel=0.10), estimates


@pytest.mark.parametrize(
    "wave",
    [
        np.random.default_rng(0).standard_normal(16000).astype(np.float32),
        np.zeros(16000, dtype=np.float32),
        np.zeros(100, dtype=np.float32),
    ],
    ids=["noise", "silence", "too-short"],
)
def test_median_f0_is_nan_without_voice(wave):
    assert math.isnan(median_f0(wave, 16000))


def test_fit_threshold_separates_separable_data():
    f0s = [100, 110, 120, np.nan, 200, 210, 230]
    labels = ["male", "male", "male", "female", "female", "female", "female"]
    baseline = fit_threshold(f0s, labels)
    assert 120 < baseline.threshold_hz < 200
    assert baseline.predict([100, 110, 120, 200, 210, 230, np.nan]) == [
        "male",
        "male",
        "male",
        "female",
        "female",
        "female",
        None,
    ]
    p = baseline.female_probability([baseline.threshold_hz, 300.0, 80.0])
    assert p[0] == pytest.approx(0.5) and p[1] > 0.9 and p[2] < 0.1


def test_fit_threshold_maximises_balanced_accuracy_on_overlap():
    # One male voice sits among the females: the best cut misclassifies only it.
    f0s = [100, 110, 205, 190, 200, 220, 230]
    labels = ["male", "male", "male", "female", "female", "female", "female"]
    baseline = fit_threshold(f0s, labels)
    assert 110 < baseline.threshold_hz < 190


def test_fit_threshold_needs_both_labels():
    with pytest.raises(ValueError, match="both labels"):
        fit_threshold([100.0, 120.0, np.nan], ["male", "male", "female"])
    with pytest.raises(ValueError, match="label"):
        fit_threshold([100.0, 200.0], ["male", "other"])


def test_evaluate_pitch_baseline_on_a_tiny_corpus(tmp_path: Path, caplog):
    config = SynthConfig(speakers=8, utterances=2, min_duration_s=1.0, max_duration_s=1.2)
    clips = generate_corpus(tmp_path, replace(config, workers=1), progress=False)
    clips = assign_splits(clips, SplitConfig(val_fraction=0.25, test_fraction=0.25))
    missing = Clip(str(tmp_path / "missing.flac"), "male", "synth-m999", 1.0, "synth", "test")
    with caplog.at_level(logging.WARNING, logger="vgd.pitch"):
        metrics = evaluate_pitch_baseline([*clips, missing], AudioConfig())
    n_test = sum(c.split == "test" for c in clips)
    assert metrics["n_clips"] == n_test and metrics["n_unreadable"] == 1
    assert 60 < metrics["threshold_hz"] < 400
    assert 0.0 <= metrics["balanced_accuracy"] <= 1.0
    assert metrics["labels"] == ["female", "male"]
    assert "missing.flac" in caplog.text


def test_evaluate_pitch_baseline_needs_train_and_test(tmp_path: Path):
    clip = Clip(str(tmp_path / "a.flac"), "male", "s1", 1.0, "x", "train")
    with pytest.raises(ValueError, match="test"):
        evaluate_pitch_baseline([clip], AudioConfig())


def test_pitch_baseline_is_a_value():
    assert PitchBaseline(150.0) == PitchBaseline(150.0)
