"""The Ray Tune trainable: a thin adapter from a trial's sampled values to ``vgd.train.train``.

The trial reads its audio from the corpus the driver packed and shipped through Ray's object
store (search/shipping.py) when there is one, else from the files at the manifest's paths.

Each epoch the training loop writes its full state to a trial-local folder; the reporting
callback hands that folder to Tune as the epoch's checkpoint. A trial that is restarted (after a
failure, a paused ASHA rung or a resumed search) copies the checkpoint back and the loop
continues from the epoch after it.

A trial trains where Ray placed it: on CUDA when Ray gave it a GPU (or a fraction of one) and
CUDA works in its process, else on the CPU, with as many torch threads as its CPU share.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from search.shipping import Shipped
from search.space import SearchSpace, trial_overrides
from vgd.config import RunConfig, TrainConfig, apply_overrides
from vgd.crossval import cross_validate
from vgd.device import resolve_precision
from vgd.train import train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """Where Ray put a trial and what it trains on; reported with every result."""

    device: str  # cpu or cuda
    gpu_ids: str  # Ray's GPU ids for the trial, comma-separated ('' : none)
    cuda_visible_devices: str  # as the trial's process saw it ('' : unset)
    threads: int
    precision: str  # what its arithmetic resolved to: fp32, fp16 or bf16

    def metrics(self) -> dict[str, str]:
        return {
            "device": self.device,
            "gpu_ids": self.gpu_ids,
            "cuda_visible_devices": self.cuda_visible_devices,
            "precision": self.precision,
        }


def placement(precision: str = "auto") -> Placement:
    """The trial's device and threads from the resources Ray assigned to it, and the arithmetic
    ``precision`` resolves to there.

    A trial given a GPU share trains on CUDA when its process can use it; when it cannot (a
    logical GPU from ``ray start --num-gpus`` on a CPU-only node, a broken driver) it trains on
    the CPU and says so. A trial given no GPU stays on the CPU even where CUDA is visible:
    Ray leaves CUDA_VISIBLE_DEVICES alone for it, so "auto" would crowd the GPUs other trials hold.
    """
    gpu_ids = [str(i) for i in ray.get_gpu_ids()]
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    device = "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"
    if gpu_ids and device == "cpu":
        log.warning(
            "trial was given GPU %s (CUDA_VISIBLE_DEVICES=%r) but CUDA is not usable here; "
            "training on the CPU",
            ",".join(gpu_ids),
            visible,
        )
    resolved = resolve_precision(precision, torch.device(device))
    return Placement(device, ",".join(gpu_ids), visible, max(1, int(cpus)), resolved)


class TuneReporter:
    """vgd epoch callback → ``tune.report`` with the epoch's state as the checkpoint.

    Every report also says where the trial ran and how long it took from the trial's start to
    its first training batch (``ready_s``: the first report's time less that epoch's seconds),
    of which ``audio_fetch_s`` went to fetching the shipped audio.
    """

    def __init__(self, state_dir: Path, where: Placement, started: float, fetch_s: float):
        self.state_dir, self.started = state_dir, started
        self.extra: dict[str, Any] = {
            "node_id": ray.get_runtime_context().get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),
            "pid": os.getpid(),  # a reused actor runs several trials in one process
            **where.metrics(),
            "audio_fetch_s": fetch_s,
        }

    def __call__(self, metrics: dict[str, Any]) -> None:
        if "ready_s" not in self.extra:
            elapsed = time.perf_counter() - self.started
            self.extra["ready_s"] = elapsed - float(metrics.get("epoch_seconds", 0.0))
        report = {k: _plain(v) for k, v in metrics.items() if _plain(v) is not None}
        report.update(self.extra)  # strings: TensorBoard leaves them out, result.json keeps them
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
        shutil.copytree(d, state_dir, dirs_exist_ok=True)


def run_trial(
    params: dict[str, Any],
    base: TrainConfig,
    space: SearchSpace,
    run: RunConfig,
    cv: int = 0,
    cv_seeds: tuple[int, ...] = (),
    audio: Shipped | None = None,
) -> None:
    """Train one configuration, reporting every epoch; Tune may stop it between epochs.

    With ``cv`` >= 2 the trial trains ``cv`` speaker folds per fold seed (``cv_seeds``; none:
    the config's split seed) in step and reports their mean. With ``audio`` it reads the clips
    from the shipped corpus, never from files.
    """
    started = time.perf_counter()
    config = apply_overrides(base, trial_overrides(space, params))
    where = placement(run.precision)
    run = replace(run, device=where.device, threads=where.threads)
    fetch = time.perf_counter()
    packed = audio.fetch() if audio else None
    fetch = time.perf_counter() - fetch
    clips = list(packed.clips) if packed else None
    reader = packed.read if packed else None
    state_dir = Path(tempfile.mkdtemp(prefix="vgd-trial-"))
    try:
        _restore(state_dir)
        reporter = TuneReporter(state_dir, where, started, fetch)
        if cv >= 2:
            seeds = cv_seeds or None
            cross_validate(
                config, run, cv, clips, [reporter], state_dir=state_dir, seed=seeds, reader=reader
            )
        else:
            train(config, run, clips, [reporter], state_dir, progress=False, reader=reader)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
