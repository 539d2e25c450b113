"""scripts/real_model.py on a tiny fake LibriSpeech tree: paired folds, a reproducible model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_bench_accuracy import fake_librispeech

from conftest import load_script
from vgd.calibration import fit_temperature
from vgd.checkpoint import load_checkpoint
from vgd.config import TrainConfig, apply_overrides, save_config
from vgd.manifest import read_manifest

TINY = {"model.width": 4, "model.n_blocks": 2, "window.seconds": 1.0, "optim.epochs": 2}


@pytest.fixture(scope="module")
def script():
    return load_script("real_model")


@pytest.mark.slow
def test_paired_folds_then_the_same_model_twice(script, tmp_path):
    root = tmp_path / "LibriSpeech"
    sex = fake_librispeech(root, speakers=12)
    recipe = tmp_path / "recipe.yaml"
    save_config(apply_overrides(TrainConfig(), TINY), recipe)
    common = ["--root", str(root), "--recipe", str(recipe), "--threads", "1", "--cache-dir", ""]
    out = tmp_path / "out"
    args = [*common, "--seeds", "1", "--folds", "3", "--compare", "--out", str(out)]
    args += ["--conditions", "mulaw"]
    assert script.main([*args, "--model-dir", str(tmp_path / "a")]) == 0
    report = json.loads((out / "results.json").read_text())
    assert set(report["runs"]) == {"recipe", "baseline"}
    for rows in report["runs"].values():
        assert [(r["seed"], r["fold"]) for r in rows] == [(1, 0), (1, 1), (1, 2)]
        assert sum(r["n_test"] for r in rows) == len(sex)  # every speaker tested once
    diffs = [f["difference"] for f in report["paired"]["folds"]]
    recipe_scores = [r["balanced_accuracy"] for r in report["runs"]["recipe"]]
    default_scores = [r["balanced_accuracy"] for r in report["runs"]["baseline"]]
    assert diffs == pytest.approx([r - d for r, d in zip(recipe_scores, default_scores)])
    assert report["paired"]["mean_difference"] == pytest.approx(sum(diffs) / 3)
    assert (out / "comparison.png").stat().st_size > 0
    # The test clips heard through μ-law: scored per fold and paired like the clean ones.
    heard = [
        [r["balanced_accuracy@mulaw"] for r in report["runs"][n]] for n in ("baseline", "recipe")
    ]
    assert all(0.0 <= v <= 1.0 for v in heard[0] + heard[1])
    mulaw = report["paired_conditions"]["mulaw"]
    assert [f["difference"] for f in mulaw["folds"]] == pytest.approx(
        [r - d for d, r in zip(*heard)]
    )
    assert "balanced_accuracy@mulaw" in report["summary"]["recipe"]

    # The final model again, from the same fold results: the same bytes.
    again = [*common, "--out", str(out), "--final-only", "--model-dir", str(tmp_path / "b")]
    assert script.main(again) == 0
    first, second = (tmp_path / d / "model.pt" for d in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()
    loaded = load_checkpoint(first)
    # The temperature is fitted on every fold's out-of-fold test logits together.
    rows = report["runs"]["recipe"]
    logits = [np.array(z, dtype=np.float32) for r in rows for z in r["oof_logits"]]
    targets = np.array([t for r in rows for t in r["oof_targets"]])
    assert len(targets) == len(sex)
    assert loaded.spec.temperature == pytest.approx(fit_temperature(logits, targets))
    card = (tmp_path / "a" / "MODEL_CARD.md").read_text()
    assert "3 outer folds" in card and "CC BY 4.0" in card
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["cv"]["balanced_accuracy"]["mean"] == pytest.approx(sum(recipe_scores) / 3)


def test_extra_clips_train_every_fold_and_are_never_tested(
    script, tmp_path, toy_manifest, monkeypatch
):
    root = tmp_path / "LibriSpeech"
    fake_librispeech(root, speakers=6)
    extra = read_manifest(toy_manifest)
    seen = []

    def fake_fold(config, run, clips, conditions=()):
        seen.append(clips)
        scores = dict.fromkeys(
            ("balanced_accuracy", "accuracy", "recall_female", "recall_male"), 1.0
        )
        return {**scores, "ece": 0.0, "ece_uncalibrated": 0.0, "epochs": 1, "train_seconds": 0.0}

    monkeypatch.setattr(script, "run_fold", fake_fold)
    out = tmp_path / "out"
    args = ["--root", str(root), "--extra-train", str(toy_manifest), "--folds", "3"]
    assert script.main([*args, "--seeds", "1", "--no-final", "--out", str(out)]) == 0
    assert len(seen) == 3
    for clips in seen:
        splits = {c.path: c.split for c in clips}
        assert all(splits[c.path] == "train" for c in extra)
        tested = {c.speaker for c in clips if c.split == "test"}
        assert len(tested) == 2 and all(
            c.corpus == "librispeech" for c in clips if c.split != "train"
        )
    report = json.loads((out / "results.json").read_text())
    assert report["extra_train"] == {"manifest": str(toy_manifest), "clips": len(extra)}


def test_a_missing_extra_manifest_is_one_line_naming_it(script, tmp_path, capsys):
    root = tmp_path / "LibriSpeech"
    fake_librispeech(root, speakers=6)
    # Extra speakers are for measuring: the built-in model's card describes LibriSpeech alone.
    assert script.main(["--root", str(root), "--extra-train", str(tmp_path / "x.csv")]) == 2
    assert "--no-final" in capsys.readouterr().err
    missing = tmp_path / "nope.csv"
    assert script.main(["--root", str(root), "--extra-train", str(missing), "--no-final"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err and len(err.splitlines()) == 1
