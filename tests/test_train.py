"""Training: learns the toy voices, is reproducible on the CPU, resumes, and saves checkpoints."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import toy_config, toy_run, voice, write_toy_corpus
from vgd.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vgd.config import ConfigError, RunConfig, TrainConfig, apply_overrides
from vgd.device import resolve_memory_format
from vgd.train import (
    WeightAverage,
    _scheduler,
    _State,
    last_epoch,
    recent_means,
    save_outputs,
    train,
)


def test_learns_pitch_separated_toy_voices(tmp_path):
    manifest = write_toy_corpus(tmp_path / "toy", speakers=12, utterances=8)
    cfg = toy_config(manifest, tmp_path, **{"optim.epochs": 6})
    result = train(cfg, toy_run(manifest, tmp_path), progress=False)
    assert result.history[0]["val_loss"] > result.history[-1]["val_loss"]
    assert result.best["val_balanced_accuracy"] == 1.0
    assert [h["epoch"] for h in result.history] == list(range(1, 7))
    # a scheduler may rank by the mean of the last 3 epochs instead of the best epoch
    for epoch in (1, 2, 6):
        scores = [h["val_balanced_accuracy"] for h in result.history[max(0, epoch - 3) : epoch]]
        assert result.history[epoch - 1]["last3_val_balanced_accuracy"] == pytest.approx(
            np.mean(scores)
        )


def test_recent_means_average_the_last_epochs_that_have_the_score():
    history = [{"val_balanced_accuracy": v} for v in (0.5, 0.9, 0.6, 0.7)]
    assert recent_means(history) == {"last3_val_balanced_accuracy": pytest.approx(0.7333333)}
    assert recent_means(history[:1]) == {"last3_val_balanced_accuracy": 0.5}
    assert recent_means(history, n=2) == {"last2_val_balanced_accuracy": pytest.approx(0.65)}
    assert recent_means([]) == {}
    assert recent_means([{"train_loss": 1.0}]) == {}  # no validation, nothing to rank by


def test_last_epoch_is_the_last_records_scores():
    history = [{"val_balanced_accuracy": v, "val_macro_balanced_accuracy": v} for v in (0.9, 0.6)]
    assert last_epoch(history) == {
        "last_val_balanced_accuracy": 0.6,
        "last_val_macro_balanced_accuracy": 0.6,
    }
    assert last_epoch([]) == {} and last_epoch([{"train_loss": 1.0}]) == {}


def test_scores_of_epochs_left_unvalidated_are_not_averaged_or_taken_as_the_last():
    def validated(epoch, score):
        keys = ("val_balanced_accuracy", "val_macro_balanced_accuracy", "val_loss")
        return {"epoch": epoch, **dict.fromkeys(keys, score)}

    history = [validated(1, 0.5), {"epoch": 2}, validated(3, 0.7), {"epoch": 4}]
    assert recent_means(history)["last3_val_balanced_accuracy"] == pytest.approx(0.6)
    assert last_epoch(history) == {
        "last_val_balanced_accuracy": 0.7,
        "last_val_macro_balanced_accuracy": 0.7,
    }


def test_validating_every_third_epoch_trains_the_same_weights(toy_manifest, tmp_path):
    cfg = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 5, "optim.select": "last"})
    every, seen = train(cfg, toy_run(toy_manifest, tmp_path), progress=False), []
    run = toy_run(toy_manifest, tmp_path, validate_every=3)
    sparse = train(cfg, run, callbacks=[seen.append], progress=False)
    assert [h["epoch"] for h in sparse.history if "val_loss" in h] == [1, 3, 5]
    weights = every.model.state_dict()
    assert all(torch.equal(v, weights[k]) for k, v in sparse.model.state_dict().items())
    assert [h["train_loss"] for h in sparse.history] == [h["train_loss"] for h in every.history]
    assert sparse.history[-1]["val_balanced_accuracy"] == every.history[-1]["val_balanced_accuracy"]
    # every epoch reports the last validated score (a search's metric must never be missing)
    assert seen[3]["last_val_balanced_accuracy"] == seen[2]["val_balanced_accuracy"]
    assert all("last_val_balanced_accuracy" in m for m in seen)


def test_validating_every_nth_epoch_needs_the_last_epoch_kept(toy_manifest, tmp_path):
    with pytest.raises(ConfigError, match=r"validate_every"):
        RunConfig(validate_every=0)
    cfg = toy_config(toy_manifest, tmp_path, **{"optim.select": "best"})
    with pytest.raises(ConfigError, match=r"optim\.select=last"):
        train(cfg, toy_run(toy_manifest, tmp_path, validate_every=2), progress=False)


def test_reproducible_on_cpu(toy_manifest, tmp_path):
    cfg = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 2})
    run = toy_run(toy_manifest, tmp_path)
    a, b = train(cfg, run, progress=False), train(cfg, run, progress=False)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])


class Interrupt(Exception):
    pass


def interrupt_after(epoch: int, cfg, run, state_dir: Path) -> None:
    """Train with saved state until ``epoch`` ends, then stop as a killed run would."""

    def stop(metrics):
        if metrics["epoch"] == epoch:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, run, callbacks=[stop], state_dir=state_dir, progress=False)


def test_interrupted_training_resumes_to_the_same_result(toy_manifest, tmp_path):
    cfg, run = toy_config(toy_manifest, tmp_path), toy_run(toy_manifest, tmp_path)
    full = train(cfg, run, progress=False)
    interrupt_after(2, cfg, run, tmp_path / "state")
    seen = []
    # Run settings may change between the two runs: no cache, another worker count.
    moved = RunConfig(manifest=str(toy_manifest), num_workers=1, device="cpu")
    resumed = train(
        cfg, moved, callbacks=[seen.append], state_dir=tmp_path / "state", progress=False
    )
    assert [m["epoch"] for m in seen] == [3, 4]
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]


def test_the_weight_average_follows_the_weights_with_a_warm_up():
    model = torch.nn.BatchNorm1d(2)
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(11.0)
        model.num_batches_tracked.fill_(3)
    average.update(model)  # warm-up: keep min(0.9, 2 / 11) of the average (1.0)
    assert torch.allclose(average.model.weight, torch.full((2,), 2 / 11 + 11 * 9 / 11))
    assert int(average.model.num_batches_tracked) == 3  # counters are copied, not averaged
    for _ in range(200):
        average.update(model)
    assert torch.allclose(average.model.weight, torch.full((2,), 11.0))
    assert average.steps == 201 and not average.model.weight.requires_grad


def test_a_weight_average_is_what_is_validated_and_kept(toy_manifest, tmp_path):
    run = toy_run(toy_manifest, tmp_path)
    plain = train(toy_config(toy_manifest, tmp_path, **{"optim.epochs": 2}), run, progress=False)
    cfg = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 2, "optim.ema_decay": 0.9})
    averaged = train(cfg, run, progress=False)
    # the same training steps; the average only changes which weights are judged and kept
    assert [h["train_loss"] for h in averaged.history] == [h["train_loss"] for h in plain.history]
    assert [h["val_loss"] for h in averaged.history] != [h["val_loss"] for h in plain.history]
    kept, last = averaged.model.state_dict(), plain.model.state_dict()
    assert any(not torch.equal(kept[k], last[k]) for k in kept)


def test_training_with_a_weight_average_resumes_to_the_same_weights(toy_manifest, tmp_path):
    cfg = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 3, "optim.ema_decay": 0.9})
    run = toy_run(toy_manifest, tmp_path)
    full = train(cfg, run, progress=False)
    interrupt_after(1, cfg, run, tmp_path / "state")
    resumed = train(cfg, run, state_dir=tmp_path / "state", progress=False)
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in full.history]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k])


def test_memory_format_auto_is_channels_last_on_the_cpu_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_memory_format("auto", cpu) == torch.channels_last
    assert resolve_memory_format("auto", cuda) == torch.contiguous_format
    assert resolve_memory_format("contiguous", cpu) == torch.contiguous_format
    with pytest.raises(ConfigError, match="memory_format"):
        RunConfig(memory_format="nhwc")


def test_both_layouts_train_and_save_the_default_layout(toy_manifest, tmp_path):
    cfg = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 2})
    results = {}
    for layout in ("channels_last", "contiguous"):
        run = dataclasses.replace(toy_run(toy_manifest, tmp_path), memory_format=layout)
        results[layout] = train(cfg, run, progress=False)
        out = save_outputs(results[layout], tmp_path / layout)
        saved = torch.load(out["model"], weights_only=True)["state_dict"]
        assert all(v.is_contiguous() for v in saved.values())
    # the layout is applied: it changes the arithmetic's order (and dropout's draws), so the
    # same recipe's losses differ (test_learns_... shows the CPU's default layout learns)
    last, plain = (results[k].history for k in ("channels_last", "contiguous"))
    assert [h["train_loss"] for h in last] != [h["train_loss"] for h in plain]


def test_resume_with_a_different_config_is_refused(toy_manifest, tmp_path):
    cfg, run = (
        toy_config(toy_manifest, tmp_path, **{"optim.epochs": 1}),
        toy_run(toy_manifest, tmp_path),
    )
    train(cfg, run, state_dir=tmp_path / "s", progress=False)
    with pytest.raises(ConfigError, match="different training config"):
        train(
            apply_overrides(cfg, {"optim.lr": 1e-4}), run, state_dir=tmp_path / "s", progress=False
        )


@pytest.mark.parametrize("select, kept", [("best", 1), ("last", 2)])
def test_select_keeps_the_best_or_the_last_epoch(select, kept):
    model, state = torch.nn.Linear(1, 1), None
    for epoch, score in ((1, 0.9), (2, 0.8)):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        metrics = {"epoch": epoch, "val_balanced_accuracy": score, "val_loss": 1.0 - score}
        state = state or _State.fresh(model)
        state.record(metrics, model, patience=0, select=select)
    assert state.best_epoch == kept and float(state.best_state["weight"]) == float(kept)
    assert [h["epoch"] for h in state.history] == [1, 2]


def test_select_last_refuses_early_stopping():
    with pytest.raises(ConfigError, match=r"optim\.patience"):
        apply_overrides(TrainConfig(), {"optim.select": "last", "optim.patience": 3})


def test_early_stopping_stops_and_keeps_the_best_epoch(toy_manifest, tmp_path):
    cfg = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 30, "optim.patience": 2})
    result = train(cfg, toy_run(toy_manifest, tmp_path), progress=False)
    assert result.stopped_early and len(result.history) < 30
    assert len(result.history) - result.best_epoch == 2


def test_callbacks_get_one_metrics_dict_per_epoch(toy_manifest, tmp_path):
    seen = []
    train(
        toy_config(toy_manifest, tmp_path, **{"optim.epochs": 2}),
        toy_run(toy_manifest, tmp_path),
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
    result = train(cfg, toy_run(toy_manifest, tmp_path), progress=False)
    assert result.best_epoch == 2 and "val_loss" not in result.history[-1]


def test_unreadable_clips_are_left_out_and_listed(toy_manifest, tmp_path):
    victim = next((toy_manifest.parent / "male").glob("*.wav"))
    victim.write_bytes(b"garbage")
    result = train(
        toy_config(toy_manifest, tmp_path, **{"optim.epochs": 1}),
        toy_run(toy_manifest, tmp_path),
        progress=False,
    )
    assert len(result.unreadable) == 1 and str(victim) in result.unreadable[0]


def test_checkpoint_rebuilds_the_model_and_is_self_describing(toy_manifest, tmp_path):
    result = train(
        toy_config(toy_manifest, tmp_path, **{"optim.epochs": 1}),
        toy_run(toy_manifest, tmp_path),
        progress=False,
    )
    paths = save_outputs(result, tmp_path / "run")
    loaded = load_checkpoint(paths["model"])
    assert loaded.labels == ("female", "male") and loaded.recipe == result.config
    calibrated = dataclasses.replace(result.config.spec, temperature=result.model.temperature)
    assert loaded.spec == calibrated and loaded.device == torch.device("cpu")
    assert loaded.vgd_version and "best_epoch" in loaded.metrics
    wave = torch.randn(2, 16000)
    # train() returns the model on its training device; load_checkpoint puts it on the CPU.
    trained = result.model.eval()(wave.to(next(result.model.parameters()).device)).cpu()
    assert torch.allclose(loaded.model(wave), trained, atol=1e-5)
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
    result = train(
        toy_config(toy_manifest, tmp_path, **{"optim.epochs": 1}),
        toy_run(toy_manifest, tmp_path),
        progress=False,
    )
    save_checkpoint(tmp_path / "m.pt", result.model, result.config)
    assert [p.name for p in tmp_path.glob("*m.pt*")] == ["m.pt"]


def _leaves(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_checkpoint_holds_the_model_never_the_machine(toy_manifest, tmp_path):
    run = RunConfig(manifest=str(toy_manifest), cache_dir=str(tmp_path / "cache"), threads=1)
    result = train(toy_config(toy_manifest, tmp_path, **{"optim.epochs": 1}), run, progress=False)
    paths = save_outputs(result, tmp_path / "run")
    data = torch.load(paths["model"], weights_only=True)
    assert data["format"] == "vgd-checkpoint/2"
    stored = dict(_leaves({"spec": data["spec"], "recipe": data["recipe"]}))
    run_fields = {"manifest", "cache_dir", "device", "precision", "threads", "num_workers"}
    assert not {path.rsplit(".", 1)[-1] for path in stored} & run_fields
    assert not any(str(tmp_path) in str(v) for v in stored.values())
    assert str(tmp_path) not in paths["config"].read_text()
    assert data["spec"]["window"]["seconds"] == 1.0 and data["spec"]["labels"] == ["female", "male"]


FIXTURES = Path(__file__).parent / "fixtures"


def test_a_format_1_checkpoint_still_loads_and_gives_the_same_outputs():
    """checkpoint_v1.pt was written by vgd before format 2, with its logits on fixed inputs."""
    expected = json.loads((FIXTURES / "checkpoint_v1.expected.json").read_text())
    assert torch.load(FIXTURES / "checkpoint_v1.pt", weights_only=True)["format"] == (
        "vgd-checkpoint/1"
    )
    loaded = load_checkpoint(FIXTURES / "checkpoint_v1.pt")
    assert loaded.spec.window.seconds == 1.0 and loaded.spec.window.max_windows == 4
    assert loaded.recipe.model.width == 4 and loaded.labels == ("female", "male")
    waves = torch.from_numpy(
        np.stack([voice(f0, s, seed=seed) for f0, s, seed in expected["inputs"]])
    )
    with torch.inference_mode():
        logits = loaded.model(waves)
    assert torch.allclose(logits, torch.tensor(expected["logits"]), atol=1e-5)


@pytest.mark.parametrize("steps", [1, 2, 5, 6, 10])
def test_the_one_cycle_schedule_runs_its_whole_length_however_short(steps):
    # 5 steps made OneCycleLR's warm-up exactly one step long, and it divided by zero.
    config = apply_overrides(TrainConfig(), {"optim.epochs": 1, "optim.schedule": "onecycle"})
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = _scheduler(config, optimizer, steps)
    lrs = []
    for _ in range(steps - 1):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert all(lr > 0 for lr in lrs)
    if steps >= 5:
        assert max(lrs) > 0.5 * config.optim.lr  # it warms up towards its peak
