"""Prediction over files and folders, for recordings of any length.

Each file becomes windows through :mod:`vgd.inference` (hour-long files are streamed), windows are
batched across files, and a file's window probabilities are pooled. A file gets one of the words
of ``vgd segment``: a gender, ``unknown`` (speech, but no gender is likely enough) or
``nonspeech`` (silent, or too little speech for Silero VAD). A bad file gets an error row; the
rest go on.
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
from vgd.inference import Scored, score
from vgd.progress import Progress
from vgd.segment import NONSPEECH, SegmentConfig
from vgd.vad import SpeechCounter, VadConfig

log = logging.getLogger(__name__)


UNKNOWN = "unknown"  # speech, but no label is likely enough
MIN_CONFIDENCE = 0.7  # the default threshold of ``unknown``, on calibrated probabilities


@dataclass(frozen=True)
class PredictConfig:
    """How a file's pooled probabilities and its speech become its label."""

    # Under this (calibrated) probability of its best label, a speech file is ``unknown``.
    min_confidence: float = MIN_CONFIDENCE
    # With fewer seconds of speech than this, a file is ``nonspeech`` (the default is the
    # shortest clip vgd trains on). Its probabilities are still reported: they are the model's,
    # what ``evaluate`` would score; the VAD decides the label only.
    min_speech_s: float = 0.5
    # How Silero VAD finds speech: the same rules as ``vgd segment``. None: no speech check
    # (``--no-vad``); silent files are still ``nonspeech``.
    vad: VadConfig | None = SegmentConfig().vad

    def __post_init__(self) -> None:
        if self.min_confidence < 0:  # above 1: every speech file is unknown
            raise ValueError(f"min_confidence must be >= 0, got {self.min_confidence!r}")
        if self.min_speech_s < 0:
            raise ValueError(f"min_speech_s must be >= 0, got {self.min_speech_s!r}")


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
    speech_s: float | None = None  # seconds of speech found, counted up to min_speech_s
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
    config: PredictConfig = PredictConfig(),
) -> list[Prediction]:
    """Classify every audio file under ``paths`` with the model where it lives; errors included.

    Windows and pooling are :func:`vgd.inference.score`'s, the path evaluation takes;
    ``workers`` threads decode ahead of the model (0: by CPU count); the VAD runs beside the model.
    """
    files, missing = find_audio(paths)
    speech = SpeechCounter(config.vad, config.min_speech_s) if config.vad else None
    bar = Progress(len(files), "predicting", unit="files", enabled=progress)
    scored = score(
        loaded.model,
        loaded.spec,
        files,
        batch_size,
        on_done=bar.update,
        workers=workers,
        speech=speech,
    )
    bar.close()
    return missing + [_prediction(str(p), s, loaded.labels, config) for p, s in zip(files, scored)]


def _prediction(path: str, s: Scored, labels: Sequence[str], config: PredictConfig) -> Prediction:
    """A scored file's row: silent or too little speech → nonspeech, else :func:`decide`."""
    if s.silent:  # nothing above the silence floor: no speech, not a broken file
        return Prediction(path, NONSPEECH, duration_s=s.duration_s, speech_s=0.0)
    pred = Prediction(path, duration_s=s.duration_s, speech_s=s.speech_s, windows=s.windows)
    pred.error = s.error
    if s.probs is not None:
        pred.probs = {label: float(p) for label, p in zip(labels, s.probs)}
        little = s.speech_s is not None and s.speech_s < config.min_speech_s
        pred.label = NONSPEECH if little else decide(s.probs, labels, config.min_confidence)
    return pred


# ----------------------------------------------------------------------------- output


def _rows(preds: Sequence[Prediction], labels: Sequence[str]) -> list[dict]:
    rows = []
    for p in preds:
        row = {"path": p.path, "label": p.label or "", "duration_s": round(p.duration_s, 3)}
        row["speech_s"] = "" if p.speech_s is None else round(p.speech_s, 3)
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
    """Aligned columns: label, each class's probability, duration and speech seconds; errors in
    the last column."""
    width = max([len(p.path) for p in preds] + [4])
    head = f"{'path':<{width}}  {'label':<9}" + "".join(f" {'p_' + x:>9}" for x in labels)
    lines = [head + f" {'seconds':>8} {'speech':>7}  error"]
    for p in preds:
        probs = "".join(f" {p.probs[x]:>9.3f}" if p.probs else f" {'-':>9}" for x in labels)
        speech = "-" if p.speech_s is None else f"{p.speech_s:.2f}"
        lines.append(
            f"{p.path:<{width}}  {p.label or 'ERROR':<9}{probs} {p.duration_s:>8.2f} "
            f"{speech:>7}  {p.error or ''}"
        )
    return "\n".join(lines)


def format_predictions(preds: Sequence[Prediction], labels: Sequence[str], fmt: str) -> str:
    """Render predictions as ``table``, ``csv`` or ``json``."""
    if fmt == "csv":
        return to_csv(preds, labels)
    if fmt == "json":
        return to_json(preds)
    return to_table(preds, labels) + "\n"
