"""The pipeline's retrain stage ships a calibrated model: its temperature is fitted on val
speakers kept out of training, never on test."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import toy_config, write_toy_corpus
from vgd.calibration import (
    expected_calibration_error,
    fit_temperature,
    pooled_probs,
    smoothed_nll,
    window_logits,
)
from vgd.checkpoint import load_checkpoint
from vgd.config import SplitConfig, from_dict, save_config
from vgd.manifest import read_manifest, write_manifest
from vgd.params import PipelineParams
from vgd.pipeline import calibration_split, stage_retrain
from vgd.splits import assign_splits, speaker_key


def speakers(clips, split: str) -> set:
    return {speaker_key(c) for c in clips if c.split == split}


SPLIT = SplitConfig(val_fraction=0.3, test_fraction=0.2)  # 10 speakers a label: 3 val, 2 test


def split_toy_corpus(root: Path, utterances: int) -> list:
    """The toy corpus with splits in its manifest, as the pipeline's data stage writes it."""
    clips = assign_splits(read_manifest(write_toy_corpus(root, 20, utterances)), SPLIT)
    write_manifest(clips, root / "manifest.csv")
    return clips


def test_calibration_split_keeps_some_val_speakers_of_each_gender_and_test(tmp_path: Path):
    clips = split_toy_corpus(tmp_path, utterances=1)
    for fraction, held_per_label in ((0.5, 2), (1.0, 3), (0.0, 0)):
        train, held = calibration_split(clips, fraction, seed=0)
        assert not speakers(train, "test") and not speakers(held, "test")
        assert speakers(held, "val") | speakers(train, "val") == speakers(clips, "val")
        assert not speakers(held, "val") & speakers(train, "val")
        assert speakers(train, "train") == speakers(clips, "train")
        assert sorted(c.label for c in held) == sorted(["female", "male"] * held_per_label)


def test_retrained_model_is_calibrated_on_held_out_speakers(tmp_path: Path):
    data = tmp_path / "data"
    clips = split_toy_corpus(data, utterances=3)
    search = tmp_path / "search"
    save_config(
        toy_config(data / "manifest.csv", tmp_path), search / "pipeline" / "best_config.yaml"
    )
    (search / "pipeline" / "summary.json").write_text(json.dumps({"best": {"best_epoch": 4}}))
    params = from_dict(
        PipelineParams,
        {
            "data": {"out": str(data)},
            "split": {"val_fraction": SPLIT.val_fraction, "test_fraction": SPLIT.test_fraction},
            "search": {"results_dir": str(search), "name": "pipeline"},
            "retrain": {"out": str(tmp_path / "out"), "calibrate_fraction": 0.5},
        },
    )
    loaded = load_checkpoint(stage_retrain(params, progress=False)["model"])
    assert loaded.spec.temperature != 1.0
    # Recomputed from the checkpoint on the held-out speakers: the temperature is the one that
    # fits them best (the fit's own loss; ECE is binned and may move either way on a few clips),
    # and the checkpoint reports their ECE before and after.
    held = calibration_split(clips, 0.5)[1]
    logits, targets = window_logits(loaded.model, loaded.spec, held, reader=None)
    t = loaded.spec.temperature
    assert t == fit_temperature(logits, targets)
    fitted = smoothed_nll(pooled_probs(logits, t), targets)
    assert fitted <= smoothed_nll(pooled_probs(logits, 1.0), targets) + 1e-12
    before = expected_calibration_error(pooled_probs(logits, 1.0), targets)
    after = expected_calibration_error(pooled_probs(logits, t), targets)
    assert loaded.metrics["val_ece_after"] == after and loaded.metrics["val_ece_before"] == before
