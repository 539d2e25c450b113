"""scripts/pooling_rules.py: two ways of pooling a clip's windows, scored on saved logits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import load_script

# Softmax first, then the mean: p(female) = (0.007 + 0.881 + 0.881) / 3 = 0.589, female; the
# mean logit is (1.33, 1.67), male.
SPLIT = [[0.0, 5.0], [2.0, 0.0], [2.0, 0.0]]


@pytest.fixture(scope="module")
def script():
    return load_script("pooling_rules")


def run(kind, clips, targets, temperature=1.0, recipe="default", fold=0, test="corpusA"):
    """One cross_corpus.py run row with its saved window logits."""
    return {
        "recipe": recipe,
        "kind": kind,
        "train": "pooled" if kind == "pooled" else "corpusB",
        "seed": 1,
        "fold": fold,
        "temperature": temperature,
        "oof": {test: {"logits": clips, "targets": targets}},
    }


def test_the_rules_disagree_where_one_window_is_sure_and_two_lean_the_other_way(script):
    mean_prob = script.pool("mean_prob", [np.array(SPLIT)], 1.0)[0]
    mean_logit = script.pool("mean_logit", [np.array(SPLIT)], 1.0)[0]
    assert mean_prob.argmax() == 0 and mean_prob[0] == pytest.approx(0.5894, abs=1e-4)
    assert mean_logit.argmax() == 1 and mean_logit[1] == pytest.approx(1 / (1 + np.exp(-1 / 3)))
    # One window: the rules agree.
    one = [np.array([[1.0, -1.0]])]
    np.testing.assert_allclose(
        script.pool("mean_prob", one, 2.0), script.pool("mean_logit", one, 2.0)
    )


def test_aurc_is_lower_when_the_errors_are_the_least_confident(script):
    targets = np.array([0, 0, 0, 0])
    errors_last = np.array([[0.99, 0.01], [0.9, 0.1], [0.8, 0.2], [0.4, 0.6]])
    errors_first = np.array([[0.99, 0.01], [0.9, 0.1], [0.8, 0.2], [0.005, 0.995]])
    assert script.aurc(errors_last, targets) == pytest.approx((0 + 0 + 0 + 1 / 4) / 4)
    assert script.aurc(errors_first, targets) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)


def test_loco_runs_keep_their_own_temperature_and_pooled_runs_share_a_fitted_one(script):
    clips = [[[2.0, 0.0]], [[0.0, 1.0]], [[0.5, 0.0]], SPLIT]
    report = {
        "runs": [
            run("pooled", clips, [0, 1, 0, 1], temperature=9.0, fold=0),
            run("pooled", clips, [0, 1, 1, 0], temperature=9.0, fold=1),
            run("loco", clips, [0, 1, 0, 1], temperature=3.0),
        ]
    }
    rows = script.measure(report, 0.7, {})
    loco = {r["rule"]: r["temperature"] for r in rows if r["kind"] == "loco"}
    pooled = {(r["fold"], r["rule"]): r["temperature"] for r in rows if r["kind"] == "pooled"}
    assert loco == {"mean_prob": 3.0, "mean_logit": 3.0}
    logits = [np.array(c) for c in clips] * 2
    targets = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    for rule in script.RULES:
        assert pooled[0, rule] == pooled[1, rule] == script.fit(rule, logits, targets) != 9.0


def test_a_recipe_that_repeats_another_is_counted_once(script):
    clips, targets = [[[2.0, 0.0]], [[0.0, 1.0]]], [0, 1]
    report = {
        "runs": [run("loco", clips, targets), run("loco", clips, targets, recipe="pick")],
        "same_as": {"pick": "default"},
    }
    assert {r["recipe"] for r in script.measure(report, 0.7, {})} == {"default"}


def test_main_writes_the_table_rows_and_curves_and_counts_paired_wins(script, tmp_path, capsys):
    # Clip 2 is male: mean_prob calls it female, mean_logit male, so mean_logit wins that run.
    report = {"runs": [run("loco", [[[2.0, 0.0]], SPLIT], [0, 1], temperature=1.0)]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(report))
    assert script.main([str(path), "--out", str(tmp_path / "out")]) == 0
    lines = {x.split()[2]: x.split() for x in capsys.readouterr().out.splitlines()[2:]}
    assert lines["mean_prob"][4] == "0.5000" and lines["mean_logit"][4] == "1.0000"
    assert lines["mean_logit"][-2:] == ["1", "0"]  # wins, losses
    saved = json.loads((tmp_path / "out" / "rows.json").read_text())
    assert [r["rule"] for r in saved["rows"]] == ["mean_prob", "mean_logit"]
    assert saved["rows"][0]["report"] == str(path)
    assert (tmp_path / "out" / "curves.png").stat().st_size > 0
    assert (tmp_path / "out" / "table.txt").read_text().startswith("threshold 0.7")


def test_a_report_without_saved_logits_is_refused_naming_the_file(script, tmp_path, capsys):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"runs": [{"recipe": "default", "kind": "pooled"}]}))
    assert script.main([str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "old.json" in err and "no run kept its logits" in err and len(err.splitlines()) == 1
