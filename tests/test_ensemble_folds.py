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


def corpora_report(path, folds, recipe="default"):
    """A cross_corpus.py-shaped report: pooled runs, per fold each corpus's clips and logits."""
    runs = [
        {
            "recipe": recipe,
            "kind": "pooled",
            "seed": 1,
            "fold": k,
            "oof": {c: {"logits": z, "targets": t} for c, (z, t) in corpora.items()},
        }
        for k, corpora in enumerate(folds)
    ]
    runs.append({"recipe": recipe, "kind": "loco", "seed": 1, "fold": 0})  # not a pooled fold
    path.write_text(json.dumps({"runs": runs}))
    return path


def test_averaging_lets_a_confident_member_overrule_an_unsure_one(script, tmp_path, capsys):
    # Clip 2 (male) is wrong by a hair in a, right by a mile in b; clip 1 the other way round.
    a = report(tmp_path / "a.json", [([[[2.0, 0.0]], [[0.0, -0.1]]], [0, 1])])
    b = report(tmp_path / "b.json", [([[[-0.1, 0.0]], [[0.0, 3.0]]], [0, 1])])
    out = tmp_path / "table.json"
    assert script.main([str(a), str(b), "--out", str(out), "--names", "a", "b"]) == 0
    single_a, single_b, both = json.loads(out.read_text())["table"]
    ba = [row["scores"]["all"]["balanced_accuracy"]["mean"] for row in (single_a, single_b, both)]
    assert ba == [0.5, 0.5, 1.0]  # each member alone gets one clip wrong; together none
    assert both["members"] == ["a", "b"] and both["scores"]["all"]["recall_male"]["mean"] == 1.0
    assert both["vs_first"] == {"mean": 0.5, "std": 0.0, "wins": 1, "losses": 0}
    assert single_a["vs_first"] is None
    assert "1+2  balanced accuracy 1.0000" in capsys.readouterr().out


def test_windows_are_pooled_as_evaluate_pools_them(script, tmp_path):
    # Softmax first, then the mean: p(female) = (0.007 + 0.881 + 0.881) / 3 > 0.5, although the
    # mean logit says male (1.33 < 1.67).
    windows = [[0.0, 5.0], [2.0, 0.0], [2.0, 0.0]]
    a = report(tmp_path / "a.json", [([windows, [[0.0, 1.0]]], [0, 1])])
    scores = script.fold_scores(script.load_runs([a], None), ["female", "male"])
    assert scores == [{"all": {"balanced_accuracy": 1.0, "recall_female": 1.0, "recall_male": 1.0}}]


def test_corpora_are_scored_apart_and_paired_on_their_macro(script, tmp_path, capsys):
    right = ([[[1.0, 0.0]], [[0.0, 1.0]]], [0, 1])
    # a misses x's man in fold 0. b gets him right, and misses y's woman in fold 1, unsurely.
    a = corpora_report(
        tmp_path / "a.json",
        [{"x": ([[[1.0, 0.0]], [[0.5, 0.0]]], [0, 1]), "y": right}, {"x": right, "y": right}],
    )
    b_fold0 = {"x": ([[[1.0, 0.0]], [[0.0, 3.0]]], [0, 1]), "y": right}
    b_fold1 = {"x": right, "y": ([[[0.0, 0.5]], [[0.0, 1.0]]], [0, 1])}
    b = corpora_report(tmp_path / "b.json", [b_fold0, b_fold1])
    out = tmp_path / "table.json"
    assert script.main([str(a), str(b), "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["folds"] == 2 and out.with_suffix(".png").stat().st_size > 0
    first, alone, both = table["table"]
    assert first["scores"]["x"]["balanced_accuracy"]["mean"] == 0.75
    assert first["scores"]["macro"]["balanced_accuracy"]["mean"] == 0.875
    assert alone["scores"]["x"]["balanced_accuracy"]["mean"] == 1.0
    assert alone["scores"]["y"]["balanced_accuracy"]["mean"] == 0.75
    assert alone["scores"]["y"]["recall_female"]["min"] == 0.0
    assert alone["vs_first"]["mean"] == 0.0  # +0.25 on fold 0, -0.25 on fold 1
    assert (alone["vs_first"]["wins"], alone["vs_first"]["losses"]) == (1, 1)
    # Averaged, b fixes a's man and a outvotes b's unsure miss: both folds right.
    assert both["scores"]["macro"]["balanced_accuracy"]["mean"] == 1.0
    assert both["vs_first"] == {
        "mean": 0.125,
        "std": both["vs_first"]["std"],
        "wins": 1,
        "losses": 0,
    }
    printed = capsys.readouterr().out
    assert "macro 0.8750" in printed and "(1/1)" in printed and "1+2" in printed


def test_reports_of_other_folds_are_refused_naming_the_file(script, tmp_path, capsys):
    a = report(tmp_path / "a.json", [([[[1.0, 0.0]], [[0.0, 1.0]]], [0, 1])])
    b = report(tmp_path / "b.json", [([[[1.0, 0.0]], [[0.0, 1.0]]], [1, 0])])
    assert script.main([str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip()
    assert "b.json" in err and "not the same folds" in err and len(err.splitlines()) == 1


def test_members_with_other_windows_are_refused(script, tmp_path, capsys):
    a = report(tmp_path / "a.json", [([[[1.0, 0.0]], [[0.0, 1.0]]], [0, 1])])
    b = report(tmp_path / "b.json", [([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0]]], [0, 1])])
    assert script.main([str(a), str(b)]) == 2
    assert "b.json" in capsys.readouterr().err


def test_a_missing_recipe_is_a_one_line_error(script, tmp_path, capsys):
    a = corpora_report(tmp_path / "a.json", [{"x": ([[[1.0, 0.0]]], [0])}], recipe="pick")
    assert script.main([str(a)]) == 2
    err = capsys.readouterr().err.strip()
    assert "a.json" in err and "'default'" in err and len(err.splitlines()) == 1
