"""The pitch-only baseline: a clip's median F0 against one threshold tuned on the training split.

It is what a CNN has to beat: voices overlap in pitch, so F0 alone misclassifies low female and
high male voices. F0 comes from YIN (de Cheveigne & Kawahara 2002) computed on all frames at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vgd.audio import AudioError, load_audio
from vgd.config import LABELS, AudioConfig
from vgd.dataset import IGNORE
from vgd.evaluate import compute_metrics
from vgd.manifest import Clip
from vgd.progress import Progress
from vgd.splits import select, speaker_key

log = logging.getLogger(__name__)

FEMALE, MALE = LABELS  # a voice above the threshold is female


def frame_f0(
    wave: np.ndarray,
    sample_rate: int,
    fmin: float = 60.0,
    fmax: float = 400.0,
    hop_s: float = 0.01,
    threshold: float = 0.15,
) -> np.ndarray:
    """F0 in Hz per ``hop_s`` frame, NaN where a frame is unvoiced or too quiet.

    YIN: the cumulative-mean-normalised difference function d'(tau) of each frame; the first dip
    below ``threshold`` (followed down to its local minimum, refined by a parabola) is the period.
    """
    x = np.asarray(wave, dtype=np.float64)
    tau_min, tau_max = max(2, int(sample_rate / fmax)), int(math.ceil(sample_rate / fmin))
    win = max(tau_max, int(0.025 * sample_rate))
    size, hop = win + tau_max + 1, max(1, int(hop_s * sample_rate))
    if x.size < size:
        return np.full(0, np.nan)
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[::hop]  # (T, size)
    frames = frames - frames.mean(axis=1, keepdims=True)
    d = _difference(frames, win, tau_max)  # (T, tau_max + 1)
    cmnd = _cumulative_mean_normalised(d)
    tau = _first_dip(cmnd, tau_min, threshold)
    energy = np.sum(frames[:, :win] ** 2, axis=1)
    loud = energy > max(
        1e-3 * np.percentile(energy, 90), 1e-12 * win
    )  # within 30 dB of loud frames
    voiced = np.isfinite(tau) & loud
    return np.where(voiced, sample_rate / np.where(voiced, tau, 1.0), np.nan)


def _difference(frames: np.ndarray, win: int, tau_max: int) -> np.ndarray:
    """d(tau) = sum_j (x_j - x_{j+tau})^2 over the first ``win`` samples, by FFT correlation."""
    n_fft = 1 << math.ceil(math.log2(frames.shape[1]))
    head = np.fft.rfft(frames[:, :win], n_fft, axis=1)
    full = np.fft.rfft(frames, n_fft, axis=1)
    corr = np.fft.irfft(np.conj(head) * full, n_fft, axis=1)[:, : tau_max + 1]
    sq = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(tau_max + 1)
    energy_lag = sq[:, lags + win] - sq[:, lags]  # energy of x[tau : tau + win]
    d = sq[:, win : win + 1] + energy_lag - 2 * corr
    return np.maximum(d, 0.0)


def _cumulative_mean_normalised(d: np.ndarray) -> np.ndarray:
    """d'(tau) = d(tau) * tau / sum_{k<=tau} d(k); d'(0) = 1."""
    running = np.cumsum(d[:, 1:], axis=1)
    lags = np.arange(1, d.shape[1])
    out = np.ones_like(d)
    ok = running > 0
    out[:, 1:][ok] = (d[:, 1:] * lags)[ok] / running[ok]
    return out


def _first_dip(cmnd: np.ndarray, tau_min: int, threshold: float) -> np.ndarray:
    """Per frame, the sub-sample lag of the first local minimum below ``threshold`` (NaN: none)."""
    rows = np.arange(cmnd.shape[0])
    lags = np.arange(cmnd.shape[1])
    below = (cmnd < threshold) & (lags >= tau_min)
    found = below.any(axis=1)
    first = np.argmax(below, axis=1)
    rising = np.zeros_like(below)
    rising[:, :-1] = cmnd[:, 1:] >= cmnd[:, :-1]
    rising[:, -1] = True
    tau = np.argmax(rising & (lags >= first[:, None]), axis=1)
    # Parabolic interpolation through (tau-1, tau, tau+1).
    lo, hi = np.maximum(tau - 1, 0), np.minimum(tau + 1, cmnd.shape[1] - 1)
    a, b, c = cmnd[rows, lo], cmnd[rows, tau], cmnd[rows, hi]
    denom = a - 2 * b + c
    inside = (denom > 0) & (lo < tau) & (tau < hi)
    shift = np.divide(0.5 * (a - c), denom, out=np.zeros_like(denom), where=inside)
    return np.where(found, tau + np.clip(shift, -0.5, 0.5), np.nan)


def median_f0(wave: np.ndarray, sample_rate: int, fmin: float = 60.0, fmax: float = 400.0) -> float:
    """Median F0 (Hz) over the voiced frames of ``wave``; NaN when none is voiced."""
    f0 = frame_f0(wave, sample_rate, fmin, fmax)
    f0 = f0[np.isfinite(f0)]
    return float(np.median(f0)) if f0.size else math.nan


@dataclass(frozen=True)
class PitchBaseline:
    """Female above ``threshold_hz``, male at or below it."""

    threshold_hz: float

    def female_probability(self, f0s: Sequence[float] | np.ndarray) -> np.ndarray:
        """A score in (0, 1), 0.5 at the threshold, logistic in semitones (NaN stays NaN)."""
        semitones = 12 * np.log2(np.asarray(f0s, dtype=np.float64) / self.threshold_hz)
        return 1 / (1 + np.exp(-semitones / 2))

    def predict(self, f0s: Sequence[float] | np.ndarray) -> list[str | None]:
        """A label per F0; None where the F0 is NaN (no voiced frame)."""
        return [
            None if not math.isfinite(f) else FEMALE if f > self.threshold_hz else MALE
            for f in np.asarray(f0s, dtype=np.float64)
        ]


def fit_threshold(f0s: Sequence[float] | np.ndarray, labels: Sequence[str]) -> PitchBaseline:
    """The threshold (midway between neighbouring F0s) with the best balanced accuracy.

    NaN F0s are ignored. Raises ValueError unless both labels have at least one finite F0.
    """
    f0 = np.asarray(f0s, dtype=np.float64)
    labels = np.asarray(labels)
    unknown = sorted(set(labels.tolist()) - {FEMALE, MALE})
    if unknown or f0.shape != labels.shape:
        raise ValueError(
            f"need one {FEMALE!r}/{MALE!r} label per F0, got {unknown or labels.shape}"
        )
    ok = np.isfinite(f0)
    f0, female = f0[ok], labels[ok] == FEMALE
    n_female, n_male = int(female.sum()), int((~female).sum())
    if not n_female or not n_male:
        raise ValueError(f"need voiced clips of both labels, got {n_female} female, {n_male} male")
    order = np.argsort(f0, kind="stable")
    f0, female = f0[order], female[order]
    # Threshold after position i (between f0[i] and f0[i+1]): males at or below, females above.
    male_below = np.cumsum(~female)
    female_above = n_female - np.cumsum(female)
    balanced = 0.5 * (male_below / n_male + female_above / n_female)
    distinct = np.append(f0[1:] > f0[:-1], True)  # only cut between different values
    balanced = np.where(distinct, balanced, -1.0)
    best = int(np.argmax(balanced))
    upper = f0[best + 1] if best + 1 < f0.size else f0[best] + 1.0
    return PitchBaseline(float((f0[best] + upper) / 2))


def clip_f0s(
    clips: Sequence[Clip], audio: AudioConfig, progress: bool = False
) -> tuple[np.ndarray, int]:
    """Median F0 per clip (NaN when unreadable or unvoiced) and how many were unreadable."""
    out = np.full(len(clips), np.nan)
    unreadable = 0
    bar = Progress(len(clips), "pitch", unit="clips", enabled=progress)
    for i, clip in enumerate(clips):
        try:
            out[i] = median_f0(load_audio(clip.path, audio), audio.sample_rate)
        except AudioError as e:
            log.warning("skipping unreadable clip: %s", e)
            unreadable += 1
        bar.update()
    bar.close()
    return out, unreadable


def evaluate_pitch_baseline(
    clips: Sequence[Clip],
    audio: AudioConfig,
    train_splits: Sequence[str] = ("train", "val"),
    test_split: str = "test",
    progress: bool = False,
) -> dict[str, Any]:
    """Fit the threshold on ``train_splits``, score ``test_split``: compute_metrics + threshold_hz.

    Clips without a usable F0 (unreadable or unvoiced) are left out of fitting and scoring and
    counted in ``n_unreadable`` / ``n_unvoiced``.
    """
    train, test = select(clips, train_splits), select(clips, [test_split])
    if not train or not test:
        raise ValueError(
            f"need clips in splits {list(train_splits)} and {test_split!r}, "
            f"got {len(train)} and {len(test)}"
        )
    train_f0, _ = clip_f0s(train, audio, progress)
    baseline = fit_threshold(train_f0, [c.label for c in train])
    test_f0, unreadable = clip_f0s(test, audio, progress)
    voiced = np.isfinite(test_f0)
    targets = np.array([LABELS.index(c.label) if c.label in LABELS else IGNORE for c in test])
    targets = np.where(voiced, targets, IGNORE)
    p_female = baseline.female_probability(test_f0)
    probs = np.stack([p_female, 1 - p_female], axis=1)
    metrics = compute_metrics(targets, probs, LABELS, [speaker_key(c) for c in test])
    metrics.update(
        threshold_hz=baseline.threshold_hz,
        n_train_clips=int(np.isfinite(train_f0).sum()),
        n_unreadable=unreadable,
        n_unvoiced=int((~voiced).sum()) - unreadable,
    )
    return metrics
