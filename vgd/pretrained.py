"""The built-in real-voice model that ships inside the package, used when no model is promoted.

It is trained by ``scripts/real_model.py`` on LibriSpeech speakers with the configuration the
search chose (``recipe.yaml`` beside it); ``metrics.json`` holds its cross-validated scores and
``MODEL_CARD.md`` (written by :func:`vgd.modelcard.builtin_model_card`) what it is for and what
it is not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_DIR = Path(__file__).resolve().parent / "pretrained"
NAME = "builtin:librispeech"
REBUILD = "python scripts/real_model.py --compare"


def builtin_model() -> Path | None:
    """The shipped checkpoint, or None in a checkout where it was never built."""
    path = MODEL_DIR / "model.pt"
    return path if path.is_file() else None


def builtin_metrics() -> dict[str, Any]:
    """The shipped model's metrics.json ({} if absent)."""
    path = MODEL_DIR / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def describe() -> str:
    """One line: what the built-in model is and how well it did."""
    cv = builtin_metrics().get("cv", {}).get("balanced_accuracy")
    score = f", CV balanced accuracy {cv['mean']:.3f} ± {cv['std']:.3f}" if cv else ""
    return f"{NAME} (LibriSpeech read English speech, 2 labels{score})"
