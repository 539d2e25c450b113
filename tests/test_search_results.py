"""Reading a search's trials back from Tune's files, including files a kill cut short."""

import dataclasses
import json
from types import SimpleNamespace

import pytest
from pyarrow import fs

from search.harness import _check_saved_state, _recreate_deleted_checkpoints
from search.results import collect_rows, parse_result_line, rank, write_results
from search.space import load_space
from search.trials import TrialRow


def record(epoch: int, value: float) -> dict:
    return {
        "epoch": epoch,
        "training_iteration": epoch,
        "val_balanced_accuracy": value,
        "val_loss": 1.0 / epoch,
        "best_epoch": epoch,
        "time_total_s": float(epoch),
        "epoch_seconds": 1.0,
        "config": {"optim": {"lr": 0.003}},
    }


def fake_trial(folder, lines: list[str]) -> SimpleNamespace:
    folder.mkdir()
    (folder / "result.json").write_text("".join(lines))
    return SimpleNamespace(
        trial_id="abc",
        config={},
        status="TERMINATED",
        last_result=None,
        error_file=None,
        checkpoint=None,
        num_failures=0,
        experiment_tag="1_x",
        storage=SimpleNamespace(storage_filesystem=fs.LocalFileSystem(), trial_fs_path=str(folder)),
    )


def test_a_record_cut_by_a_kill_and_run_into_by_the_resumed_search_keeps_the_history(tmp_path):
    one, two = json.dumps(record(1, 0.6)), json.dumps(record(2, 0.8))
    # Killed while writing epoch 2; the resumed trial redid epoch 2 and wrote it after the cut.
    trial = fake_trial(tmp_path / "t", [one + "\n", two[:50] + two + "\n"])
    (row,) = collect_rows(SimpleNamespace(trials=[trial]), load_space("smoke"), 2)
    assert (row.status, row.epochs, row.value) == ("completed", 2, 0.8)
    assert row.curve == [0.6, 0.8]


def test_a_cut_record_alone_on_its_line_is_skipped_and_the_rest_kept(tmp_path):
    one, two = json.dumps(record(1, 0.6)), json.dumps(record(2, 0.8))
    trial = fake_trial(tmp_path / "t", [one + "\n", two[:50]])
    (row,) = collect_rows(SimpleNamespace(trials=[trial]), load_space("smoke"), 2)
    assert (row.status, row.epochs, row.value) == ("stopped", 1, 0.6)


def test_parse_result_line():
    whole = json.dumps(record(3, 0.7))
    assert parse_result_line(whole) == record(3, 0.7)
    assert parse_result_line(whole[:-1]) is None
    assert parse_result_line(whole[:20] + whole) == record(3, 0.7)
    assert parse_result_line("") is None


def test_a_checkpoint_the_saved_state_names_but_a_kill_deleted_is_recreated_empty(tmp_path):
    pickled = b"\x80\x05...path/run_trial_abc_1_x/checkpoint_000000\x94..."
    runtime = {"checkpoint_manager": {"_type": "CLOUDPICKLE_FALLBACK", "value": pickled.hex()}}
    state = {"trial_data": [[json.dumps({"trial_id": "abc"}), json.dumps(runtime)]]}
    (tmp_path / "experiment_state-2026.json").write_text(json.dumps(state))
    assert _check_saved_state(tmp_path) == state
    trial = tmp_path / "run_trial_abc_1_x"
    (trial / "checkpoint_000001").mkdir(parents=True)
    (trial / "checkpoint_000001" / "state.pt").write_bytes(b"epoch 2")
    _recreate_deleted_checkpoints(tmp_path, state)
    assert (trial / "checkpoint_000000").is_dir()
    # Empty: restored from it, the trial starts over.
    assert not any((trial / "checkpoint_000000").iterdir())
    assert (trial / "checkpoint_000001" / "state.pt").read_bytes() == b"epoch 2"


def test_a_last_epochs_metric_takes_the_trials_value_and_scores_at_its_last_epoch(tmp_path):
    lines = []
    for epoch, value in enumerate((0.6, 0.9, 0.7), 1):
        r = record(epoch, value)
        r.update(best_epoch=2, last3_val_balanced_accuracy=value - 0.1)
        lines.append(json.dumps(r) + "\n")
    space = load_space("smoke")
    last3 = dataclasses.replace(space, metric="last3_val_balanced_accuracy")
    (row,) = collect_rows(SimpleNamespace(trials=[fake_trial(tmp_path / "a", lines)]), last3, 3)
    assert row.value == pytest.approx(0.6) and row.metrics["val_balanced_accuracy"] == 0.7
    assert row.best_epoch == 2
    best = dataclasses.replace(space, metric="val_balanced_accuracy")
    (row,) = collect_rows(SimpleNamespace(trials=[fake_trial(tmp_path / "b", lines)]), best, 3)
    assert row.value == 0.9 and row.metrics["val_balanced_accuracy"] == 0.9


def test_a_trial_cut_short_ranks_after_every_completed_one_when_judged_at_its_last_epoch():
    completed = TrialRow("done", "completed", {}, 0.95, {"val_loss": 0.2}, epochs=60)
    cut = TrialRow("cut", "stopped", {}, 0.97, {"val_loss": 0.1}, epochs=35)
    last = dataclasses.replace(load_space("smoke"), metric="last_val_balanced_accuracy")
    assert [r.trial_id for r in rank([cut, completed], last)] == ["done", "cut"]
    best = dataclasses.replace(last, metric="val_balanced_accuracy")
    assert [r.trial_id for r in rank([cut, completed], best)] == ["cut", "done"]


def test_a_search_whose_trials_were_all_cut_short_says_so_and_still_picks(tmp_path, caplog):
    from vgd.config import TrainConfig

    last = dataclasses.replace(load_space("smoke"), metric="last_val_balanced_accuracy")
    cut = [
        TrialRow(f"t{k}", "stopped", {"optim.lr": lr}, v, {"val_loss": 0.1}, epochs=35, curve=[v])
        for k, (lr, v) in enumerate([(0.001, 0.9), (0.002, 0.95)])
    ]
    paths = write_results(cut, last, TrainConfig(), tmp_path, {})
    assert "no trial reached its last epoch (the best stopped at epoch 35)" in caplog.text
    assert json.loads(paths["summary"].read_text())["best"]["trial_id"] == "t1"
    caplog.clear()
    done = [dataclasses.replace(cut[0], status="completed", epochs=60), cut[1]]
    summary = write_results(done, last, TrainConfig(), tmp_path, {})["summary"]
    assert json.loads(summary.read_text())["best"]["trial_id"] == "t0"  # though t1 scored higher
    assert "no trial reached" not in caplog.text
