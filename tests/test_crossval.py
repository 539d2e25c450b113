"""Cross-validation by speaker: K sessions in step, fold means per epoch, resumable."""

from __future__ import annotations

import json
import statistics

import pytest

from conftest import toy_config, toy_run, write_toy_corpus
from vgd.checkpoint import torch_load
from vgd.config import ConfigError
from vgd.crossval import (
    CrossValidation,
    aggregate,
    cross_validate,
    fold_clips,
    training_pool,
)
from vgd.splits import speaker_folds, speaker_key


class Interrupt(Exception):
    pass


def stop_after_one(metrics):
    """A callback that interrupts a cross-validation after its first epoch."""
    if metrics["epoch"] == 1:
        raise Interrupt


@pytest.fixture(scope="module")
def cv_manifest(tmp_path_factory):
    return write_toy_corpus(tmp_path_factory.mktemp("cv") / "toy", speakers=12, utterances=2)


def test_every_pool_speaker_validates_once_and_test_stays_out(cv_manifest, tmp_path):
    config = toy_config(cv_manifest, tmp_path)
    pool = training_pool(config, str(cv_manifest))
    folds = speaker_folds(pool, 3, seed=0)
    assert all(c.split in ("train", "val") for c in pool)
    validated = []
    for k in range(3):
        view = fold_clips(pool, folds, k)
        val = {speaker_key(c) for c in view if c.split == "val"}
        train = {speaker_key(c) for c in view if c.split == "train"}
        assert val and train and not val & train
        assert {c.label for c in view if c.split == "val"} == {"female", "male"}
        validated += sorted(val)
    assert sorted(validated) == sorted({speaker_key(c) for c in pool})


def test_each_epoch_reports_the_mean_and_spread_of_the_folds(cv_manifest, tmp_path):
    config = toy_config(cv_manifest, tmp_path, **{"optim.epochs": 2})
    seen = []
    result = cross_validate(
        config,
        toy_run(cv_manifest, tmp_path),
        folds=3,
        callbacks=[seen.append],
        state_dir=tmp_path / "state",
    )
    assert [m["epoch"] for m in seen] == [1, 2] and result.folds == 3
    per_fold = [torch_load(tmp_path / "state" / f"fold{k}" / "state.pt") for k in range(3)]
    for epoch, metrics in enumerate(seen, 1):
        scores = [f["history"][epoch - 1]["val_balanced_accuracy"] for f in per_fold]
        assert metrics["val_balanced_accuracy"] == pytest.approx(statistics.fmean(scores))
        assert metrics["val_balanced_accuracy_std"] == pytest.approx(statistics.pstdev(scores))
        assert metrics["val_balanced_accuracy_min"] == min(scores)
        assert metrics["fold_epochs"] == 3 * epoch
    assert result.best_epoch in (1, 2)
    assert result.best == result.history[result.best_epoch - 1]
    # what a scheduler ranks by: the best epoch so far's score, the mean's and each fold's own
    for metrics in seen:
        best = seen[metrics["best_epoch"] - 1]["val_balanced_accuracy"]
        assert metrics["best_val_balanced_accuracy"] == best
    for fold in per_fold:
        history = fold["history"]
        for h in history:
            assert (
                h["best_val_balanced_accuracy"]
                == history[h["best_epoch"] - 1]["val_balanced_accuracy"]
            )
    # or the mean of the last epochs' scores (up to 3; fewer at the start), the mean's and each
    # fold's own
    for curve in [seen] + [fold["history"] for fold in per_fold]:
        for epoch, h in enumerate(curve, 1):
            recent = [r["val_balanced_accuracy"] for r in curve[max(0, epoch - 3) : epoch]]
            assert h["last3_val_balanced_accuracy"] == pytest.approx(statistics.fmean(recent))


def test_folds_with_a_speaker_encoder_report_their_last_epoch_fused(cv_manifest, tmp_path):
    overrides = {"optim.epochs": 2, "model.encoder": "ge2e", "optim.select": "last"}
    config = toy_config(cv_manifest, tmp_path, **overrides)
    seen = []
    cv = CrossValidation(config, toy_run(cv_manifest, tmp_path), folds=3)
    # the folds' training sets overlap: one cache of the encoder's embeddings serves them all
    assert cv.trainers[0].embeddings is cv.trainers[2].embeddings is not None
    cv.add_callback(seen.append)
    cv.fit()
    assert "cnn_val_balanced_accuracy" not in seen[0]
    last = seen[-1]
    # the mean of 3 folds' own fused and CNN-only scores, and the trial's last-epoch ranking
    assert last["last_val_macro_balanced_accuracy"] == last["val_macro_balanced_accuracy"]
    assert "cnn_val_macro_balanced_accuracy" in last
    assert last["val_loss"] != last["cnn_val_loss"]


