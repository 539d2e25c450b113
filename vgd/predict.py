"""Prediction over files and folders, for recordings of any length.

Each file becomes windows through :mod:`vgd.inference` (hour-long files are streamed), windows are
batched across files, and a file's window probabilities are pooled. A bad file gets an error row;
the rest go on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vgd.audio import is_audio_path
from vgd.checkpoint import LoadedModel
from vgd.inference import score
from vgd.progress import Progress

log = logging.getLogger(__name__)


UNKNOWN = "unknown"  # speech, but no label is likely enough
MIN_CONFIDENCE = 0.7  # the default threshold of ``unknown``, on calibrated probabilities


def decide(probs: np.ndarray, labels: Sequence[str], min_confidence: float) -> str:
    """The most probable label, or ``unknown`` when its probability is under the threshold."""
    best = int(np.argmax(probs))
    return labels[best] if probs[best] >= min_confidence else UNKNOWN


@dataclass
class Prediction:
    """One file's verdict, or its error."""

    path: str
    label: str | None = None
    probs: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    windows: int = 0
    error: str | None = None


def find_audio(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[Prediction]]:
    """Expand folders (recursively, audio extensions only, sorted); missing paths become errors."""
    files: list[Path] = []
    missing: list[Prediction] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and is_audio_path(f))
            if not found:
                missing.append(Prediction(str(p), error="folder holds no audio files"))
            files += found
        elif p.exists():
            files.append(p)
        else:
            missing.append(Prediction(str(p), error="missing (no such file or folder)"))
    return files, missing


def predict_paths(
    loaded: LoadedModel,
    paths: Iterable[str | os.PathLike],
    batch_size: int = 64,
    progress: bool = True,
    workers: int = 0,
    min_confidence: float = MIN_CONFIDENCE,
) -> list[Prediction]:
    """Classify every audio file under ``paths`` with the model where it lives; errors included.

    Windows and pooling are :func:`vgd.inference.score`'s, the path evaluation takes;
    ``workers`` threads decode ahead of the model (0: by CPU count). A file whose pooled
    (calibrated) probability of its best label is under ``min_confidence`` is ``unknown``.
    """
    files, missing = find_audio(paths)
    bar = Progress(len(files), "predicting", unit="files", enabled=progress)
    scored = score(
        loaded.model, loaded.spec, files, batch_size, on_done=bar.update, workers=workers
    )
    bar.close()
    results = []
    for path, s in zip(files, scored):
        pred = Prediction(str(path), duration_s=s.duration_s, windows=s.windows, error=s.error)
        if s.probs is not None:
            pred.probs = {label: float(p) for label, p in zip(loaded.labels, s.probs)}
            pred.label = decide(s.probs, loaded.labels, min_confidence)
        results.append(pred)
    return missing + results


# ----------------------------------------------------------------------------- output


def _rows(preds: Sequence[Prediction], labels: Sequence[str]) -> list[dict]:
    rows = []
    for p in preds:
        row = {"path": p.path, "label": p.label or "", "duration_s": round(p.duration_s, 3)}
        row.update({f"p_{x}": round(p.probs[x], 6) if p.probs else "" for x in labels})
        row.update({"windows": p.windows, "error": p.error or ""})
        rows.append(row)
    return rows


def to_csv(preds: Sequence[Prediction], labels: Sequence[str]) -> str:
    buf = io.StringIO()
    rows = _rows(preds, labels)
    writer = csv.DictWriter(
        buf, fieldnames=list(rows[0]) if rows else ["path"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_json(preds: Sequence[Prediction]) -> str:
    return json.dumps([asdict(p) for p in preds], indent=2) + "\n"


def to_table(preds: Sequence[Prediction], labels: Sequence[str]) -> str:
    """Aligned columns: label, each class's probability, duration; errors in the last column."""
    width = max([len(p.path) for p in preds] + [4])
    head = f"{'path':<{width}}  {'label':<8}" + "".join(f" {'p_' + x:>9}" for x in labels)
    lines = [head + f" {'seconds':>8}  error"]
    for p in preds:
        probs = "".join(f" {p.probs[x]:>9.3f}" if p.probs else f" {'-':>9}" for x in labels)
        label = p.label or "ERROR"
        lines.append(f"{p.path:<{width}}  {label:<8}{probs} {p.duration_s:>8.2f}  {p.error or ''}")
    return "\n".join(lines)


def format_predictions(preds: Sequence[Prediction], labels: Sequence[str], fmt: str) -> str:
    """Render predictions as ``table``, ``csv`` or ``json``."""
    if fmt == "csv":
        return to_csv(preds, labels)
    if fmt == "json":
        return to_json(preds)
    return to_table(preds, labels) + "\n"
