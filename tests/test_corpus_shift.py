"""scripts/corpus_shift.py on hand-made out-of-fold logits: a corpus whose voices the model ranks
perfectly at a shifted threshold is told apart from one it cannot rank."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def cs():
    yield load_script("corpus_shift")
    del sys.modules["corpus_shift"]


def shifted_oof(shift: float, n: int = 40, seed: int = 0) -> dict:
    """One-window clips whose log-odds male:female are women ~ shift - 4, men ~ shift + 4."""
    rng = np.random.default_rng(seed)
    odds = np.concatenate([rng.normal(shift - 4, 0.7, n), rng.normal(shift + 4, 0.7, n)])
    return {
        "logits": [[[0.0, float(z)]] for z in odds],
        "targets": [0] * n + [1] * n,
    }


def test_a_clips_score_is_the_log_odds_of_its_mean_probability_at_t(cs) -> None:
    assert cs.clip_scores([[[0.0, 2.0]]], 1.0) == pytest.approx([2.0])
    assert cs.clip_scores([[[0.0, 2.0]]], 2.0) == pytest.approx([1.0])
    # two windows: the mean of their probabilities, not of their logits
    p = (1 / (1 + np.exp(-4.0)) + 0.5) / 2
    assert cs.clip_scores([[[0.0, 4.0], [0.0, 0.0]]], 1.0) == pytest.approx([np.log(p / (1 - p))])


def test_a_shifted_threshold_is_found_with_labels_and_without(cs) -> None:
    oof = shifted_oof(shift=5.0)  # every woman's score is above 0: the model calls all male
    scores, targets = cs.clip_scores(oof["logits"], 1.0), np.array(oof["targets"])
    m = cs.measure(scores, targets)
    assert m["at_model"] == pytest.approx(0.5, abs=0.02)
    assert m["auc"] == 1.0 and m["at_best"] == 1.0
    assert 3.0 < m["mixture_threshold"] < 7.0 and m["at_mixture"] == 1.0


def test_voices_the_model_cannot_rank_gain_nothing_from_a_threshold(cs) -> None:
    rng = np.random.default_rng(1)
    scores, targets = rng.normal(0, 1, 200), np.array([0, 1] * 100)
    m = cs.measure(scores, targets)
    assert abs(m["auc"] - 0.5) < 0.1 and m["at_mixture"] < 0.6


def test_main_tabulates_each_kind_and_writes_json_and_a_plot(cs, tmp_path: Path, capsys) -> None:
    runs = [
        {"recipe": "default", "kind": "loco", "train": "a", "seed": 1, "fold": 0,
         "temperature": 1.0, "oof": {"b": shifted_oof(5.0)}},
        {"recipe": "default", "kind": "pooled", "train": "pooled", "seed": 1, "fold": 0,
         "temperature": 1.0, "oof": {"a": shifted_oof(0.0, seed=2), "b": shifted_oof(0.0, seed=3)}},
        {"recipe": "pick", "kind": "loco", "train": "a", "seed": 1, "fold": 0,
         "temperature": 1.0, "oof": {"b": shifted_oof(0.0)}},
    ]  # fmt: skip
    report = tmp_path / "results.json"
    report.write_text(json.dumps({"runs": runs}))
    out = tmp_path / "out"
    assert cs.main([str(report), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("a → b") and "1.0000" in lines[1]  # leave-one-out first
    assert {line.split()[0] for line in lines[2:4]} == {"pooled"}
    written = json.loads((out / "results.json").read_text())
    assert [(s["kind"], s["test"]) for s in written["sets"]] == [
        ("loco", "b"),
        ("pooled", "a"),
        ("pooled", "b"),
    ]
    assert (out / "scores.png").stat().st_size > 0
    with pytest.raises(SystemExit, match="no runs of 'other'"):
        cs.main([str(report), "--recipe", "other", "--out", str(out)])


def test_a_bias_fitted_on_a_few_labelled_speakers_recovers_a_shift(cs) -> None:
    run = {"temperature": 1.0, "oof": {"b": shifted_oof(5.0, n=30)}}
    speakers = [f"s{i}" for i in range(60)]  # one clip per speaker
    gain = cs.labelled_gain(run, "b", speakers, k=5, draws=20)
    assert gain["at_model"] < 0.6 and gain["fitted"] > 0.95 and gain["k"] == 5
    rows = {("loco", "a", "b", 5): [gain]}
    line = cs.format_labelled(rows).splitlines()[1]
    assert line.split()[:4] == ["a", "→", "b", "5"] and "+0.4" in line
