"""vgd: voice gender detection from speech with a log-mel CNN.

    import vgd
    model = vgd.load_model()                 # the promoted model, else the built-in one
    for p in model.predict(["clip.flac"]):   # files, folders, or audio in memory
        print(p.path, p.label, p.probs)

The names below are imported on first use, so ``import vgd.config`` (as a Ray worker does)
does not load the model code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vgd.version import __version__

if TYPE_CHECKING:
    from vgd.api import Model, ModelSource, load_model, resolve_model
    from vgd.audio import AudioError, Waveform
    from vgd.formats import FileSegments, Prediction, Segment
    from vgd.predict import PredictConfig
    from vgd.segment import SegmentConfig

_EXPORTS = {
    "load_model": "vgd.api",
    "resolve_model": "vgd.api",
    "Model": "vgd.api",
    "ModelSource": "vgd.api",
    "Prediction": "vgd.formats",
    "FileSegments": "vgd.formats",
    "Segment": "vgd.formats",
    "PredictConfig": "vgd.predict",
    "SegmentConfig": "vgd.segment",
    "Waveform": "vgd.audio",
    "AudioError": "vgd.audio",
}
__all__ = [
    "__version__",
    "load_model",
    "resolve_model",
    "Model",
    "ModelSource",
    "Prediction",
    "FileSegments",
    "Segment",
    "PredictConfig",
    "SegmentConfig",
    "Waveform",
    "AudioError",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vgd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
