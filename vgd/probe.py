"""Fitting the speaker-encoder probe of a trained model on its training clips' windows.

The probe reads the windows `vgd predict` reads (vgd.inference.file_windows), un-augmented,
weighted as training samples them (every speaker the same, vgd.dataset.speaker_weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from vgd.audio import AudioError
from vgd.config import ModelSpec
from vgd.dataset import speaker_weights
from vgd.encoder import fit_probe
from vgd.inference import Reader, file_windows
from vgd.manifest import Clip
from vgd.model import VoiceGenderNet

BATCH = 64


Embeddings = dict[tuple[str, Any, Any], np.ndarray | None]


@torch.inference_mode()
def clip_embeddings(
    model: VoiceGenderNet,
    spec: ModelSpec,
    clips: Sequence[Clip],
    reader: Reader | None,
    cache: Embeddings | None = None,
) -> list[np.ndarray | None]:
    """Each clip's (windows, 256) embeddings; None for a clip that cannot be used. ``cache``
    keeps them across calls: the encoder is the shipped one in every model, so the folds of a
    cross-validation, whose training sets overlap, embed each clip once."""
    model.eval()
    cache = {} if cache is None else cache
    keys = [(clip.path, spec.audio, spec.window) for clip in clips]
    for clip, key in zip(clips, keys):
        if key not in cache:
            cache[key] = _embed(model, spec, clip, reader)
    return [cache[key] for key in keys]


def _embed(
    model: VoiceGenderNet, spec: ModelSpec, clip: Clip, reader: Reader | None
) -> np.ndarray | None:
    """One clip's window embeddings, in batches of the clip's own windows (so a clip's figures
    do not depend on which clips are embedded with it)."""
    try:
        _, windows = file_windows(clip.path, spec, reader)
        waves = np.stack(list(windows)).astype(np.float32)
    except AudioError:
        return None
    device = next(model.parameters()).device
    parts = [
        model.encoder(torch.from_numpy(waves[i : i + BATCH]).to(device)).cpu().numpy()
        for i in range(0, len(waves), BATCH)
    ]
    return np.concatenate(parts)


def fit_model_probe(
    model: VoiceGenderNet,
    spec: ModelSpec,
    clips: Sequence[Clip],
    reader: Reader | None,
    c: float,
    cache: Embeddings | None = None,
) -> dict[str, Any]:
    """Fit ``model``'s probe on ``clips`` (its training clips); what it was fitted on."""
    embedded = clip_embeddings(model, spec, clips, reader, cache)
    kept = [(clip, e) for clip, e in zip(clips, embedded) if e is not None]
    if len({clip.label for clip, _ in kept}) < 2:
        raise ValueError("the speaker-encoder probe needs usable clips of at least two labels")
    used = [clip for clip, _ in kept]
    targets = [spec.labels.index(clip.label) for clip in used]
    fit_probe(model.probe, [e for _, e in kept], targets, speaker_weights(used), c)
    return {"clips": len(used), "windows": int(sum(len(e) for _, e in kept)), "c": c}
