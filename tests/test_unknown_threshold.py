"""scripts/unknown_threshold.py on hand-made out-of-fold logits: the sweep's shares and gains,
and which thresholds meet both "unknown" targets on each corpus and on all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def ut():
    yield load_script("unknown_threshold")
    del sys.modules["unknown_threshold"]


def clips(right: int, wrong: int, wrong_margin: float) -> dict:
    """One window per clip: ``right`` clips at a logit margin of 5 for their label (female),
    ``wrong`` at ``wrong_margin`` for the other."""
    logits = [[[5.0, 0.0]]] * right + [[[0.0, wrong_margin]]] * wrong
    return {"logits": logits, "targets": [0] * (right + wrong)}


def report(tmp_path: Path, name: str, runs: list[dict]) -> Path:
    path = tmp_path / name / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"runs": runs}))
    return path


def run(oof: dict, kind: str = "pooled", recipe: str = "default") -> dict:
    return {"kind": kind, "recipe": recipe, "oof": oof}


def test_sweep_counts_unknown_and_the_gain_over_forced_choice(ut) -> None:
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.45, 0.55], [0.2, 0.8]])
    rows = {r["threshold"]: r for r in ut.sweep(probs, np.array([0, 0, 0, 1]))}
    assert rows[0.5]["unknown"] == 0 and rows[0.5]["gain"] == pytest.approx(0)
    # At 0.6 the third clip (0.55, wrong) is unknown: 3 answered, all right, forced 3 of 4.
    assert rows[0.6]["unknown"] == pytest.approx(0.25)
    assert rows[0.6]["gain"] == pytest.approx(1 - 0.75)
    assert rows[0.61]["unknown"] == pytest.approx(0.5)  # the 0.6 clip too


def test_corpora_that_meet_the_targets_at_different_thresholds_meet_none_together(
    ut, tmp_path: Path, capsys
) -> None:
    # Corpus "a": 3% of clips wrong and unsure (0.5498): unknown from 0.55 on, answered all right.
    # Corpus "b": 5% wrong and sure: never unknown, no gain, never meets the gain target.
    first = report(tmp_path, "s12", [run({"a": clips(97, 3, 0.2), "b": clips(95, 5, 5.0)})])
    second = report(tmp_path, "s34", [run({"a": clips(97, 3, 0.2), "b": clips(100, 0, 0.0)})])
    out = tmp_path / "out"
    assert ut.main([str(first), str(second), "--temperature", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "s12 (1 pooled runs)" in text and "all (2 pooled runs)" in text
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["sets"]["s12"]["meeting"] == []
    a = saved["sets"]["s12"]["corpora"]["a"]
    assert a["forced_accuracy"] == pytest.approx(0.97)
    met = ut.THRESHOLDS[ut.meets(a, 0.03, 0.005)]
    assert list(met) == [t for t in ut.THRESHOLDS if t >= 0.55]
    # Without "b"'s sure mistakes (s34: every clip right), "b" cannot gain either: none again;
    # "a" alone meets both from 0.55.
    assert saved["sets"]["s34"]["meeting"] == []
    assert "meets both at 0.55-0.95 (41 of 46)" in text
    assert (out / "sweep.png").stat().st_size > 0


def test_a_report_without_pooled_logits_is_named(ut, tmp_path: Path, capsys) -> None:
    loco = report(tmp_path, "loco", [run({"a": clips(3, 1, 1.0)}, kind="loco")])
    assert ut.main([str(loco), "--temperature", "1", "--out", str(tmp_path / "o")]) == 2
    assert "loco: no pooled runs of 'default'" in capsys.readouterr().err
    good = report(tmp_path, "good", [run({"a": clips(3, 1, 1.0)})])
    assert ut.main([str(good), "--names", "x", "y", "--temperature", "1"]) == 2
    assert "--names" in capsys.readouterr().err
