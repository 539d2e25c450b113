"""scripts/decision_bias.py on hand-made out-of-fold logits: a bias trades one gender's recall
for the other's, after the temperature, and no bias helps two corpora that err in opposite
directions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def db():
    yield load_script("decision_bias")
    del sys.modules["decision_bias"]


def corpus(unsure: list[float], unsure_label: int) -> dict:
    """Nine sure clips of each gender (one window each), and one unsure clip of ``unsure_label``
    whose window logits are ``unsure``."""
    logits = [[[5.0, 0.0]]] * 9 + [[[0.0, 5.0]]] * 9 + [[unsure]]
    return {"logits": logits, "targets": [0] * 9 + [1] * 9 + [unsure_label]}


# x: a woman the model calls male by a hair; y: a man it calls female by a hair.
X = corpus([0.0, 0.25], 0)
Y = corpus([0.25, 0.0], 1)


def report(tmp_path: Path, name: str, oof: dict, recipe: str = "default") -> Path:
    path = tmp_path / name / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"runs": [{"kind": "pooled", "recipe": recipe, "oof": oof}]}))
    return path


def test_a_bias_toward_male_trades_womens_recall_for_mens(db) -> None:
    assert list(db.recalls(X["logits"], X["targets"], 1.0, 0.0)) == [0.9, 1.0]
    assert list(db.recalls(X["logits"], X["targets"], 1.0, -0.3)) == [1.0, 1.0]
    assert list(db.recalls(Y["logits"], Y["targets"], 1.0, -0.3)) == pytest.approx([1.0, 0.9])
    # A bias strong enough to overturn the sure clips costs the other gender everything.
    assert list(db.recalls(X["logits"], X["targets"], 1.0, 6.0)) == [0.0, 1.0]


def test_the_bias_is_added_after_the_temperature(db) -> None:
    # At T = 2 the unsure woman's margin is 0.125: -0.2 already rights her, at T = 1 it does not.
    assert db.recalls(X["logits"], X["targets"], 2.0, -0.2)[0] == 1.0
    assert db.recalls(X["logits"], X["targets"], 1.0, -0.2)[0] == 0.9


def test_corpora_erring_in_opposite_directions_share_no_bias(db) -> None:
    run = {"oof": {"x": X, "y": Y}}
    corpora = db.sweep([run, run], 1.0)
    at = {r["bias"]: r for r in corpora["x"]}
    assert at[0.0]["gap"] == pytest.approx(0.1) and at[0.0]["balanced_accuracy"] == 0.95
    assert db.within(corpora["x"], 0.02) == [float(b) for b in db.BIASES if b <= -0.3]
    assert db.within(corpora["y"], 0.02) == [float(b) for b in db.BIASES if b >= 0.3]
    assert db.meeting(corpora, 0.02) == []
    assert db.meeting({"x": corpora["x"]}, 0.02) == db.within(corpora["x"], 0.02)
    assert db.span([]) == "none" and db.span([-0.5, -0.3]) == "-0.50 to -0.30 (2 of 31)"


def test_main_writes_the_sweep_and_plot_and_says_none(db, tmp_path, capsys) -> None:
    a = report(tmp_path, "a", {"x": X, "y": Y})
    out = tmp_path / "out"
    assert db.main([str(a), "--temperature", "1.0", "--out", str(out)]) == 0
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["temperature"] == 1.0 and saved["sets"]["a"]["meeting"] == []
    assert len(saved["sets"]["a"]["corpora"]["x"]) == len(db.BIASES)
    assert (out / "sweep.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "gap within 2 at -1.50 to -0.30 (13 of 31)" in printed
    assert "every corpus's gap within target: none" in printed


def test_a_report_without_the_recipe_is_a_one_line_error(db, tmp_path, capsys) -> None:
    a = report(tmp_path, "a", {"x": X}, recipe="pick")
    assert db.main([str(a), "--temperature", "1.0", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no pooled runs of 'default'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
