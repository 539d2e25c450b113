"""Self-describing checkpoints: weights + the model spec that rebuilds them + the training recipe.

A checkpoint holds the model, never the machine: the :class:`~vgd.config.ModelSpec` (front end,
network, labels, window/pool policy) and the :class:`~vgd.config.TrainConfig` recipe it was trained
with, but no device, thread count, cache folder or manifest path. Saved atomically; loaded with
``torch.load(..., weights_only=True)`` so a checkpoint from anyone can be opened without running
code from it. Format 1 (which stored the run settings inside the recipe) still loads.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vgd.config import ConfigError, ModelSpec, TrainConfig, from_dict, to_dict
from vgd.device import resolve_device
from vgd.io import atomic_path
from vgd.model import VoiceGenderNet, count_parameters
from vgd.version import __version__

FORMAT = "vgd-checkpoint/2"
FORMAT_V1 = "vgd-checkpoint/1"


ENCODER_KEYS = "encoder."  # state-dict keys that vgd ships rather than each checkpoint


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not a vgd checkpoint; the message names it."""


@dataclass
class LoadedModel:
    """A rebuilt model (in eval mode, on the device it was loaded to) with its spec and recipe."""

    model: VoiceGenderNet
    spec: ModelSpec
    recipe: TrainConfig
    metrics: dict[str, Any] = field(default_factory=dict)
    vgd_version: str = ""
    path: str = ""

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    @property
    def device(self) -> torch.device:
        """Where the model's weights live; inputs must be moved here."""
        return next(self.model.parameters()).device


def build_model(spec: ModelSpec) -> VoiceGenderNet:
    """The network a spec describes (front end and calibration included), on the CPU."""
    return VoiceGenderNet(
        spec.features,
        spec.model,
        spec.audio.sample_rate,
        len(spec.labels),
        spec.temperature,
        spec.bias,
    )


def torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file and a rename; the same object, the same bytes."""
    # Through a file object: given a path, torch names the archive's folder after the (random)
    # temporary file's name, so two saves of one model would differ.
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def save_checkpoint(
    path: str | os.PathLike,
    model: VoiceGenderNet,
    recipe: TrainConfig,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a self-describing checkpoint atomically (weights are stored on the CPU).

    The spec is the recipe's with the model's fitted calibration temperature (and the bias
    vgd adapt fitted, if any).
    """
    # in the default layout, whatever the training used: the file does not depend on it
    # The speaker encoder's frozen weights ship with vgd (vgd.encoder), not in each checkpoint.
    state = {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith(ENCODER_KEYS)
    }
    spec = dataclasses.replace(
        recipe.spec, temperature=float(model.temperature), bias=tuple(map(float, model.bias))
    )
    return torch_save(
        {
            "format": FORMAT,
            "vgd_version": __version__,
            "spec": _spec_dict(spec),
            "recipe": to_dict(recipe),
            "parameters": count_parameters(model),
            "metrics": metrics or {},
            "state_dict": state,
        },
        path,
    )


def _spec_dict(spec: ModelSpec) -> dict[str, Any]:
    """The spec as stored; without a bias (none was fitted) the key is left out, so a model
    that was never adapted is the same file as before the bias existed, and older vgd reads it."""
    data = to_dict(spec)
    if not spec.bias:
        del data["bias"]
    return data


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


def upgrade_v1_config(config: dict[str, Any]) -> dict[str, Any]:
    """A format-1 TrainConfig dict → today's recipe: run settings dropped, window moved out of data.

    Format 1 evaluated at most ``max_eval_windows`` windows per clip; that limit is kept.
    """
    config = copy.deepcopy(config)
    for key in ("device", "precision", "threads"):
        config.pop(key, None)
    data = config.setdefault("data", {})
    for key in ("manifest", "cache_dir", "num_workers"):
        data.pop(key, None)
    config["window"] = {
        "seconds": data.pop("crop_s", 3.0),
        "max_windows": data.pop("max_eval_windows", 8),
    }
    return config


def _spec_and_recipe(path: Path, data: dict[str, Any]) -> tuple[ModelSpec, TrainConfig]:
    fmt = data.get("format")
    if fmt == FORMAT_V1:
        raw = upgrade_v1_config(data["config"])
    elif fmt == FORMAT:
        raw = data["recipe"]
    else:
        raise CheckpointError(f"{path}: not a vgd checkpoint (format {fmt!r})")
    try:
        recipe = from_dict(TrainConfig, raw)
        spec = from_dict(ModelSpec, data["spec"]) if fmt == FORMAT else recipe.spec
        if dataclasses.replace(spec, temperature=1.0, bias=()) != recipe.spec:
            raise ConfigError("its model spec and its recipe disagree")
    except (ConfigError, KeyError) as e:
        raise CheckpointError(f"{path}: config does not fit this vgd ({e})") from e
    return spec, recipe


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model a checkpoint describes, in eval mode on ``device`` (``auto``: CUDA if any).

    Weights are stored on the CPU, so a model trained on CUDA loads on a CPU-only machine.
    """
    path = Path(path)
    data = torch_load(path)
    spec, recipe = _spec_and_recipe(path, data)
    model = build_model(spec)
    try:
        missing, unexpected = model.load_state_dict(data["state_dict"], strict=False)
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"{path}: weights do not fit the config ({e})") from e
    missing = [k for k in missing if not k.startswith(ENCODER_KEYS)]
    if missing or unexpected:
        names = ", ".join([*missing, *unexpected][:3])
        raise CheckpointError(f"{path}: weights do not fit the config (keys {names})")
    dev = resolve_device(device) if isinstance(device, str) else device
    model.to(dev).eval()
    return LoadedModel(
        model,
        spec,
        recipe,
        dict(data.get("metrics", {})),
        data.get("vgd_version", ""),
        str(path),
    )
