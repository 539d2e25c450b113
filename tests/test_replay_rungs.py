"""scripts/replay_rungs.py: a finished search's rung decisions replayed with other margins."""

import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import replay_rungs  # noqa: E402

METRIC = "last3_val_balanced_accuracy"


def write_search(tmp_path, curves: dict[str, tuple[float, list[float]]]) -> Path:
    """A search folder as Tune leaves it: each trial's result.json (start time, scores)."""
    space = tmp_path / "tiny.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                "metric": METRIC,
                "scheduler": {"grace_period": 2, "reduction_factor": 2, "margin": 0.01},
                "base": {"optim.epochs": 4},
                "parameters": {"optim.lr": {"loguniform": [1e-3, 1e-2]}},
            }
        )
    )
    out = tmp_path / "search"
    for trial, (start, scores) in curves.items():
        folder = out / "ray" / "tune" / f"run_trial_{trial}"
        folder.mkdir(parents=True)
        lines = [
            json.dumps(
                {
                    "epoch": e,
                    "training_iteration": e,
                    "trial_id": trial,
                    "timestamp": int(start + 10 * e),
                    "time_total_s": 10.0 * e,
                    METRIC: v,
                }
            )
            for e, v in enumerate(scores, 1)
        ]
        (folder / "result.json").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps({"space": str(space)}))
    return out


def test_the_space_margin_keeps_a_trial_that_ray_asha_stops(tmp_path, capsys):
    # a reaches the rung at epoch 2 first; b trails it there by 0.005, c by 0.05
    search = write_search(
        tmp_path,
        {"a": (0, [0.80, 0.90, 0.91, 0.92]), "b": (5, [0.85, 0.895, 0.95]), "c": (7, [0.7, 0.85])},
    )
    assert replay_rungs.main([str(search)]) == 0
    out = capsys.readouterr().out
    assert "margin 0.01\n" in out
    assert "epoch   2  a          0.9000  first at its rung: kept" in out
    assert "epoch   2  b          0.8950  cutoff 0.9000, kept" in out
    assert "epoch   2  c          0.8500  cutoff 0.8975, STOPPED" in out

    assert replay_rungs.main([str(search), "--margin", "0"]) == 0
    out = capsys.readouterr().out
    assert "epoch   2  b          0.8950  cutoff 0.9000, STOPPED" in out
    assert "b          0.9500" not in out  # a stopped trial is fed no more epochs


def test_events_follow_the_order_the_trials_reported_them(tmp_path):
    search = write_search(tmp_path, {"late": (3, [0.5, 0.6]), "early": (0, [0.4, 0.7])})
    events = replay_rungs.read_events(search, METRIC)
    order = [(e.trial_id, e.epoch) for e in events]
    assert order == [("early", 1), ("late", 1), ("early", 2), ("late", 2)]


def test_a_search_without_the_metric_is_a_clear_error(tmp_path, capsys):
    search = write_search(tmp_path, {"a": (0, [0.8])})
    assert replay_rungs.main([str(search), "--metric", "best_val_balanced_accuracy"]) == 1
    assert "no trial reported best_val_balanced_accuracy" in capsys.readouterr().err


def test_curves_print_each_trials_score_at_the_epochs_named(tmp_path, capsys):
    # b stopped after 3 epochs: its column at epoch 4 is blank, not a score from another epoch
    curves = {"a": (0, [0.80, 0.90, 0.91, 0.92]), "b": (5, [0.7, 0.8, 0.85])}
    search = write_search(tmp_path, curves)
    assert replay_rungs.main([str(search), "--curves", "1", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["trial", "ep", "1", "ep", "4"]
    assert lines[2].split() == ["a", "0.8000", "0.9200"]
    assert lines[3].rstrip() == "b           0.7000"
    assert "cutoff" not in "\n".join(lines)
