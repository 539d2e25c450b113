"""The search harness end to end (Ray starts in a subprocess, as a user runs it): smoke search,
four trials packed on one logical GPU, failing trials, Ctrl-C and SIGKILL with resume. The
cluster tests are in test_cluster.py."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import write_toy_corpus
from vgd.checkpoint import load_checkpoint
from vgd.config import load_config

ROOT = Path(__file__).resolve().parents[1]
RUN = [sys.executable, str(ROOT / "search" / "run.py")]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_toy_corpus(tmp_path_factory.mktemp("search_corpus"), speakers=12, utterances=4)


def search(tmp_path, corpus, *args, timeout=240, env=None):
    cmd = [
        *RUN,
        "--manifest",
        str(corpus),
        "--results-dir",
        str(tmp_path / "results"),
        "--cache-dir",
        str(tmp_path / "cache"),
        *args,
    ]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
    )


def trials(out_dir):
    with open(out_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def test_smoke_search_writes_every_result(tmp_path, corpus):
    start = time.monotonic()
    proc = search(tmp_path, corpus, "--space", "smoke")
    wall = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "results" / "smoke"
    rows = trials(out)
    assert len(rows) == 4 and {r["status"] for r in rows} <= {"completed", "stopped"}
    assert rows[0]["optim.lr"] == "0.003"  # the default configuration runs first
    best = load_config(out / "best_config.yaml")  # a recipe: no manifest, cache or threads
    assert (
        best.model.width in (4, 8) and str(tmp_path) not in (out / "best_config.yaml").read_text()
    )
    loaded = load_checkpoint(out / "best_model.pt")
    assert loaded.recipe == best
    assert (out / "search.png").stat().st_size > 5000
    assert "tensorboard --logdir" in proc.stdout and "best val_balanced_accuracy" in proc.stdout
    assert "[search " in proc.stderr  # the live progress line
    events = list((out / "ray").rglob("events.out.tfevents.*"))
    assert len(events) == 4
    assert wall < 180, f"smoke search took {wall:.0f} s"

    again = search(tmp_path, corpus, "--space", "smoke")  # same name, no --resume/--overwrite
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert len(trials(out)) == 4  # the earlier search is untouched


def test_cross_validated_trials_report_the_fold_mean_and_spread(tmp_path, corpus):
    # 2 folds for each of 2 fold seeds: 4 folds a trial, two partitions of the same speakers;
    # in bf16 autocast, which the CPU runs too when asked
    args = ("--space", "smoke", "--cv", "2", "--cv-seeds", "0", "5", "--name", "cv")
    proc = search(tmp_path, corpus, *args, "--precision", "bf16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "results" / "cv"
    rows = trials(out)
    assert len(rows) == 4
    for r in rows:
        mean = float(r["val_balanced_accuracy"])
        low, high = float(r["val_balanced_accuracy_min"]), float(r["val_balanced_accuracy_max"])
        assert low <= mean <= high and float(r["val_balanced_accuracy_std"]) >= 0, r
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cv_folds"] == 2 and summary["cv_seeds"] == [0, 5]
    reports = [json.loads(line) for f in (out / "ray").rglob("result.json") for line in f.open()]
    assert len(reports) >= 4 and all(r["folds"] == 4 for r in reports)  # each trial's epochs
    assert {r["precision"] for r in reports} == {"bf16"}
    assert summary["fold_epochs_trained"] == 4 * sum(int(r["epochs"]) for r in rows)
    assert (out / "best_config.yaml").exists() and not (out / "best_model.pt").exists()
    assert " ± " in proc.stdout  # the top-k table shows the spread over the folds


def test_trials_validated_every_third_epoch_report_and_rank_their_last_one(tmp_path, corpus):
    space = tmp_path / "sparse.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                "metric": "last_val_balanced_accuracy",
                "budget": {"num_samples": 2},
                "base": {
                    "optim.epochs": 4,
                    "optim.select": "last",
                    "model.width": 4,
                    "model.n_blocks": 2,
                    "window.seconds": 1.0,
                },
                "parameters": {"optim.lr": {"loguniform": [1.0e-3, 1.0e-2]}},
            }
        )
    )
    args = ("--space", str(space), "--cv", "2", "--scheduler", "none", "--validate-every", "3")
    proc = search(tmp_path, corpus, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "results" / "sparse"
    for result in (out / "ray").rglob("result.json"):
        reports = [json.loads(line) for line in result.open()]
        # Ray refuses a report without the search's metric: every epoch carries the last one
        assert ["val_balanced_accuracy" in r for r in reports] == [True, False, True, True]
        assert reports[1]["last_val_balanced_accuracy"] == reports[0]["val_balanced_accuracy"]
    for row in trials(out):
        assert row["status"] == "completed" and row["epochs"] == "4"
        assert float(row["last_val_balanced_accuracy"]) == float(row["val_balanced_accuracy"])
    assert (out / "search.png").stat().st_size > 5000


def test_four_trials_share_one_logical_gpu_and_fall_back_to_the_cpu(tmp_path, corpus):
    # Ray's GPUs are logical: one pretend GPU on this CPU-only machine, a quarter per trial,
    # and half of one of two CPUs each, so four trials fit at once on any machine.
    proc = search(
        tmp_path,
        corpus,
        *("--space", "smoke", "--num-gpus", "1", "--num-cpus", "2"),
        *("--gpus-per-trial", "0.25", "--cpus-per-trial", "0.5"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "results" / "smoke"
    rows = trials(out)
    assert len(rows) == 4 and {r["status"] for r in rows} <= {"completed", "stopped"}
    for r in rows:  # each saw GPU 0, found no CUDA there and trained on the CPU
        assert (r["gpu_ids"], r["cuda_visible_devices"], r["device"]) == ("0", "0", "cpu"), r
    assert "4 trial(s) were given a GPU share but found no usable CUDA device" in proc.stderr
    reports = [json.loads(line) for f in (out / "ray").rglob("result.json") for line in f.open()]
    assert {r["precision"] for r in reports} == {"fp32"}  # auto: no autocast on the CPU fallback
    summary = json.loads((out / "summary.json").read_text())
    assert summary["slot_usage"]["slots"] == 4 and summary["peak_running_trials"] == 4
    spans = summary["timeline"].values()  # [started, first epoch, ended] per trial
    assert max(s[0] for s in spans) < min(s[2] for s in spans), spans  # all four at once


def test_failing_trials_are_retried_then_recorded(tmp_path, corpus):
    space = tmp_path / "faulty.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                "budget": {"num_samples": 4},
                "base": {
                    "optim.epochs": 1,
                    "model.width": 4,
                    "model.n_blocks": 2,
                    "window.seconds": 1.0,
                },
                # a validation split that does not exist makes a trial raise
                "parameters": {"data.val_split": {"categorical": ["val", "holdout"]}},
            }
        )
    )
    proc = search(
        tmp_path,
        corpus,
        "--space",
        str(space),
        "--sampler",
        "random",
        "--seed",
        "3",
        "--max-failures",
        "1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = trials(tmp_path / "results" / "faulty")
    failed = [r for r in rows if r["status"] == "failed"]
    ok = [r for r in rows if r["status"] == "completed"]
    assert len(rows) == 4 and failed and ok
    for r in failed:
        assert r["data.val_split"] == "holdout" and r["failures"] == "2"
        assert "no clips in validation split 'holdout'" in r["error"]


# Trials to interrupt: a smoke trial finishes about 0.1 s after the one before it once Ray is
# warm, so 6 trials could all finish between two polls and leave nothing to interrupt.
MANY = 20


def _wait_for(predicate, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _finished_trials(ray_dir):
    done = 0
    for result in ray_dir.rglob("result.json"):
        if '"done": true' in result.read_text():
            done += 1
    return done


def _start(tmp_path, corpus, name, samples):
    cmd = [
        *RUN,
        "--space",
        "smoke",
        "--name",
        name,
        "--num-samples",
        str(samples),
        "--max-concurrent",
        "1",
        "--manifest",
        str(corpus),
        "--results-dir",
        str(tmp_path / "results"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    return subprocess.Popen(
        cmd,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _resume(tmp_path, name):
    return subprocess.run(
        [*RUN, "--name", name, "--resume", "--results-dir", str(tmp_path / "results")],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )


def _results_per_trial(ray_dir):
    return {
        p.parent.name.split("_")[2]: p.read_text().count("\n") for p in ray_dir.rglob("result.json")
    }


def test_sigkill_then_resume_accounts_for_every_trial_once(tmp_path, corpus):
    proc = _start(tmp_path, corpus, "killed", MANY)
    ray_dir = tmp_path / "results" / "killed" / "ray"
    assert _wait_for(lambda: _finished_trials(ray_dir) >= 2, 180), proc.communicate()[1][-2000:]
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started, as in a crash
    proc.wait()
    before = _results_per_trial(ray_dir)
    assert _finished_trials(ray_dir) < MANY
    resumed = _resume(tmp_path, "killed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = trials(tmp_path / "results" / "killed")
    assert len(rows) == MANY and len({r["trial_id"] for r in rows}) == MANY
    unfinished = [(r["trial_id"], r["status"], r["epochs"], r["error"]) for r in rows]
    assert all(r["status"] == "completed" and r["epochs"] == "2" for r in rows), unfinished
    after = _results_per_trial(ray_dir)
    assert len(after) == MANY
    for trial_id, lines in before.items():
        if lines == 2:  # finished before the kill: not run again
            assert after[trial_id] == 2, trial_id


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path, corpus):
    proc = _start(tmp_path, corpus, "interrupted", MANY)
    ray_dir = tmp_path / "results" / "interrupted" / "ray"
    assert _wait_for(lambda: _finished_trials(ray_dir) >= 1, 180)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "--name interrupted --resume" in out
    resumed = _resume(tmp_path, "interrupted")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = trials(tmp_path / "results" / "interrupted")
    assert len(rows) == MANY and all(r["status"] == "completed" for r in rows)
