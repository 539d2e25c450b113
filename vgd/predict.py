"""Prediction over files and folders, for recordings of any length.

Each file becomes windows through :mod:`vgd.inference` (hour-long files are streamed), windows are
batched across files, and a file's window probabilities are pooled. A file gets one of the words
of ``vgd segment``: a gender, ``unknown`` (speech, but no gender is likely enough) or
``nonspeech`` (silent, or too little speech for Silero VAD). A bad file gets an error row; the
rest go on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from vgd.audio import Waveform, find_audio, source_name
from vgd.checkpoint import LoadedModel
from vgd.formats import NONSPEECH, UNKNOWN, Prediction
from vgd.inference import Scored, score
from vgd.progress import Progress
from vgd.segment import SegmentConfig
from vgd.vad import SpeechCounter, VadConfig

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


def predict_paths(
    loaded: LoadedModel,
    paths: Iterable[str | os.PathLike | Waveform],
    batch_size: int = 64,
    progress: bool = True,
    workers: int = 0,
    config: PredictConfig = PredictConfig(),
) -> list[Prediction]:
    """Classify every audio file under ``paths`` (and audio in memory) with the model where it
    lives; errors included.

    Windows and pooling are :func:`vgd.inference.score`'s, the path evaluation takes;
    ``workers`` threads decode ahead of the model (0: by CPU count); the VAD runs beside the model.
    Missing paths come first, then the recordings in the order found.
    """
    sources, missing = find_audio(paths)
    speech = SpeechCounter(config.vad, config.min_speech_s) if config.vad else None
    bar = Progress(len(sources), "predicting", unit="files", enabled=progress)
    scored = score(
        loaded.model,
        loaded.spec,
        sources,
        batch_size,
        on_done=bar.update,
        workers=workers,
        speech=speech,
    )
    bar.close()
    found = [_prediction(source_name(p), s, loaded.labels, config) for p, s in zip(sources, scored)]
    return [Prediction(e.path, error=e.reason) for e in missing] + found


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
