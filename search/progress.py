"""One readable progress line for a search, instead of Ray's full log flood."""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from vgd.progress import format_duration


def trial_outcome(trial_status: str, last: dict[str, Any], epochs: int) -> str:
    """running / pending / completed / stopped (by the scheduler) / failed."""
    if trial_status == Trial.ERROR:
        return "failed"
    if trial_status == Trial.TERMINATED:
        if last.get("epoch", 0) >= epochs or last.get("early_stopped"):
            return "completed"
        return "stopped" if last else "failed"
    return "running" if trial_status == Trial.RUNNING else "pending"


class SearchProgress(Callback):
    """Prints running / finished / stopped / failed trials, best, elapsed and ETA every few s.

    It also keeps the search's timeline as the driver saw it: per trial the seconds (since the
    search started) at which Ray started it, its first epoch began and it ended, and the most
    trials that ran at once.
    """

    def __init__(
        self,
        metric: str,
        mode: str,
        num_samples: int,
        default_epochs: int,
        time_budget_s: float | None = None,
        every_s: float = 10.0,
    ):
        self.metric = metric
        self.mode = mode
        self.num_samples = num_samples
        self.default_epochs = default_epochs
        self.time_budget_s = time_budget_s
        self.every_s = every_s
        self.start = time.monotonic()
        self.last_print = 0.0
        self.best: tuple[float, str] | None = None
        self.statuses: dict[str, str] = {}
        self.spans: dict[str, list[float]] = {}  # trial_id -> [started, training, ended]
        self.running: set[str] = set()
        self.peak_running = 0

    def setup(self, **info):
        # A resumed search unpickles this callback: time and trials count from here again.
        self.start, self.last_print = time.monotonic(), 0.0
        self.spans, self.running, self.peak_running = {}, set(), 0

    def _now(self) -> float:
        return time.monotonic() - self.start

    def on_trial_start(self, iteration: int, trials: list, trial: Trial, **info):
        now = self._now()
        self.spans.setdefault(trial.trial_id, [now, math.nan, now])
        self.running.add(trial.trial_id)
        self.peak_running = max(self.peak_running, len(self.running))

    def _ended(self, trial: Trial) -> None:
        self.running.discard(trial.trial_id)
        if trial.trial_id in self.spans:
            self.spans[trial.trial_id][2] = self._now()

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info):
        self._ended(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info):
        self._ended(trial)

    def on_trial_recover(self, iteration: int, trials: list, trial: Trial, **info):
        self.running.discard(trial.trial_id)

    def _epochs(self, trial: Trial) -> int:
        return int(trial.config.get("optim.epochs", self.default_epochs))

    def on_trial_result(self, iteration: int, trials: list, trial: Trial, result: dict, **info):
        span = self.spans.get(trial.trial_id)
        if span is not None:
            span[2] = self._now()
            if math.isnan(span[1]):  # when its first epoch began: the trial's set-up ends there
                span[1] = span[2] - float(result.get("epoch_seconds", 0.0))
        value = result.get(self.metric)
        if value is None:
            return
        better = self.best is None or (
            value > self.best[0] if self.mode == "max" else value < self.best[0]
        )
        if better:
            self.best = (float(value), trial.trial_id)

    def on_step_end(self, iteration: int, trials: list, **info):
        now = time.monotonic()
        if now - self.last_print >= self.every_s:
            self.last_print = now
            print(self.line(trials), file=sys.stderr, flush=True)

    def on_experiment_end(self, trials: list, **info):
        print(self.line(trials), file=sys.stderr, flush=True)

    def outcomes(self, trials: list) -> Counter:
        out = Counter()
        for t in trials:
            outcome = trial_outcome(t.status, t.last_result or {}, self._epochs(t))
            self.statuses[t.trial_id] = outcome
            out[outcome] += 1
        return out

    def line(self, trials: list) -> str:
        counts = self.outcomes(trials)
        elapsed = time.monotonic() - self.start
        best = f"best {self.metric} {self.best[0]:.4f} ({self.best[1]})" if self.best else "best -"
        return (
            f"[search {format_duration(elapsed)}] running {counts['running']}, "
            f"completed {counts['completed']}, stopped early {counts['stopped']}, "
            f"failed {counts['failed']}, pending {counts['pending']} of {self.num_samples} | "
            f"{best} | ETA {format_duration(self.eta(trials, elapsed))}"
        )

    def eta(self, trials: list, elapsed: float) -> float:
        """Remaining time from the fraction of the budget's epochs done so far."""
        done = 0.0
        for t in trials:
            if t.status in (Trial.TERMINATED, Trial.ERROR):
                done += 1
            else:
                done += (t.last_result or {}).get("epoch", 0) / max(self._epochs(t), 1)
        frac = done / max(self.num_samples, 1)
        left = elapsed * (1 - frac) / frac if frac > 0 else float("inf")
        if self.time_budget_s:
            left = min(left, max(self.time_budget_s - elapsed, 0))
        return left
