"""scripts/ensemble_folds.py: averaged out-of-fold logits scored with vgd's own metrics."""

from __future__ import annotations

import json

import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("ensemble_folds")


def report(path, folds):
    """A real_model.py-shaped report: per fold, each clip's window logits and its target."""
    rows = [
        {"seed": 1, "fold": k, "oof_logits": logits, "oof_targets": targets}
        for k, (logits, targets) in enumerate(folds)
    ]
    path.write_text(json.dumps({"runs": {"recipe": rows}}))
    return path


def test_averaging_lets_a_confident_member_overrule_an_unsure_one(script, tmp_path, capsys):
    # Clip 2 (male) is wrong by a hair in a, right by a mile in b; clip 1 the other way round.
    a = report(tmp_path / "a.json", [([[[2.0, 0.0]], [[0.0, -0.1]]], [0, 1])])
    b = report(tmp_path / "b.json", [([[[-0.1, 0.0]], [[0.0, 3.0]]], [0, 1])])
    out = tmp_path / "table.json"
    assert script.main([str(a), str(b), "--out", str(out)]) == 0
    single_a, single_b, both = json.loads(out.read_text())["table"]
    ba = [row["balanced_accuracy"]["mean"] for row in (single_a, single_b, both)]
    assert ba == [0.5, 0.5, 1.0]  # each member alone gets one clip wrong; together none
    assert both["recall_male"]["mean"] == 1.0
    assert "1+2  balanced accuracy 1.0000" in capsys.readouterr().out


def test_windows_are_pooled_as_evaluate_pools_them(script, tmp_path):
    # Softmax first, then the mean: p(female) = (0.007 + 0.881 + 0.881) / 3 > 0.5, although the
    # mean logit says male (1.33 < 1.67).
    windows = [[0.0, 5.0], [2.0, 0.0], [2.0, 0.0]]
    a = report(tmp_path / "a.json", [([windows, [[0.0, 1.0]]], [0, 1])])
    scores = script.fold_scores(script.load_runs([a], "recipe"), ["female", "male"])
    assert scores == [{"balanced_accuracy": 1.0, "recall_female": 1.0, "recall_male": 1.0}]


def test_reports_of_other_folds_are_refused_naming_the_file(script, tmp_path, capsys):
    a = report(tmp_path / "a.json", [([[[1.0, 0.0]], [[0.0, 1.0]]], [0, 1])])
    b = report(tmp_path / "b.json", [([[[1.0, 0.0]], [[0.0, 1.0]]], [1, 0])])
    assert script.main([str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip()
    assert "b.json" in err and "not the same folds" in err and len(err.splitlines()) == 1
