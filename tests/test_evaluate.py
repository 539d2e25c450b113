"""Metrics: checked against hand-computed values; reports and plots are written."""

import json

import numpy as np
import pytest

from conftest import toy_manifest_of
from vgd.checkpoint import load_checkpoint
from vgd.evaluate import IGNORE, compute_metrics, evaluate, format_metrics, write_report
from vgd.train import load_clips

LABELS = ("female", "male")


def test_metrics_match_hand_computation():
    targets = np.array([0, 0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.4, 0.6]])
    m = compute_metrics(targets, probs, LABELS, speakers=["a", "a", "b", "b", "c", "c"])
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1) / 2)
    assert m["per_class"]["male"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["female"]["recall"] == pytest.approx(3 / 4)
    assert m["confusion_matrix"] == [[3, 1], [0, 2]]
    assert m["roc_auc"] == pytest.approx(7 / 8)  # 0.6 (male) ranks below 0.7 (female)
    # speaker b: mean p_male 0.55 → wrong; speakers a, c right
    assert m["speaker_accuracy"] == pytest.approx(2 / 3) and m["n_speakers"] == 3


def test_unreadable_clips_are_excluded():
    targets = np.array([0, IGNORE, 1])
    probs = np.array([[0.9, 0.1], [np.nan, np.nan], [0.1, 0.9]])
    m = compute_metrics(targets, probs, LABELS)
    assert m["n_clips"] == 2 and m["accuracy"] == 1.0


def test_single_class_has_no_auc():
    m = compute_metrics(np.array([1, 1]), np.array([[0.1, 0.9], [0.6, 0.4]]), LABELS)
    assert m["roc_auc"] is None and m["balanced_accuracy"] == 0.5
    assert "n/a" in format_metrics(m)


def test_evaluate_writes_report(toy_model, tmp_path):
    loaded = load_checkpoint(toy_model)
    clips = [c for c in load_clips(loaded.recipe, toy_manifest_of(toy_model)) if c.split == "test"]
    result = evaluate(loaded, clips, batch_size=16)
    assert result.metrics["n_clips"] == len(clips) and result.metrics["balanced_accuracy"] >= 0.75
    paths = write_report(result, tmp_path / "eval")
    assert json.loads(paths["metrics"].read_text())["n_clips"] == len(clips)
    assert paths["confusion"].stat().st_size > 1000 and paths["roc"].stat().st_size > 1000
    assert paths["predictions"].read_text().count("\n") == len(clips) + 1
    assert paths["roc_data"].read_text().startswith("fpr,tpr")
