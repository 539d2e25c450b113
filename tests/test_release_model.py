"""The built-in model's pipeline: the comparison's paired table, the choice of recipe, the
risk–coverage table, and the final stage writing the same bytes twice from the same inputs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import load_script, toy_config, write_corpus
from vgd.checkpoint import load_checkpoint
from vgd.config import TrainConfig, save_config, to_dict

PROJECT = Path(__file__).resolve().parents[1]


def fake_report(base: list[float], pick: list[float], same: bool = False) -> dict:
    """A cross_corpus.py report of two recipes over pooled folds with the given macro scores."""
    cross = load_script("cross_corpus")
    runs = []
    for k, (a, b) in enumerate(zip(base, pick)):
        for recipe, score in (("default", a), ("pick", b)):
            per = {"x": {"balanced_accuracy": score}, "y": {"balanced_accuracy": score}}
            runs.append(
                {"recipe": recipe, "kind": "pooled", "train": "pooled", "seed": 1, "fold": k}
                | {"per_corpus": per, "macro_balanced_accuracy": score}
            )
    other = to_dict(TrainConfig()) if same else to_dict(toy_config(Path("m.csv"), Path(".")))
    report = {"configs": {"default": to_dict(TrainConfig()), "pick": other}, "runs": runs}
    report["paired"] = cross.paired_all(runs, ["default", "pick"])
    return report


def test_paired_differences_are_fold_by_fold():
    p = fake_report([0.9, 0.95, 0.92], [0.93, 0.96, 0.91])["paired"]["pick"]
    macro = p["macro"]
    assert macro["diff"] == pytest.approx([0.03, 0.01, -0.01])
    assert macro["mean_diff"] == pytest.approx(0.01)
    assert macro["spread"] == pytest.approx(0.02)
    assert (macro["wins"], macro["losses"]) == (2, 1)
    assert set(p) >= {"x", "y", "macro"}


def test_the_pick_ships_only_when_it_beats_the_default_by_more_than_the_spread():
    script = load_script("release_model")
    name, why = script.choose(fake_report([0.9, 0.95, 0.92], [0.93, 0.96, 0.91]))
    assert name == "default" and "not more than the spread" in why and "worse on" not in why
    name, why = script.choose(fake_report([0.9, 0.91, 0.92], [0.95, 0.955, 0.96]))
    assert name == "pick" and "on every corpus" in why
    name, why = script.choose(fake_report([0.95, 0.96, 0.97], [0.9, 0.92, 0.91]))
    assert name == "default" and why.endswith("worse on x, y")
    name, why = script.choose(fake_report([0.9, 0.91], [0.95, 0.96], same=True))
    assert name == "default" and "is the default" in why


def test_risk_coverage_answers_fewer_clips_more_accurately():
    script = load_script("release_model")
    # four clips, one window each: two confident and right, one unsure and wrong, one unsure right
    logits = [np.array([[4.0, 0.0]]), np.array([[0.0, 4.0]]), np.array([[0.3, 0.0]])]
    logits.append(np.array([[0.0, 0.2]]))
    targets = np.array([0, 1, 1, 1])
    rows = {r["threshold"]: r for r in script.risk_coverage(logits, targets, 1.0)}
    assert rows[0.5]["unknown"] == 0 and rows[0.5]["accuracy"] == pytest.approx(0.75)
    assert rows[0.7]["unknown"] == pytest.approx(0.5) and rows[0.7]["accuracy"] == 1.0
    assert rows[0.5]["balanced_accuracy"] == pytest.approx((1.0 + 2 / 3) / 2)


@pytest.mark.slow
def test_compare_then_release_writes_the_same_model_twice(tmp_path, capsys):
    root = tmp_path / "corpora"
    manifests = [write_corpus(root / "wide", 10, 1, 0.0), write_corpus(root / "deep", 10, 3, 15.0)]
    pool = tmp_path / "pool.csv"
    default = toy_config(manifests[0], tmp_path, **{"optim.epochs": 2})
    save_config(default, tmp_path / "default.yaml")
    save_config(toy_config(manifests[0], tmp_path, **{"optim.epochs": 3}), tmp_path / "pick.yaml")
    out = tmp_path / "compare"
    run = [sys.executable, str(PROJECT / "scripts/cross_corpus.py")]
    run += [f"--manifest={m}" for m in manifests] + ["--cache-dir=", f"--out={out}"]
    # two runs at once in their own processes, as the pipeline's compare stage does
    run += [f"--recipe=default={tmp_path / 'default.yaml'}"]
    run += [f"--recipe=pick={tmp_path / 'pick.yaml'}"]
    run += ["--folds=3", "--seeds", "1", "--jobs=2", f"--write-manifest={pool}"]
    run += ["--memory-format=channels_last"]
    done = subprocess.run(run, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "paired by fold (3 pooled folds): pick − default" in done.stdout
    report = json.loads((out / "results.json").read_text())
    assert [(r["recipe"], r["kind"], r["fold"]) for r in report["runs"]][:2] == [
        ("default", "loco", 0),
        ("pick", "loco", 0),
    ]  # the order of the plan, whichever process finished first
    for r in report["runs"]:
        for name, o in r["oof"].items():
            assert len(o["logits"]) == len(o["targets"]) == r["per_corpus"][name]["n_clips"]
    script = load_script("release_model")
    digests = []
    synth = ["--synthetic-draws", "3", "5", "--synthetic-speakers=4", "--synthetic-utterances=1"]
    for model_dir in (tmp_path / "a", tmp_path / "b"):
        argv = [f"--manifest={pool}", f"--compare={out / 'results.json'}"]
        shipped = model_dir / "shipped.json"
        assert script.main([*argv, *synth, f"--model-dir={model_dir}", f"--shipped={shipped}"]) == 0
        printed = capsys.readouterr().out
        assert "every speaker (channels_last)" in printed  # as compared
        assert "synthetic voices, seed 5: 4 clips, balanced accuracy" in printed
        digests.append(hashlib.sha256((model_dir / "model.pt").read_bytes()).hexdigest())
        assert json.loads(shipped.read_text())["model.pt"] == digests[-1]
    assert digests[0] == digests[1]  # the synthetic draws are seeded: their figures too
    metrics = json.loads((tmp_path / "a/metrics.json").read_text())
    synthetic = metrics["elsewhere"]["synthetic"]
    assert [(d["seed"], d["clips"], d["unreadable"]) for d in synthetic["draws"]] == [
        (3, 4, 0),
        (5, 4, 0),
    ]
    scored = script.evaluate(  # the shipped file as `vgd evaluate` scores the same draw
        load_checkpoint(tmp_path / "a/model.pt"),
        script.generate_corpus(tmp_path / "synth5", script.SynthConfig(4, 1, 5), progress=False),
    )
    assert synthetic["draws"][1]["balanced_accuracy"] == scored.metrics["balanced_accuracy"]
    bal = [d["balanced_accuracy"] for d in synthetic["draws"]]
    assert synthetic["summary"]["balanced_accuracy"]["mean"] == pytest.approx(np.mean(bal))
    assert load_checkpoint(tmp_path / "a/model.pt").metrics["elsewhere"] == metrics["elsewhere"]
    assert "## Elsewhere: synthetic voices" in (tmp_path / "a/MODEL_CARD.md").read_text()
    assert metrics["recipe"]["chosen"] in ("default", "pick")
    assert set(metrics["cv"]["per_corpus"]) == {"wide", "deep"}
    assert {(x["train"], x["test"]) for x in metrics["cross_corpus"]} == {
        ("wide", "deep"),
        ("deep", "wide"),
    }
    assert metrics["corpora"]["deep"] == {"clips": 30, "speakers": {"female": 5, "male": 5}}
    loaded = load_checkpoint(tmp_path / "a/model.pt")
    assert loaded.spec.temperature == pytest.approx(metrics["temperature"])
    chosen = yaml.safe_load((tmp_path / "a/recipe.yaml").read_text())
    assert chosen == report["configs"][metrics["recipe"]["chosen"]]
    card = (tmp_path / "a/MODEL_CARD.md").read_text()
    assert "| deep | 30 | 5 | 5 |" in card and "| wide | 0.7 (default) |" in card
    assert f"| macro over corpora | {metrics['cv']['macro_balanced_accuracy']['mean']:.4f}" in card
    assert "| deep | wide | 1 |" in card and f"**Shipped: {metrics['recipe']['chosen']}.**" in card
    other = next(n for n in report["configs"] if n != metrics["recipe"]["chosen"])
    argv += [f"--model-dir={tmp_path / 'c'}", f"--shipped={tmp_path / 'c/shipped.json'}"]
    argv += ["--synthetic-draws"]  # no draws: not measured, and the card says so
    searched = f"--search-config={tmp_path / 'pick.yaml'}"  # as the search trained its trials
    assert script.main([*argv, f"--recipe={other}", searched]) == 0
    chose = json.loads((tmp_path / "c/metrics.json").read_text())["recipe"]
    assert chose["chosen"] == other and chose["schedule"]["search"]["epochs"] == 3
    assert "the search ranked its trials on" in (tmp_path / "c/MODEL_CARD.md").read_text()
    assert script.main([*argv, "--search-config=nope.yaml"]) == 2
    assert "nope.yaml" in capsys.readouterr().err
    assert yaml.safe_load((tmp_path / "c/recipe.yaml").read_text()) == report["configs"][other]
    assert script.main([*argv, "--recipe=nope"]) == 2
    assert "no recipe 'nope' (default, pick)" in capsys.readouterr().err
    assert "elsewhere" not in json.loads((tmp_path / "c/metrics.json").read_text())
    assert "not measured here" in (tmp_path / "c/MODEL_CARD.md").read_text()
    bad = [*argv[:-1], "--synthetic-draws", "1", "--synthetic-speakers=1"]
    assert script.main(bad) == 2  # refused before the final fit, not after it
    assert "SynthConfig.speakers must be >= 2" in capsys.readouterr().err
