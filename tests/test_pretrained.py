"""The built-in real-voice model: it ships, loads safely, and its card says what it measured."""

from __future__ import annotations

import json

from vgd import pretrained
from vgd.checkpoint import load_checkpoint
from vgd.config import TrainConfig
from vgd.modelcard import builtin_model_card
from vgd.pretrained import builtin_metrics, builtin_model


def test_the_package_ships_a_model_with_its_card_and_metrics():
    path = builtin_model()
    assert path is not None and path.stat().st_size < 2_000_000
    loaded = load_checkpoint(path)  # weights_only: a checkpoint is data, never code
    assert loaded.labels == ("female", "male")
    assert loaded.spec.temperature != 1.0  # calibrated on the folds' validation speakers
    metrics = builtin_metrics()
    assert metrics["cv_folds"] == metrics["cv_seeds"] * metrics["cv_k"] >= 10
    assert 0.5 < metrics["cv"]["balanced_accuracy"]["mean"] <= 1.0
    card = (path.parent / "MODEL_CARD.md").read_text()
    assert "CC BY 4.0" in card and "recall female" in card and "recall male" in card
    assert f"{metrics['cv']['balanced_accuracy']['mean']:.4f}" in card
    assert (path.parent / "recipe.yaml").is_file()


def test_the_card_reports_the_measured_figures(tmp_path):
    cv = {
        "balanced_accuracy": {"mean": 0.9812, "std": 0.0123, "min": 0.9577, "max": 1.0},
        "recall_female": {"mean": 0.975, "std": 0.02, "min": 0.94, "max": 1.0},
        "recall_male": {"mean": 0.987, "std": 0.01, "min": 0.96, "max": 1.0},
    }
    metrics = {
        "cv": cv,
        "cv_folds": 10,
        "cv_seeds": 2,
        "cv_k": 5,
        "epochs": 17,
        "temperature": 1.437,
        "calibration": {
            "clips": 502,
            "ece_before": 0.0612,
            "ece_after": 0.0234,
            "fold_temperatures": [0.05, 1.6, 0.9],
        },
    }
    card = builtin_model_card(TrainConfig(), metrics, {"female": 125, "male": 126}, 251)
    assert "| balanced accuracy | 0.9812 | 0.0123 | 0.9577 | 1.0000 |" in card
    assert "| recall female | 0.9750 |" in card and "| recall male | 0.9870 |" in card
    assert "125 female, 126 male" in card and "(17)" in card and "(1.437)" in card
    assert "10 outer folds" in card and "2 fold seeds × 5 folds" in card
    assert "502 pooled out-of-fold" in card and "0.0612 at T = 1" in card and "0.050 to\n" in card


def test_a_checkout_without_the_model_says_none(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "MODEL_DIR", tmp_path)
    assert builtin_model() is None and builtin_metrics() == {}
    (tmp_path / "metrics.json").write_text(json.dumps({"cv": {}}))
    assert "CV" not in pretrained.describe()
