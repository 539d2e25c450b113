"""The Ray Tune trainable: a thin adapter from a trial's sampled values to ``vgd.train.train``.

Each epoch the training loop writes its full state to a trial-local folder; the reporting
callback hands that folder to Tune as the epoch's checkpoint. A trial that is restarted (after a
failure, a paused ASHA rung or a resumed search) copies the checkpoint back and the loop
continues from the epoch after it.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import ray
from ray import tune

from search.space import SearchSpace, trial_overrides
from vgd.config import RunConfig, TrainConfig, apply_overrides
from vgd.train import STATE_FILE, train


class TuneReporter:
    """vgd epoch callback → ``tune.report`` with the epoch's state as the checkpoint."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, metrics: dict[str, Any]) -> None:
        report = {k: _plain(v) for k, v in metrics.items() if _plain(v) is not None}
        report["node_id"] = self.node
        tune.report(report, checkpoint=tune.Checkpoint.from_directory(self.state_dir))


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _restore(state_dir: Path) -> None:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return
    with checkpoint.as_directory() as d:
        shutil.copy2(Path(d) / STATE_FILE, state_dir / STATE_FILE)


def run_trial(
    params: dict[str, Any], base: TrainConfig, space: SearchSpace, run: RunConfig
) -> None:
    """Train one configuration, reporting every epoch; Tune may stop it between epochs."""
    config = apply_overrides(base, trial_overrides(space, params))
    state_dir = Path(tempfile.mkdtemp(prefix="vgd-trial-"))
    try:
        _restore(state_dir)
        reporter = TuneReporter(state_dir)
        train(config, run, callbacks=[reporter], state_dir=state_dir, progress=False)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
