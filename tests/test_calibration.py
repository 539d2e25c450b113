"""Calibration: the fitted temperature undoes over-confidence, and the checkpoint carries it."""

import numpy as np
import pytest
import torch

from conftest import toy_config, toy_run, write_toy_corpus
from vgd.calibration import (
    expected_calibration_error,
    fit_temperature,
    nll,
    pooled_probs,
    window_logits,
)
from vgd.checkpoint import build_model, load_checkpoint
from vgd.evaluate import evaluate
from vgd.inference import file_windows
from vgd.train import load_clips, save_outputs, train


def overconfident(n: int = 400, scale: float = 4.0, seed: int = 0):
    """Clips whose calibrated logit margin is known; the "model" multiplies it by ``scale``."""
    rng = np.random.default_rng(seed)
    margin = rng.normal(0.0, 1.5, n)  # calibrated log-odds of class 1
    targets = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(int)
    logits = [np.array([[0.0, scale * m]] * 3) for m in margin]  # 3 identical windows a clip
    return logits, targets


def test_the_fitted_temperature_undoes_overconfidence():
    logits, targets = overconfident(scale=4.0)
    t = fit_temperature(logits, targets)
    assert 3.0 < t < 5.5  # the true factor is 4; 400 clips pin it down to about ±25%
    before, after = pooled_probs(logits, 1.0), pooled_probs(logits, t)
    assert nll(after, targets) < nll(before, targets)
    assert expected_calibration_error(after, targets) < expected_calibration_error(before, targets)
    assert np.array_equal(before.argmax(1), after.argmax(1))  # decisions do not change


def test_a_validation_set_with_no_errors_does_not_make_the_model_certain():
    # 40 clips, every one right with a margin of 2: plain NLL would drive T to the grid's floor.
    logits = [
        np.array([[0.0, 2.0]] * 3) if i % 2 else np.array([[2.0, 0.0]] * 3) for i in range(40)
    ]
    targets = np.array([i % 2 for i in range(40)])
    t = fit_temperature(logits, targets)
    confidence = pooled_probs(logits, t).max(axis=1)
    assert t > 0.1 and confidence.max() < 0.99  # Laplace: about 41/42 = 0.976
    assert abs(confidence.mean() - 41 / 42) < 0.02


def test_ece_by_hand():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    targets = np.array([0, 1, 1, 1])
    # bins: 0.9 → right (|0.9 - 1|), 0.8 → wrong (|0.8 - 0|), 0.7 → right, 0.6 → right
    expected = (0.1 + 0.8 + 0.3 + 0.4) / 4
    assert expected_calibration_error(probs, targets) == pytest.approx(expected)


def test_training_fits_a_temperature_that_the_checkpoint_and_evaluate_carry(tmp_path):
    manifest = write_toy_corpus(tmp_path / "toy", speakers=12, utterances=6)
    config, run = toy_config(manifest, tmp_path), toy_run(manifest, tmp_path)
    result = train(config, run, progress=False)
    t = result.calibration["temperature"]
    assert t > 0 and result.calibration["val_ece_after"] <= result.calibration["val_ece_before"]
    loaded = load_checkpoint(save_outputs(result, tmp_path / "run")["model"])
    assert loaded.spec.temperature == pytest.approx(t) and loaded.model.temperature == t
    assert loaded.recipe.spec.temperature == 1.0  # the recipe is what was trained, uncalibrated
    wave = torch.randn(3, 16000) * 0.1
    with torch.inference_mode():
        calibrated = loaded.model(wave)
        loaded.model.temperature = 1.0
        raw = loaded.model(wave)
    assert torch.allclose(calibrated, raw / t, atol=1e-5)
    loaded.model.temperature = t
    test = [c for c in load_clips(config, run.manifest) if c.split == "test"]
    metrics = evaluate(loaded, test).metrics
    assert 0.0 <= metrics["ece"] <= 1.0 and metrics["temperature"] == pytest.approx(t)


def test_pooled_probs_average_each_clip_s_own_windows():
    rng = np.random.default_rng(3)
    logits = [rng.normal(0, 3, (n, 2)) for n in (1, 4, 2, 7)]  # ragged window counts
    got = pooled_probs(logits, 1.7)
    want = [
        np.mean(np.exp(z / 1.7) / np.exp(z / 1.7).sum(1, keepdims=True), axis=0) for z in logits
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_window_logits_batched_across_clips_are_each_clip_s_own(tmp_path):
    manifest = write_toy_corpus(tmp_path / "toy", speakers=6, utterances=2)
    config = toy_config(manifest, tmp_path)
    clips = load_clips(config, manifest)
    torch.manual_seed(0)
    model = build_model(config.spec).eval()
    logits, targets = window_logits(model, config.spec, clips, None, batch_size=5)
    assert len(logits) == len(clips) and list(targets) == [
        config.spec.labels.index(c.label) for c in clips
    ]
    for clip, got in zip(clips, logits):  # one clip at a time, as the model sees it alone
        windows = torch.from_numpy(np.stack(list(file_windows(clip.path, config.spec, None)[1])))
        with torch.inference_mode():
            np.testing.assert_allclose(got, model(windows).numpy(), atol=1e-5)