def test_folds_validated_every_third_epoch_end_where_every_epoch_validated_does(
    cv_manifest, tmp_path
):
    config = toy_config(cv_manifest, tmp_path, **{"optim.epochs": 4, "optim.select": "last"})
    full = cross_validate(config, toy_run(cv_manifest, tmp_path), folds=3)
    seen = []
    run = toy_run(cv_manifest, tmp_path, validate_every=3)
    sparse = cross_validate(config, run, folds=3, callbacks=[seen.append])
    key = "val_macro_balanced_accuracy"
    assert [key in m for m in seen] == [True, False, True, True]
    assert [h[key] for h in sparse.history if key in h] == [full.history[e][key] for e in (0, 2, 3)]
    # the unvalidated epoch 2 carries epoch 1's score as the last one, and is never the best
    assert seen[1]["last_" + key] == seen[0][key]
    assert sparse.best_epoch != 2


def test_an_interrupted_cross_validation_resumes_to_the_same_result(cv_manifest, tmp_path):
    config = toy_config(cv_manifest, tmp_path, **{"optim.epochs": 3})
    run = toy_run(cv_manifest, tmp_path)
    full = cross_validate(config, run, folds=3)

    with pytest.raises(Interrupt):
        cross_validate(config, run, 3, callbacks=[stop_after_one], state_dir=tmp_path / "s")
    seen = []
    resumed = cross_validate(config, run, 3, callbacks=[seen.append], state_dir=tmp_path / "s")
    assert [m["epoch"] for m in seen] == [2, 3]
    key = "val_balanced_accuracy"
    assert [h[key] for h in resumed.history] == [h[key] for h in full.history]
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    with pytest.raises(ConfigError, match="different config, fold count"):
        cross_validate(config, run, 2, state_dir=tmp_path / "s")


def test_early_stopping_watches_the_fold_mean():
    history = [
        {"epoch": e, "val_balanced_accuracy": v, "val_loss": 0.5}
        for e, v in enumerate([0.8, 0.9, 0.85, 0.86, 0.87], 1)
    ]
    from vgd.crossval import _CVState

    state = _CVState()
    for metrics in history:
        state.record(metrics, patience=3)
    assert state.best_epoch == 2 and state.stopped


def test_aggregate_means_every_float_metric():
    folds = [
        {"epoch": 1, "val_balanced_accuracy": 0.8, "val_loss": 0.4, "train_loss": 1.0},
        {"epoch": 1, "val_balanced_accuracy": 1.0, "val_loss": 0.2, "train_loss": 0.5},
    ]
    m = aggregate(1, folds)
    assert m["val_balanced_accuracy"] == pytest.approx(0.9)
    assert m["val_balanced_accuracy_std"] == pytest.approx(0.1)
    assert (m["val_loss_min"], m["val_loss_max"]) == (0.2, 0.4)
    assert m["train_loss"] == pytest.approx(0.75) and m["folds"] == 2


def test_too_few_speakers_for_the_folds_is_a_clear_error(cv_manifest, tmp_path):
    config = toy_config(cv_manifest, tmp_path)
    with pytest.raises(Exception, match="fewer than 9 folds"):
        cross_validate(config, toy_run(cv_manifest, tmp_path), folds=9)


def test_params_yaml_carries_cv_to_the_search(tmp_path):
    from vgd.params import load_params

    path = tmp_path / "params.yaml"
    path.write_text("search:\n  name: real\n  space: wide\n  cv: 5\n")
    assert load_params(path).search_config.cv == 5
    path.write_text("search:\n  name: real\n  cv: 1\n")
    with pytest.raises(ConfigError, match="search.cv"):
        load_params(path)


