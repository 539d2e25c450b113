"""A trial's outcome as the search records it: one row of trials.csv, and what the figures draw."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrialRow:
    """One trial's outcome, measured at the epoch whose weights it keeps."""

    trial_id: str
    status: str  # completed, stopped (by the scheduler), failed, running, pending
    params: dict[str, Any]
    value: float | None  # the space's metric at the best epoch
    metrics: dict[str, Any] = field(default_factory=dict)  # at the best epoch
    epochs: int = 0
    best_epoch: int = 0
    seconds: float = 0.0  # wall time Tune measured inside the trial
    train_seconds: float = 0.0  # of which inside vgd's training loop
    start: float = 0.0  # unix time
    end: float = 0.0
    curve: list[float] = field(default_factory=list)  # the metric per epoch
    node_id: str = ""
    device: str = ""  # cpu or cuda: where it trained
    gpu_ids: str = ""  # Ray's GPU ids for it, comma-separated
    cuda_visible_devices: str = ""  # as its process saw it
    error: str = ""
    checkpoint: str = ""
    failures: int = 0  # times it raised (it is retried up to the configured limit)
    order: int = 0  # creation order: 1 is the default configuration
