"""Move a model's decision threshold to a user's own recordings: one bias on the second label's
logit, fitted on labelled clips of theirs.

Across corpora the built-in model ranks voices nearly as well as within them, but at a shifted
threshold (docs/real-voices-two-corpora.md, round 32): a few labelled speakers of a new corpus
say where its threshold lies. The bias joins the model's spec, so ``vgd predict``, ``vgd
segment`` and ``vgd evaluate`` all answer with it through the one inference path.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vgd.calibration import pooled_probs, window_logits
from vgd.checkpoint import LoadedModel
from vgd.evaluate import compute_metrics
from vgd.inference import Reader
from vgd.manifest import Clip
from vgd.splits import speaker_key

log = logging.getLogger(__name__)

PRIOR_SD = 2.0  # the bias's prior, N(0, 2²) in log-odds: a few clips cannot move it far
MIN_SPEAKERS = 3  # per label: fewer cannot say where a corpus's threshold lies
ADVISED_SPEAKERS = 10  # per label: what round 32 measured (docs/real-voices-two-corpora.md)
BIASES = np.round(np.linspace(-10.0, 10.0, 2001), 2)  # the grid searched, 0.01 apart
CHUNK = 4_000_000  # probabilities held at once while searching it (32 MB)


class AdaptError(ValueError):
    """Clips that cannot fit a bias: a model without two labels, too few speakers of a label."""


@dataclass(frozen=True)
class Adaptation:
    """What ``adapt`` fitted, and on what: the balanced accuracies are on the fitting clips."""

    bias: float  # added to the second label's logit after the temperature
    clips: int  # clips scored (unreadable ones are left out and logged)
    speakers: dict[str, int]  # per label
    balanced_accuracy_before: float
    balanced_accuracy_after: float
    prior_sd: float = PRIOR_SD


def fit_bias(
    logits: Sequence[np.ndarray],
    targets: np.ndarray,
    temperature: float = 1.0,
    prior_sd: float = PRIOR_SD,
) -> float:
    """The bias on the second label's window logits (after the temperature) that minimises the
    clips' summed negative log-likelihood, windows pooled by their mean probability as ``vgd
    predict`` pools them, plus ``b² / (2 prior_sd²)``."""
    counts = np.array([len(z) for z in logits])
    z = np.concatenate([np.asarray(x, dtype=np.float64) for x in logits]) / temperature
    margin = z[:, 1] - z[:, 0]  # the second label's log-odds per window
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # the grid in slices, so memory stays near CHUNK floats however many windows there are
    step = max(1, CHUNK // margin.size)
    slices = [BIASES[i : i + step] for i in range(0, BIASES.size, step)]
    nll = np.concatenate([_nll(margin, starts, counts, targets, b) for b in slices])
    return float(BIASES[int(np.argmin(nll + BIASES**2 / (2 * prior_sd**2)))])


def _nll(
    margin: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    targets: np.ndarray,
    biases: np.ndarray,
) -> np.ndarray:
    """The clips' summed negative log-likelihood at each of ``biases``."""
    p = 1.0 / (1.0 + np.exp(-(margin[None, :] + biases[:, None])))  # (biases, windows)
    second = np.add.reduceat(p, starts, axis=1) / counts  # (biases, clips)
    truth = np.where(targets == 1, second, 1.0 - second)
    return -np.log(np.clip(truth, 1e-12, 1.0)).sum(axis=1)


def adapt(
    loaded: LoadedModel,
    clips: Sequence[Clip],
    reader: Reader | None = None,
    prior_sd: float = PRIOR_SD,
) -> Adaptation:
    """Fit the bias on ``clips`` (labelled recordings of the user's own) and set it on
    ``loaded``'s model and spec (and the record in its metrics, which a saved checkpoint
    keeps); a bias fitted before is replaced, not added to."""
    labels = loaded.spec.labels
    if len(labels) != 2:
        raise AdaptError(f"adapt needs a model with two labels, not {len(labels)}")
    speakers = {label: len({speaker_key(c) for c in clips if c.label == label}) for label in labels}
    few = {k: n for k, n in speakers.items() if n < MIN_SPEAKERS}
    if few:
        counts = ", ".join(f"{k} {n}" for k, n in few.items())
        raise AdaptError(f"needs {MIN_SPEAKERS}+ speakers of each label ({counts})")
    if min(speakers.values()) < ADVISED_SPEAKERS:
        log.warning(
            "%d speakers of a label: the bias is uncertain under %d of each",
            min(speakers.values()),
            ADVISED_SPEAKERS,
        )
    logits, targets = window_logits(loaded.model, loaded.spec, clips, reader)
    if set(targets.tolist()) != {0, 1}:
        raise AdaptError(f"{len(logits)} of {len(clips)} clips readable: none of some label")
    if len(logits) < len(clips):
        log.warning(
            "%d of %d clips unreadable: fitted on the rest", len(clips) - len(logits), len(clips)
        )
    temperature = loaded.spec.temperature
    bias = fit_bias(logits, targets, temperature, prior_sd)
    scored = [
        compute_metrics(targets, _pooled(logits, temperature, b), labels)["balanced_accuracy"]
        for b in (0.0, bias)
    ]
    fitted = Adaptation(bias, len(logits), speakers, *scored, prior_sd)
    loaded.model.bias = (0.0, bias)
    loaded.spec = dataclasses.replace(loaded.spec, bias=(0.0, bias))
    loaded.metrics = {**loaded.metrics, "adapted": dataclasses.asdict(fitted)}
    return fitted


def _pooled(logits: Sequence[np.ndarray], temperature: float, bias: float) -> np.ndarray:
    """Each clip's mean window probabilities at ``temperature`` with ``bias`` on label 2."""
    return pooled_probs([np.asarray(z) / temperature + [0.0, bias] for z in logits], 1.0)
