"""Self-describing checkpoints: weights + every config needed to rebuild the model + label order.

Saved atomically; loaded with ``torch.load(..., weights_only=True)`` so a checkpoint from anyone
can be opened without running code from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vgd import __version__
from vgd.config import ConfigError, TrainConfig, from_dict, to_dict
from vgd.io import atomic_path
from vgd.model import VoiceGenderNet, count_parameters

FORMAT = "vgd-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not a vgd checkpoint; the message names it."""


@dataclass
class LoadedModel:
    """A rebuilt model with what it needs to be used: its config, label order and metrics."""

    model: VoiceGenderNet
    config: TrainConfig
    labels: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    vgd_version: str = ""
    path: str = ""


def build_model(config: TrainConfig, n_classes: int) -> VoiceGenderNet:
    """The network a config describes (front end included)."""
    return VoiceGenderNet(config.features, config.model, config.audio.sample_rate, n_classes)


def torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_checkpoint(
    path: str | os.PathLike,
    model: VoiceGenderNet,
    config: TrainConfig,
    labels: tuple[str, ...],
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a self-describing checkpoint atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return torch_save(
        {
            "format": FORMAT,
            "vgd_version": __version__,
            "config": to_dict(config),
            "labels": list(labels),
            "parameters": count_parameters(model),
            "metrics": metrics or {},
            "state_dict": state,
        },
        path,
    )


def torch_load(path: str | os.PathLike) -> dict[str, Any]:
    """Load a file saved by vgd without unpickling code (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for foreign or damaged files
        raise CheckpointError(f"{path}: not a loadable vgd checkpoint ({type(e).__name__})") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a vgd checkpoint (no dictionary inside)")
    return data


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model a checkpoint describes, in eval mode on ``device``."""
    data = torch_load(path)
    if data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a vgd checkpoint (format {data.get('format')!r})")
    try:
        config = from_dict(TrainConfig, data["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: config does not fit this vgd ({e})") from e
    labels = tuple(data["labels"])
    model = build_model(config, len(labels))
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the config ({e})") from e
    model.to(device).eval()
    return LoadedModel(
        model, config, labels, dict(data.get("metrics", {})), data.get("vgd_version", ""), str(path)
    )
