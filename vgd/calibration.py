"""Calibration: a temperature fitted on validation so that a probability of 0.8 is right ~80% of
the time, and the expected calibration error that says how far from that a model is.

A network trained with cross-entropy is usually over-confident. Dividing its logits by one
temperature T (Guo et al., 2017) keeps every decision and fixes most of that. T is chosen to
minimise the negative log-likelihood of the *pooled* clip probabilities, the numbers ``predict``
reports, on the validation clips' windows, scored by :func:`vgd.inference.score` itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vgd.config import ModelSpec
from vgd.inference import Reader, score
from vgd.manifest import Clip

TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))  # a log grid, ~5% steps
ECE_BINS = 15


def window_logits(
    model, spec: ModelSpec, clips: Sequence[Clip], reader: Reader | None, batch_size: int = 256
) -> tuple[list[np.ndarray], np.ndarray]:
    """Uncalibrated logits of each usable clip's windows, and the clips' label indices.

    The windows and the model call are :func:`vgd.inference.score`'s (windows of consecutive
    clips share batches), with the temperature set to 1 and no bias while it runs; unusable
    clips are left out.
    """
    index = {label: i for i, label in enumerate(spec.labels)}
    saved = model.temperature, model.bias
    model.temperature, model.bias = 1.0, ()
    try:
        paths = [clip.path for clip in clips]
        scored = score(model, spec, paths, batch_size, reader=reader, keep_logits=True)
    finally:
        model.temperature, model.bias = saved
    kept = [(s.logits, index[c.label]) for c, s in zip(clips, scored) if s.logits is not None]
    return [z for z, _ in kept], np.array([t for _, t in kept], dtype=int)


def pooled_probs(logits: Sequence[np.ndarray], temperature: float) -> np.ndarray:
    """(n_clips, n_classes): each clip's window softmax at ``temperature``, averaged."""
    if len(logits) == 0:
        return np.zeros((0, 0))
    counts = np.array([len(z) for z in logits])
    z = np.concatenate(logits) / temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.add.reduceat(probs, starts, axis=0) / counts[:, None]


def nll(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-7, 1.0))))


def smoothed_nll(probs: np.ndarray, targets: np.ndarray) -> float:
    """Cross-entropy against Laplace-smoothed labels: 1 - 1/(n+2) on the true one, the rest shared.

    Plain NLL on a validation set that the model gets entirely right falls without end as the
    temperature shrinks, so a small set of easy speakers would fit T at the grid's floor and
    make every later answer look certain; after n right answers of n, Laplace's rule says the
    next one is right with probability (n+1)/(n+2), and that is what the fit aims for.
    """
    n, k = probs.shape
    eps = 1.0 / (n + 2)
    soft = np.full((n, k), eps / max(k - 1, 1))
    soft[np.arange(n), targets] = 1.0 - eps
    return float(-np.mean(np.sum(soft * np.log(np.clip(probs, 1e-7, 1.0)), axis=1)))


def fit_temperature(logits: Sequence[np.ndarray], targets: np.ndarray) -> float:
    """The temperature on a log grid with the lowest pooled, smoothed NLL (1.0 with no data)."""
    if len(logits) == 0:
        return 1.0
    losses = [smoothed_nll(pooled_probs(logits, t), targets) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def expected_calibration_error(
    probs: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS
) -> float:
    """|confidence - accuracy| averaged over equal-width confidence bins, weighted by count."""
    if len(targets) == 0:
        return float("nan")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(error)


def calibrate(
    model, spec: ModelSpec, clips: Sequence[Clip], reader: Reader | None
) -> dict[str, float]:
    """Fit the temperature on ``clips``, set it on ``model``; the ECE before and after."""
    logits, targets = window_logits(model, spec, clips, reader)
    temperature = fit_temperature(logits, targets)
    model.temperature = temperature
    return {
        "temperature": temperature,
        "val_ece_before": expected_calibration_error(pooled_probs(logits, 1.0), targets),
        "val_ece_after": expected_calibration_error(pooled_probs(logits, temperature), targets),
    }
