"""Several corpora in one run: manifests pooled, folds by corpus × gender, speaker-balanced
sampling, per-corpus metrics, and scripts/cross_corpus.py end to end on two tiny corpora."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.connection
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import load_script, toy_config, write_corpus
from vgd.batches import DeviceBatcher, pack_corpus
from vgd.config import ConfigError, RunConfig, apply_overrides, save_config
from vgd.crossval import leave_corpus_out
from vgd.dataset import speaker_weights
from vgd.evaluate import compute_metrics
from vgd.manifest import Clip, ManifestError, read_manifests, write_manifest
from vgd.provenance import machine
from vgd.splits import assign_splits, speaker_folds, speaker_key
from vgd.train import corpus_metrics, load_clips, selection_score


def clips_of(corpus: str, n_female: int, n_male: int, utts: int) -> list[Clip]:
    """Clips of a corpus without audio: ``utts`` each for the speakers of each label."""
    return [
        Clip(f"/{corpus}/{label}{s}_{u}.wav", label, f"{label[0]}{s}", 2.0, corpus)
        for label, n in (("female", n_female), ("male", n_male))
        for s in range(n)
        for u in range(utts)
    ]


def test_pooled_manifests_name_their_corpus_and_drop_their_own_splits(tmp_path):
    a = write_manifest(
        [c.with_split("train") for c in clips_of("", 2, 2, 1)], tmp_path / "alpha" / "manifest.csv"
    )
    b = write_manifest(clips_of("beta", 2, 2, 3), tmp_path / "b.csv")
    pool = read_manifests([a, b])
    assert Counter(c.corpus for c in pool) == {"alpha": 4, "beta": 12}
    assert {c.split for c in pool} == {""}
    # the same speaker id in two corpora is two people
    assert len({speaker_key(c) for c in pool}) == 8
    assert {c.split for c in read_manifests([a])} == {"train"}
    with pytest.raises(ManifestError):
        read_manifests([])


def test_folds_are_stratified_by_corpus_and_gender():
    clips = clips_of("big", 20, 20, 1) + clips_of("small", 5, 10, 4)
    folds = speaker_folds(clips, 5, seed=3)
    for k in range(5):
        held = {(c.corpus, c.label) for c, f in zip(clips, folds) if f == k}
        assert held == {("big", "female"), ("big", "male"), ("small", "female"), ("small", "male")}
    fold_of = {}
    for c, f in zip(clips, folds):
        assert fold_of.setdefault(speaker_key(c), f) == f
    sizes = Counter(fold_of.values())
    assert max(sizes.values()) - min(sizes.values()) <= 1  # remainders rotate over folds


def test_splits_hold_every_corpus_and_gender():
    clips = assign_splits(clips_of("a", 10, 10, 1) + clips_of("b", 6, 4, 3))
    for split in ("train", "val", "test"):
        assert {(c.corpus, c.label) for c in clips if c.split == split} == {
            ("a", "female"),
            ("a", "male"),
            ("b", "female"),
            ("b", "male"),
        }


def test_one_corpus_keeps_the_folds_it_had():
    """Strata are labels when there is one corpus: its seeded folds do not depend on its name."""
    one = clips_of("librispeech", 7, 9, 1)
    renamed = [Clip(c.path, c.label, c.speaker, c.duration_s, "x") for c in one]
    assert speaker_folds(one, 3, seed=1) == speaker_folds(renamed, 3, seed=1)


def test_leave_corpus_out_tests_on_the_corpus_and_trains_on_the_others():
    clips = clips_of("a", 10, 10, 1) + clips_of("b", 4, 4, 5)
    out = leave_corpus_out(clips, "b", 0.2, seed=0)
    assert {c.split for c in out if c.corpus == "b"} == {"test"}
    rest = [c for c in out if c.corpus == "a"]
    assert {c.split for c in rest} == {"train", "val"}
    assert {c.label for c in rest if c.split == "val"} == {"female", "male"}
    with pytest.raises(ManifestError):
        leave_corpus_out(clips_of("a", 4, 4, 1), "a", 0.2, seed=0)


def test_speaker_weights_balance_speakers_and_gender_within_corpus():
    clips = clips_of("one", 6, 2, 1) + clips_of("many", 2, 2, 20)
    w = np.array(speaker_weights(clips))
    assert w.sum() == pytest.approx(1.0)
    per_speaker = Counter()
    for c, x in zip(clips, w):
        per_speaker[speaker_key(c)] += x
    # every speaker of a corpus × gender weighs the same, whatever their clip count
    many = [v for (corpus, spk), v in per_speaker.items() if corpus == "many"]
    assert max(many) == pytest.approx(min(many))
    by = Counter()
    for c, x in zip(clips, w):
        by[(c.corpus, c.label)] += x
    assert by[("one", "female")] == pytest.approx(by[("one", "male")])
    # corpora weigh as their share of the speakers: 8 of 12 and 4 of 12
    assert by[("one", "female")] + by[("one", "male")] == pytest.approx(8 / 12)


def test_device_batcher_draws_speakers_evenly():
    clips = clips_of("one", 4, 4, 1) + clips_of("many", 4, 4, 10)
    waves = [np.full(400, i, dtype=np.float32) for i in range(len(clips))]
    labels = [int(c.label == "male") for c in clips]
    weights = speaker_weights(clips)
    batcher = DeviceBatcher(
        pack_corpus(waves, "float32"),
        labels,
        crop=100,
        batch_size=64,
        seed=1,
        balance="speaker",
        clip_weights=weights,
    )
    drawn = torch.cat([x[:, 0] for x, _ in batcher.epoch(0)]).long().tolist()
    many_share = np.mean([clips[i].corpus == "many" for i in drawn])
    # items: "many" has 80 of 88 clips (×4 crops), but half the speakers
    assert 0.4 < many_share < 0.6
    with pytest.raises(ValueError, match="clip weights"):
        DeviceBatcher(pack_corpus(waves, "float32"), labels, 100, 8, balance="speaker")


def test_config_accepts_speaker_balance_only_by_name():
    config = apply_overrides(toy_config(Path("m.csv"), Path(".")), {"data.balance": "speaker"})
    assert config.data.balance == "speaker"
    with pytest.raises(ConfigError):
        apply_overrides(config, {"data.balance": "speakers"})


def test_metrics_per_corpus_and_their_macro():
    targets = np.array([0, 1, 0, 1, 0, 0, 0, 1])
    # corpus a: all right; corpus b: the one male is called female
    pred = np.array([0, 1, 0, 1, 0, 0, 0, 0])
    probs = np.eye(2)[pred]
    corpora = ["a"] * 4 + ["b"] * 4
    m = compute_metrics(targets, probs, ("female", "male"), list(range(8)), corpora)
    assert m["per_corpus"]["a"]["balanced_accuracy"] == 1.0
    assert m["per_corpus"]["b"]["recall"] == {"female": 1.0, "male": 0.0}
    assert m["per_corpus"]["b"]["balanced_accuracy"] == 0.5
    assert m["macro_balanced_accuracy"] == 0.75
    assert m["balanced_accuracy"] == pytest.approx((1.0 + 2 / 3) / 2)  # pooled differs
    flat = corpus_metrics(m)
    assert flat["val_balanced_accuracy@b"] == 0.5 and flat["val_recall_male@b"] == 0.0
    one = compute_metrics(targets, probs, ("female", "male"), None, ["a"] * 8)
    assert one["macro_balanced_accuracy"] == one["balanced_accuracy"]
    assert corpus_metrics(one) == {}


def test_the_best_epoch_is_chosen_on_the_macro():
    worse_pooled = {"val_balanced_accuracy": 0.9, "val_macro_balanced_accuracy": 0.95}
    better_pooled = {"val_balanced_accuracy": 0.95, "val_macro_balanced_accuracy": 0.9}
    for m in (worse_pooled, better_pooled):
        m["val_loss"] = 0.2
    assert selection_score(worse_pooled) > selection_score(better_pooled)


@pytest.fixture(scope="module")
def two_corpora(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("two")
    return [write_corpus(root / "wide", 10, 1, 0.0), write_corpus(root / "deep", 10, 3, 15.0)]


def test_cross_corpus_runs_loco_both_ways_and_pooled_cv(two_corpora, tmp_path, capsys):
    script = load_script("cross_corpus")
    recipe = tmp_path / "toy.yaml"
    save_config(toy_config(two_corpora[0], tmp_path, **{"optim.epochs": 2}), recipe)
    out = tmp_path / "out"
    argv = [f"--manifest={m}" for m in two_corpora]
    argv += [f"--recipe=toy={recipe}", "--folds=3", "--seeds", "4", f"--out={out}"]
    argv += ["--cache-dir=", f"--write-manifest={tmp_path / 'pool.csv'}"]
    assert script.main(argv) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "results.json").read_text())
    kinds = Counter((r["kind"], r["train"]) for r in report["runs"])
    assert kinds == {("loco", "deep"): 1, ("loco", "wide"): 1, ("pooled", "pooled"): 3}
    loco = [r for r in report["runs"] if r["kind"] == "loco"]
    assert {next(iter(r["per_corpus"])) for r in loco} == {"wide", "deep"}
    for r in loco:  # trained on the other corpus only
        assert set(r["train_speakers"]) == {r["train"]}
        assert set(r["per_corpus"]) == {"wide", "deep"} - {r["train"]}
    pooled = [r for r in report["runs"] if r["kind"] == "pooled"]
    assert all(set(r["per_corpus"]) == {"wide", "deep"} for r in pooled)
    assert all(len(r["curve"]) == 2 for r in pooled)
    assert all(r["machine"] == machine() for r in report["runs"])  # which CPU trained each
    tested = Counter(r["per_corpus"]["deep"]["n_speakers"] for r in pooled)
    assert sum(n * k for n, k in tested.items()) == 10  # each speaker tested once
    rows = {(x["train"], x["test"]) for x in report["table"]}
    assert rows == {
        ("deep", "wide"),
        ("wide", "deep"),
        ("pooled", "wide"),
        ("pooled", "deep"),
        ("pooled", "macro"),
    }
    assert "wide → deep" in printed and "pooled → macro" in printed
    assert (out / "cross_corpus.png").stat().st_size > 0
    assert (out / "curves.png").stat().st_size > 0
    assert len(read_manifests([tmp_path / "pool.csv"])) == 40
    # redrawn from its JSON with another run merged in: only the folds both ran are kept
    other = json.loads((out / "results.json").read_text())
    other["runs"] = [dict(r, recipe="other") for r in other["runs"] if r["fold"] == 1]
    other["configs"] = {"other": {}}
    (tmp_path / "other.json").write_text(json.dumps(other))
    again = tmp_path / "again"
    assert (
        script.main(
            ["--merge", str(out / "results.json"), str(tmp_path / "other.json"), f"--out={again}"]
        )
        == 0
    )
    redrawn = json.loads((again / "results.json").read_text())
    assert {(r["recipe"], r["fold"]) for r in redrawn["runs"]} == {("toy", 1), ("other", 1)}
    assert set(redrawn["curves"]) == {"toy", "other"}
    assert "within 0.01 of best" in (again / "table.txt").read_text()
    # a report of leave-one-corpus-out runs only (--no-pooled) has no curves to show
    loco_only = dict(report, runs=loco)
    (tmp_path / "loco.json").write_text(json.dumps(loco_only))
    assert script.main(["--merge", str(tmp_path / "loco.json"), f"--out={tmp_path / 'loco'}"]) == 0
    text = (tmp_path / "loco" / "table.txt").read_text()
    assert "wide → deep" in text and "within 0.01 of best" not in text
    assert not (tmp_path / "loco" / "curves.png").exists()


def test_resumed_runs_from_another_machine_are_named():
    script = load_script("cross_corpus")
    here = {"cpu": "EPYC", "capability": "AVX512", "torch": "2.11.0"}
    avx2 = dict(here, capability="AVX2")
    runs = [{"machine": here}, {"machine": avx2}, {"machine": avx2}, {}]
    lines = script.other_machines(runs, here)
    assert lines == [
        "resuming: 1 of them trained on a machine they do not name, not on this "
        "EPYC (AVX512, torch 2.11.0): another CPU's floats train other models of the same recipe",
        "resuming: 2 of them trained on EPYC (AVX2, torch 2.11.0), not on this "
        "EPYC (AVX512, torch 2.11.0): another CPU's floats train other models of the same recipe",
    ]
    assert script.other_machines(runs[:1], here) == []


def test_within_finds_the_first_epoch_near_the_best():
    script = load_script("cross_corpus")
    assert script.within([0.5, 0.8, 0.955, 0.9, 0.96]) == 3
    assert script.within([0.9]) == 1


def test_cross_corpus_needs_two_corpora(two_corpora, tmp_path, capsys):
    script = load_script("cross_corpus")
    assert script.main([f"--manifest={two_corpora[0]}", f"--out={tmp_path}"]) == 2
    assert "2+ corpora" in capsys.readouterr().err


def test_runs_are_seed_major_and_fold_limit_keeps_the_first_folds():
    script = load_script("cross_corpus")
    clips = clips_of("a", 6, 6, 1) + clips_of("b", 3, 3, 2)
    args = argparse.Namespace(
        seeds=[1, 2], no_loco=False, no_pooled=False, folds=3, fold_limit=2, val_fraction=0.2
    )
    metas = [meta for meta, _ in script.splits(clips, args)]
    assert [(m["seed"], m["kind"], m["fold"]) for m in metas] == [
        (1, "loco", 0),
        (1, "loco", 0),
        (1, "pooled", 0),
        (1, "pooled", 1),
        (2, "loco", 0),
        (2, "loco", 0),
        (2, "pooled", 0),
        (2, "pooled", 1),
    ]
    # the same seed gives the same pooled folds with or without the limit
    full = dict(vars(args), fold_limit=0)
    first = [
        f for m, f in script.splits(clips, argparse.Namespace(**full)) if m["kind"] == "pooled"
    ]
    limited = [f for m, f in script.splits(clips, args) if m["kind"] == "pooled"]
    assert limited == first[:2] + first[3:5]


def measure_args(out: Path) -> argparse.Namespace:
    """measure()'s arguments for seed 1's 3 pooled folds, one run at a time, into ``out``."""
    return argparse.Namespace(
        seeds=[1],
        no_loco=True,
        no_pooled=False,
        folds=3,
        fold_limit=0,
        jobs=1,
        out=out,
        overwrite=False,
        score_epochs=[],
    )


def test_a_pick_equal_to_the_default_is_not_trained_again(monkeypatch, tmp_path):
    script = load_script("cross_corpus")
    base = toy_config(Path("m.csv"), tmp_path)
    other = apply_overrides(base, {"optim.lr": base.optim.lr / 2})
    recipes = {"default": base, "pick": base, "other": other}
    assert script.same_as(recipes) == {"pick": "default"}
    trained = []

    def fake_run(config, run, clips, score_epochs=()):
        trained.append(config)
        score = 0.9 if config == base else 0.8
        return {"macro_balanced_accuracy": score, "per_corpus": {}, "best_epoch": 1}

    monkeypatch.setattr(script, "run_split", fake_run)
    clips = clips_of("a", 6, 6, 1) + clips_of("b", 3, 3, 2)
    args = measure_args(tmp_path)
    monkeypatch.setattr(script, "table", lambda rows: [])
    monkeypatch.setattr(script, "run_line", lambda row: row["recipe"])
    report = {"runs": [], "configs": {}, "clips_sha1": script.clips_digest(clips), "folds": 3}
    script.measure(recipes, None, clips, args, report)
    assert len(trained) == 6  # 3 folds × (default, other)
    rows = report["runs"]
    assert [r["recipe"] for r in rows] == ["default", "pick", "other"] * 3
    assert all(r["macro_balanced_accuracy"] == 0.9 for r in rows if r["recipe"] == "pick")
    assert report["same_as"] == {"pick": "default"}


def test_a_comparison_resumed_from_one_recipe_gets_its_twin_and_its_table(monkeypatch, tmp_path):
    """A finished report of the default alone, resumed as default against an equal pick: nothing
    is trained, the pick's rows are the default's, and the table is written though no run was."""
    script = load_script("cross_corpus")
    base = toy_config(Path("m.csv"), tmp_path)
    trained: list[int] = []

    def fake_run(config, run, clips, score_epochs=()):
        trained.append(len(clips))
        return {"macro_balanced_accuracy": 0.5 + len(trained) / 10, "per_corpus": {}}

    monkeypatch.setattr(script, "run_split", fake_run)
    monkeypatch.setattr(script, "table", lambda rows: [r["recipe"] for r in rows])
    monkeypatch.setattr(script, "run_line", lambda row: row["recipe"])
    clips = clips_of("a", 6, 6, 1) + clips_of("b", 3, 3, 2)
    args = measure_args(tmp_path)

    def report(recipes):
        configs = {n: script.to_dict(c) for n, c in recipes.items()}
        digest = script.clips_digest(clips)
        return {"runs": [], "configs": configs, "clips_sha1": digest, "folds": 3, "code": "v1"}

    script.measure({"default": base}, None, clips, args, report({"default": base}))
    assert len(trained) == 3
    trained.clear()
    both = {"default": base, "pick": base}
    resumed = report(both)
    script.measure(both, None, clips, args, resumed)
    assert trained == []
    assert [(r["recipe"], r["fold"]) for r in resumed["runs"]] == [
        (name, k) for k in range(3) for name in both
    ]
    pairs = zip(resumed["runs"][::2], resumed["runs"][1::2], strict=True)
    assert all(d["macro_balanced_accuracy"] == p["macro_balanced_accuracy"] for d, p in pairs)
    assert resumed["table"] == ["default", "pick"] * 3
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["table"] == resumed["table"]


def test_a_comparison_writes_its_table_once_per_trained_run(monkeypatch, tmp_path):
    script = load_script("cross_corpus")
    writes: list[int] = []
    monkeypatch.setattr(script, "atomic_write_json", lambda path, data: writes.append(1))
    monkeypatch.setattr(
        script, "run_split", lambda *a, **k: {"macro_balanced_accuracy": 0.5, "per_corpus": {}}
    )
    monkeypatch.setattr(script, "table", lambda rows: [])
    monkeypatch.setattr(script, "run_line", lambda row: row["recipe"])
    clips = clips_of("a", 6, 6, 1) + clips_of("b", 3, 3, 2)
    base = toy_config(Path("m.csv"), tmp_path)
    report = {"runs": [], "configs": {"default": script.to_dict(base)}, "folds": 3}
    script.measure({"default": base}, None, clips, measure_args(tmp_path), report)
    assert len(report["runs"]) == 3 and len(writes) == 3


def test_an_interrupted_comparison_resumes_with_the_runs_it_finished(monkeypatch, tmp_path):
    script = load_script("cross_corpus")
    base = toy_config(Path("m.csv"), tmp_path)
    recipes = {"default": base, "other": apply_overrides(base, {"optim.lr": base.optim.lr / 2})}
    trained: list[tuple] = []
    interrupt = [True]

    def fake_run(config, run, clips, score_epochs=()):
        if interrupt[0] and len(trained) == 3:
            raise KeyboardInterrupt  # stopped during the fourth run
        trained.append((config.optim.lr, len(clips)))
        return {"macro_balanced_accuracy": 0.5 + len(trained) / 10, "per_corpus": {}}

    monkeypatch.setattr(script, "run_split", fake_run)
    monkeypatch.setattr(script, "table", lambda rows: [])
    monkeypatch.setattr(script, "run_line", lambda row: row["recipe"])
    clips = clips_of("a", 6, 6, 1) + clips_of("b", 3, 3, 2)
    args = measure_args(tmp_path)

    def report():
        configs = {n: script.to_dict(c) for n, c in recipes.items()}
        digest = script.clips_digest(clips)
        return {"runs": [], "configs": configs, "clips_sha1": digest, "folds": 3, "code": "v1"}

    with pytest.raises(KeyboardInterrupt):
        script.measure(recipes, None, clips, args, report())
    trained.clear()
    interrupt[0] = False
    resumed = report()
    script.measure(recipes, None, clips, args, resumed)
    assert len(trained) == 3  # only the 3 runs the first command did not finish
    assert [(r["recipe"], r["fold"]) for r in resumed["runs"]] == [
        (name, k) for k in range(3) for name in recipes
    ]
    # the first command's scores are kept, not retrained
    assert [r["macro_balanced_accuracy"] for r in resumed["runs"][:3]] == [0.6, 0.7, 0.8]
    # a recipe whose configuration changed is trained again; --overwrite retrains all
    recipes["other"] = apply_overrides(base, {"optim.lr": base.optim.lr / 4})
    trained.clear()
    script.measure(recipes, None, clips, args, report())
    assert [lr for lr, _ in trained] == [base.optim.lr / 4] * 3
    trained.clear()
    script.measure(
        recipes, None, clips, argparse.Namespace(**{**vars(args), "overwrite": True}), report()
    )
    assert len(trained) == 6
    # runs that did not score the epochs now asked for are trained again
    trained.clear()
    script.measure(
        recipes, None, clips, argparse.Namespace(**{**vars(args), "score_epochs": [2]}), report()
    )
    assert len(trained) == 6
    # other code, then another layout, trains every run again; the same does not
    for changed in ({"code": "v2"}, {"code": "v2", "memory_format": "channels_last"}):
        trained.clear()
        script.measure(recipes, None, clips, args, report() | changed)
        assert len(trained) == 6
    trained.clear()
    script.measure(recipes, None, clips, args, report() | changed)
    assert trained == []


def test_scoring_other_epochs_leaves_the_run_as_it_was(two_corpora, tmp_path):
    script = load_script("cross_corpus")
    config = toy_config(two_corpora[0], tmp_path, **{"optim.epochs": 3})
    clips = read_manifests(two_corpora)
    fold = leave_corpus_out(clips, "deep", 0.3, 1)
    run = RunConfig("", "cpu", cache_dir="")
    plain = script.run_split(config, run, fold)
    scored = script.run_split(config, run, fold, (1, 3))
    assert scored["per_corpus"] == plain["per_corpus"]  # the snapshots change no training
    assert [h["val_loss"] for h in scored["curve"]] == [h["val_loss"] for h in plain["curve"]]
    assert set(scored["at_epoch"]) == {"1", "3", str(plain["best_epoch"])}
    assert "at_epoch" not in plain
    for scores in scored["at_epoch"].values():
        assert set(scores) == {"deep", "macro"} and 0.0 <= scores["deep"] <= 1.0


def test_the_epochs_scored_are_the_weight_average_when_there_is_one(
    two_corpora, tmp_path, monkeypatch
):
    script = load_script("cross_corpus")
    averaged = {"optim.epochs": 3, "optim.ema_decay": 0.5, "optim.schedule": "constant"}
    config = toy_config(two_corpora[0], tmp_path, **averaged, **{"optim.lr": 0.05})
    fold = leave_corpus_out(read_manifests(two_corpora), "deep", 0.3, 1)
    run = RunConfig("", "cpu", cache_dir="")
    scored = {}

    def keep(result, weights, test):
        scored.update(weights)
        return {}

    monkeypatch.setattr(script, "epoch_scores", keep)
    row = script.run_split(config, run, fold, (2,))
    assert row["best_epoch"] != 2  # epoch 2's weights come from the snapshot, not the result
    # the average after epoch 2 is what a 2-epoch run that keeps its last epoch ships
    two = apply_overrides(config, {"optim.epochs": 2, "optim.select": "last"})
    shipped = script.Trainer(two, run, fold, progress=False).fit().model.state_dict()
    for k, v in shipped.items():
        assert torch.equal(scored[2][k].cpu(), v.cpu()), k


def test_epoch_rules_compare_the_validation_pick_with_fixed_epochs():
    script = load_script("cross_corpus")

    def row(kind, best, scores):
        at = {e: {"a": v, "macro": v} for e, v in scores.items()}
        return {"recipe": "r", "kind": kind, "train": "b", "best_epoch": best, "at_epoch": at}

    rows = [
        row("loco", 2, {"2": 0.8, "3": 0.9}),
        row("loco", 3, {"2": 0.7, "3": 0.6}),
        {"recipe": "r", "kind": "loco", "train": "b", "best_epoch": 1},  # scored no epochs
    ]
    (rule,) = script.epoch_rules(rows)  # LOCO runs have no macro line
    assert (rule["train"], rule["test"], rule["runs"]) == ("b", "a", 2)
    assert rule["mean"] == pytest.approx({"val pick": 0.7, "epoch 2": 0.75, "epoch 3": 0.75})
    assert rule["min"] == pytest.approx({"val pick": 0.6, "epoch 2": 0.7, "epoch 3": 0.6})
    lines = script.epoch_rule_lines({"epoch_rules": [rule]})
    assert "val pick 0.7000 (0.6000)" in lines[1] and "epoch 3 0.7500" in lines[1]


def test_a_failed_run_stops_the_workers_still_training(toy_manifest, tmp_path, monkeypatch):
    script = load_script("cross_corpus")
    monkeypatch.syspath_prepend(str(Path(script.__file__).parent))  # spawn hands the workers this
    long = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 1000})
    clips = load_clips(long, str(toy_manifest))
    meta = {"kind": "pooled", "train": "pooled", "seed": 1, "fold": 0}
    todo = [(meta, clips, "long", long), (meta, [], "broken", long)]  # no clips: fails at once
    start = time.perf_counter()
    with pytest.raises(ManifestError, match="no clips"):
        list(script._runs(todo, RunConfig("", "cpu", threads=1), jobs=2))
    # Every worker has ended: its sentinel is ready. (Not active_children() == []: now and
    # then a worker's exit status is reaped before its Process object sees it, and it stays
    # listed, with no exit code, though it is gone.)
    running = [c.sentinel for c in multiprocessing.active_children()]
    deadline = time.monotonic() + 10
    while running and time.monotonic() < deadline:
        ended = multiprocessing.connection.wait(running, timeout=deadline - time.monotonic())
        running = [s for s in running if s not in ended]
    assert running == []  # the long run was stopped, not waited for
    assert time.perf_counter() - start < 120


def test_set_trains_every_recipe_on_the_same_schedule(tmp_path):
    script = load_script("cross_corpus")
    pick = tmp_path / "pick.yaml"
    save_config(apply_overrides(toy_config(Path("m.csv"), tmp_path), {"optim.epochs": 3}), pick)
    args = script.parse_args(
        ["--recipe", "default", "--recipe", f"pick={pick}", "--set", "optim.epochs=40"]
        + ["--set", "data.crops_per_clip=0"]
    )
    overrides = dict(script.parse_override(x) for x in args.set)
    recipes = script.load_recipes(args.recipe, "speaker", overrides)
    assert {n: (c.optim.epochs, c.data.crops_per_clip) for n, c in recipes.items()} == {
        "default": (40, 0),
        "pick": (40, 0),
    }
    assert recipes["pick"].model.width == 8  # the rest of each recipe is its own
    assert all(c.data.balance == "speaker" for c in recipes.values())


def test_the_code_version_follows_the_modules_it_hashes(tmp_path, monkeypatch):
    script = load_script("cross_corpus")
    package = tmp_path / "vgd"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text("EPOCHS = 1\n")
    monkeypatch.setattr(script.vgd, "__file__", str(package / "__init__.py"))
    first = script.code_version()
    assert script.code_version() == first
    (package / "train.py").write_text("EPOCHS = 2\n")
    assert script.code_version() != first


def test_several_jobs_start_the_runs_with_most_training_clips_first():
    script = load_script("cross_corpus")

    def run(name: str, trained: int, recipe: str) -> tuple:
        fold = [
            Clip(f"/{name}{i}.wav", "female", f"s{i}", 2.0, "a", "train") for i in range(trained)
        ]
        fold.append(Clip(f"/{name}t.wav", "male", "t", 2.0, "a", "test"))  # not trained on
        return ({"kind": name}, fold, recipe, None)

    todo = [
        run("loco_small", 2, "default"),
        run("loco_small", 2, "pick"),
        run("pooled", 5, "default"),
        run("pooled", 5, "pick"),
        run("loco_large", 4, "default"),
    ]
    assert script.schedule(todo, jobs=1) == todo  # one at a time: fold-major, as listed
    started = [(t[0]["kind"], t[2]) for t in script.schedule(todo, jobs=2)]
    assert started == [
        ("pooled", "default"),
        ("pooled", "pick"),  # a fold's recipes stay side by side
        ("loco_large", "default"),
        ("loco_small", "default"),
        ("loco_small", "pick"),
    ]


def test_the_curve_table_reaches_the_last_epoch():
    script = load_script("cross_corpus")
    assert script.curve_marks(60)[-3:] == [40, 48, 60]
    assert script.curve_marks(20)[-2:] == [16, 20]
    assert script.curve_marks(1) == [1]
    curve = [0.5 + i / 200 for i in range(60)]
    report = {
        "curves": {
            "r": {"folds": 2, "val_macro_balanced_accuracy": curve, "within_1pt_of_best": 59}
        }
    }
    header, row = script.curve_lines(report)
    assert header.split()[-2:] == ["ep", "60"] and "0.7950" in row  # epoch 60's 0.5 + 59/200
