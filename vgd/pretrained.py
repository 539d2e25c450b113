"""The built-in real-voice model that ships inside the package, used when no model is promoted.

The DVC pipeline ``vgd/pretrained/dvc.yaml`` builds it from LibriSpeech and speechocean762: a
search on both, its pick against the default on fresh folds, the final fit of the recipe that
won (``recipe.yaml`` beside it). ``metrics.json`` holds its cross-validated, cross-corpus and
risk–coverage figures and ``MODEL_CARD.md`` (written by :func:`vgd.modelcard.builtin_model_card`)
what it is for and what it is not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_DIR = Path(__file__).resolve().parent / "pretrained"
NAME = "builtin:real-voices"
REBUILD = "dvc repro vgd/pretrained/dvc.yaml"


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
    m = builtin_metrics()
    cv = m.get("cv", {}).get("macro_balanced_accuracy")
    score = f", CV balanced accuracy {cv['mean']:.3f} ± {cv['std']:.3f}" if cv else ""
    corpora = " + ".join(m.get("corpora", {})) or "real speech"
    return f"{NAME} (read English speech of {corpora}, 2 labels{score})"
