"""scripts/real_model.py on a tiny fake LibriSpeech tree: paired folds of two recipes."""

from __future__ import annotations

import json

import pytest
from test_bench_accuracy import fake_librispeech

from conftest import load_script
from vgd.config import TrainConfig, apply_overrides, save_config
from vgd.manifest import read_manifest

TINY = {"model.width": 4, "model.n_blocks": 2, "window.seconds": 1.0, "optim.epochs": 2}


@pytest.fixture(scope="module")
def script():
    return load_script("real_model")


@pytest.mark.slow
def test_paired_folds_of_the_recipe_and_the_baseline(script, tmp_path):
    root = tmp_path / "LibriSpeech"
    sex = fake_librispeech(root, speakers=12)
    recipe = tmp_path / "recipe.yaml"
    save_config(apply_overrides(TrainConfig(), TINY), recipe)
    common = ["--root", str(root), "--recipe", str(recipe), "--threads", "1", "--cache-dir", ""]
    out = tmp_path / "out"
    args = [*common, "--seeds", "1", "--folds", "3", "--compare", "--out", str(out)]
    args += ["--conditions", "mulaw"]
    assert script.main(args) == 0
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


def test_extra_clips_train_every_fold_and_are_never_tested(
    script, tmp_path, toy_manifest, monkeypatch
):
    root = tmp_path / "LibriSpeech"
    fake_librispeech(root, speakers=6)
    extra = read_manifest(toy_manifest)
    seen = []

    def fake_fold(config, run, clips, conditions=(), refit=False):
        seen.append(clips)
        scores = dict.fromkeys(
            ("balanced_accuracy", "accuracy", "recall_female", "recall_male"), 1.0
        )
        return {**scores, "ece": 0.0, "ece_uncalibrated": 0.0, "epochs": 1, "train_seconds": 0.0}

    monkeypatch.setattr(script, "run_fold", fake_fold)
    out = tmp_path / "out"
    args = ["--root", str(root), "--extra-train", str(toy_manifest), "--folds", "3"]
    assert script.main([*args, "--seeds", "1", "--out", str(out)]) == 0
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
    missing = tmp_path / "nope.csv"
    assert script.main(["--root", str(root), "--extra-train", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err and len(err.splitlines()) == 1


def fake_row(clips) -> dict:
    """What run_fold returns, without training: every score perfect but the speaker count."""
    scores = dict.fromkeys(("balanced_accuracy", "accuracy", "recall_female", "recall_male"), 1.0)
    train = {c.speaker for c in clips if c.split == "train"}
    # Fewer training readers score lower, so the learning curve has something to show.
    scores["balanced_accuracy"] = 0.5 + 0.05 * len(train)
    return {
        **scores,
        "ece": 0.0,
        "ece_uncalibrated": 0.0,
        "epochs": 1,
        "train_seconds": 0.0,
        "train_speakers": len(train),
    }


def test_thinning_keeps_a_nested_share_per_label_and_never_touches_val_or_test(script, tmp_path):
    from vgd.splits import speaker_folds

    root = tmp_path / "LibriSpeech"
    fake_librispeech(root, speakers=20)
    from vgd.corpora import build

    clips = build("librispeech", root, progress=False).clips
    fold = script.test_fold_clips(clips, speaker_folds(clips, 5, 1), 0, 1)
    train = [c for c in fold if c.split == "train"]
    assert len(train) == 12  # 6 female, 6 male
    kept = {}
    for share in (0.34, 0.5, 1.0):
        thin = script.thin_training(fold, share, seed=7)
        assert [c for c in thin if c.split != "train"] == [c for c in fold if c.split != "train"]
        kept[share] = {c.speaker for c in thin if c.split == "train"}
        for label in ("female", "male"):
            n = len({c.speaker for c in thin if c.split == "train" and c.label == label})
            assert n == max(1, round(share * 6))
    assert kept[0.34] < kept[0.5] < kept[1.0]
    assert script.thin_training(fold, 0.5, seed=7) == script.thin_training(fold, 0.5, seed=7)
    assert kept[0.5] != {
        c.speaker for c in script.thin_training(fold, 0.5, 8) if c.split == "train"
    }


def test_learning_curve_trains_shares_on_the_same_test_readers(script, tmp_path, monkeypatch):
    root = tmp_path / "LibriSpeech"
    fake_librispeech(root, speakers=20)
    seen = []

    def fake_fold(config, run, clips, conditions=(), refit=False):
        seen.append(clips)
        return fake_row(clips)

    monkeypatch.setattr(script, "run_fold", fake_fold)
    out = tmp_path / "out"
    args = ["--root", str(root), "--folds", "5", "--seeds", "1", "--out", str(out)]
    assert script.main([*args, "--train-fractions", "1.5"]) == 2
    assert script.main([*args, "--train-fractions", "0.5"]) == 0
    assert len(seen) == 10  # fold-major: all, half, all, half...
    for full, half in zip(seen[::2], seen[1::2]):
        assert {(c.path, c.split) for c in half if c.split != "train"} == {
            (c.path, c.split) for c in full if c.split != "train"
        }
    report = json.loads((out / "results.json").read_text())
    curve = {p["run"]: p for p in report["learning_curve"]}
    assert curve["recipe@0.5"]["train_speakers"] == 6 and curve["recipe"]["train_speakers"] == 12
    assert curve["recipe@0.5"]["vs_all"] == pytest.approx(0.05 * 6)
    assert curve["recipe"]["vs_all"] == 0.0
    assert (out / "learning_curve.png").stat().st_size > 0


def test_refit_trains_on_train_and_val_for_the_chosen_epochs(script, monkeypatch):
    from types import SimpleNamespace

    from vgd.manifest import Clip

    clips = [
        Clip(f"{s}.flac", label, split=split, speaker=s)
        for s, label, split in [
            ("a", "female", "train"),
            ("b", "male", "train"),
            ("c", "female", "val"),
            ("d", "male", "val"),
            ("e", "female", "test"),
            ("f", "male", "test"),
        ]
    ]
    fitted = SimpleNamespace(model=SimpleNamespace(temperature=1.7), best_epoch=3, seconds=5.0)
    calls = []

    class FakeTrainer:
        def __init__(self, config, run, clips, progress=True):
            calls.append((config, clips))

        def fit(self):
            return SimpleNamespace(
                model=SimpleNamespace(temperature=1.0), best_epoch=3, seconds=2.0
            )

    monkeypatch.setattr(script, "Trainer", FakeTrainer)
    again = script.refit_fold(TrainConfig(), None, clips, fitted)
    ((config, trained_on),) = calls
    assert config.optim.epochs == 3 and config.data.val_split == ""
    assert {c.speaker: c.split for c in trained_on} == dict(
        a="train", b="train", c="train", d="train", e="test", f="test"
    )
    assert again.model.temperature == 1.7 and again.seconds == 7.0
