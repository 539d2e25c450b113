"""Training: learns the toy voices, is reproducible on the CPU, resumes, and saves checkpoints."""

import pytest
import torch

from conftest import TOY_FEATURES, write_toy_corpus
from vgd.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vgd.config import ConfigError, TrainConfig, apply_overrides
from vgd.train import save_outputs, train


def toy_config(manifest, tmp_path, **extra):
    overrides = {
        "data.manifest": str(manifest),
        "data.crop_s": 1.0,
        "data.cache_dir": str(tmp_path / "cache"),
        "optim.epochs": 4,
        "optim.batch_size": 8,
        "optim.patience": 0,
        "model.width": 8,
        **TOY_FEATURES,
        "split.val_fraction": 0.2,
        "split.test_fraction": 0.2,
    }
    return apply_overrides(TrainConfig(), {**overrides, **extra})


def test_learns_pitch_separated_toy_voices(tmp_path):
    manifest = write_toy_corpus(tmp_path / "toy", speakers=12, utterances=8)
    cfg = toy_config(manifest, tmp_path, **{"optim.epochs": 6})
    result = train(cfg, progress=False)
    assert result.history[0]["val_loss"] > result.history[-1]["val_loss"]
    assert result.best["val_balanced_accuracy"] == 1.0
    assert [h["epoch"] for h in result.history] == list(range(1, 7))


def test_reproducible_on_cpu(toy_manifest, tmp_path):
    cfg = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 2})
    a, b = train(cfg, progress=False), train(cfg, progress=False)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])


class Interrupt(Exception):
    pass


def test_interrupted_training_resumes_to_the_same_result(toy_manifest, tmp_path):
    cfg = toy_config(toy_manifest, tmp_path)
    full = train(cfg, progress=False)

    def stop_after_two(metrics):
        if metrics["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, callbacks=[stop_after_two], state_dir=tmp_path / "state", progress=False)
    seen = []
    resumed = train(cfg, callbacks=[seen.append], state_dir=tmp_path / "state", progress=False)
    assert [m["epoch"] for m in seen] == [3, 4]
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]


def test_resume_with_a_different_config_is_refused(toy_manifest, tmp_path):
    cfg = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 1})
    train(cfg, state_dir=tmp_path / "s", progress=False)
    with pytest.raises(ConfigError, match="different config"):
        train(apply_overrides(cfg, {"optim.lr": 1e-4}), state_dir=tmp_path / "s", progress=False)


def test_early_stopping_stops_and_keeps_the_best_epoch(toy_manifest, tmp_path):
    cfg = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 30, "optim.patience": 2})
    result = train(cfg, progress=False)
    assert result.stopped_early and len(result.history) < 30
    assert len(result.history) - result.best_epoch == 2


def test_callbacks_get_one_metrics_dict_per_epoch(toy_manifest, tmp_path):
    seen = []
    train(
        toy_config(toy_manifest, tmp_path, **{"optim.epochs": 2}),
        callbacks=[seen.append],
        progress=False,
    )
    assert len(seen) == 2
    assert {"epoch", "train_loss", "val_loss", "val_balanced_accuracy", "lr"} <= set(seen[0])


def test_no_validation_trains_the_full_schedule(toy_manifest, tmp_path):
    cfg = toy_config(
        toy_manifest,
        tmp_path,
        **{"optim.epochs": 2, "data.val_split": "", "data.train_splits": ["train", "val"]},
    )
    result = train(cfg, progress=False)
    assert result.best_epoch == 2 and "val_loss" not in result.history[-1]


def test_unreadable_clips_are_left_out_and_listed(toy_manifest, tmp_path):
    victim = next((toy_manifest.parent / "male").glob("*.wav"))
    victim.write_bytes(b"garbage")
    result = train(toy_config(toy_manifest, tmp_path, **{"optim.epochs": 1}), progress=False)
    assert len(result.unreadable) == 1 and str(victim) in result.unreadable[0]


def test_checkpoint_rebuilds_the_model_and_is_self_describing(toy_manifest, tmp_path):
    result = train(toy_config(toy_manifest, tmp_path, **{"optim.epochs": 1}), progress=False)
    paths = save_outputs(result, tmp_path / "run")
    loaded = load_checkpoint(paths["model"])
    assert loaded.labels == ("female", "male") and loaded.config == result.config
    assert loaded.vgd_version and "best_epoch" in loaded.metrics
    wave = torch.randn(2, 16000)
    assert torch.allclose(loaded.model(wave), result.model.eval()(wave))
    assert paths["curves"].stat().st_size > 0 and paths["config"].exists()


def test_checkpoint_loading_refuses_foreign_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: not a loadable"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a vgd checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


class Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_checkpoint_loading_never_unpickles_code(tmp_path):
    torch.save({"format": "vgd-checkpoint/1", "payload": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pt")


def test_saved_checkpoint_is_atomic(toy_manifest, tmp_path):
    result = train(toy_config(toy_manifest, tmp_path, **{"optim.epochs": 1}), progress=False)
    save_checkpoint(tmp_path / "m.pt", result.model, result.config, result.labels)
    assert [p.name for p in tmp_path.glob("*m.pt*")] == ["m.pt"]