def test_aggregate_spreads_each_corpus_balanced_accuracy():
    folds = [
        {"epoch": 1, "val_balanced_accuracy@a": 0.9, "val_recall_male@a": 0.8},
        {"epoch": 1, "val_balanced_accuracy@a": 0.7, "val_recall_male@a": 1.0},
    ]
    m = aggregate(1, folds)
    assert m["val_balanced_accuracy@a_std"] == pytest.approx(0.1)
    assert m["val_balanced_accuracy@a_min"] == pytest.approx(0.7)
    assert "val_recall_male@a_std" not in m


def test_several_fold_seeds_train_k_folds_each_and_report_the_mean_of_all(cv_manifest, tmp_path):
    config = toy_config(cv_manifest, tmp_path, **{"optim.epochs": 2})
    run = toy_run(cv_manifest, tmp_path)
    seen = []
    result = cross_validate(
        config, run, 2, callbacks=[seen.append], state_dir=tmp_path / "s", seed=[0, 7]
    )
    assert result.folds == 4 and [m["fold_epochs"] for m in seen] == [4, 8]
    per_fold = [
        torch_load(tmp_path / "s" / f"seed{s}" / f"fold{k}" / "state.pt")
        for s in (0, 7)
        for k in range(2)
    ]
    for epoch, metrics in enumerate(seen, 1):
        scores = [f["history"][epoch - 1]["val_balanced_accuracy"] for f in per_fold]
        assert metrics["val_balanced_accuracy"] == pytest.approx(statistics.fmean(scores))
        assert metrics["val_balanced_accuracy_min"] == min(scores) and metrics["folds"] == 4
    pool = training_pool(config, str(cv_manifest))
    assert speaker_folds(pool, 2, 0) != speaker_folds(pool, 2, 7)  # two partitions, not one twice
    with pytest.raises(ConfigError, match="fold seeds"):  # resumed with other seeds
        cross_validate(config, run, 2, state_dir=tmp_path / "s", seed=[0, 8])
    with pytest.raises(ConfigError, match="fold seeds repeat"):
        cross_validate(config, run, 2, seed=[3, 3])


def test_one_fold_seed_is_the_split_seed_by_default(cv_manifest, tmp_path):
    config = toy_config(cv_manifest, tmp_path, **{"optim.epochs": 1, "split.seed": 4})
    run = toy_run(cv_manifest, tmp_path)
    default = cross_validate(config, run, 2, state_dir=tmp_path / "a")
    explicit = cross_validate(config, run, 2, state_dir=tmp_path / "b", seed=[4])
    other = cross_validate(config, run, 2, seed=5)
    key = "val_balanced_accuracy"
    assert (tmp_path / "a" / "fold1" / "state.pt").exists()  # one seed: the folders as before
    assert default.history[0][key] == explicit.history[0][key]
    assert default.history[0]["val_loss"] == explicit.history[0]["val_loss"]
    assert other.history[0]["val_loss"] != default.history[0]["val_loss"]


def test_search_cv_seeds_need_cv_and_differ(tmp_path):
    from vgd.params import SearchConfig, load_params

    path = tmp_path / "params.yaml"
    path.write_text("search:\n  name: real\n  cv: 5\n  cv_seeds: [10, 11]\n")
    assert load_params(path).search_config.cv_seeds == (10, 11)
    with pytest.raises(ConfigError, match="needs search.cv"):
        SearchConfig(cv_seeds=(1, 2))
    with pytest.raises(ConfigError, match="a seed repeats"):
        SearchConfig(cv=5, cv_seeds=(1, 1))


def test_a_state_saved_before_fold_seeds_were_recorded_resumes_as_one_seed(cv_manifest, tmp_path):
    config = toy_config(cv_manifest, tmp_path, **{"optim.epochs": 2})
    run = toy_run(cv_manifest, tmp_path)

    with pytest.raises(Interrupt):
        cross_validate(config, run, 2, callbacks=[stop_after_one], state_dir=tmp_path / "s")
    state = tmp_path / "s" / "cv.json"
    saved = json.loads(state.read_text())
    assert saved.pop("seeds") == [config.split.seed]
    state.write_text(json.dumps(saved))  # as an earlier vgd wrote it
    seen = []
    cross_validate(config, run, 2, callbacks=[seen.append], state_dir=tmp_path / "s")
    assert [m["epoch"] for m in seen] == [2]
    with pytest.raises(ConfigError, match="fold seeds"):  # but not as two
        cross_validate(config, run, 2, state_dir=tmp_path / "s", seed=[0, 1])
