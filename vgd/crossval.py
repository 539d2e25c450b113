"""K-fold cross-validation by speaker: K training sessions stepped together, one score an epoch.

On a small real corpus one validation split of ~40 speakers moves 2-3 points per speaker, so a
search that ranks configurations on it ranks noise. Here every speaker of the training pool
(the manifest's train and val splits; test stays untouched) validates exactly once: fold k's
speakers validate the model trained on the other K-1 folds. The K sessions advance in step, epoch
by epoch, and each epoch reports the mean validation balanced accuracy over the folds with its
spread, so a scheduler (ASHA) stops a trial on the mean. Early stopping, too, watches the mean.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vgd.config import ConfigError, RunConfig, TrainConfig, apply_overrides, to_dict
from vgd.inference import Reader
from vgd.io import atomic_write_json
from vgd.manifest import Clip, ManifestError
from vgd.probe import Embeddings
from vgd.splits import (
    check_speaker_disjoint,
    hold_out_speakers,
    select,
    speaker_folds,
    speaker_key,
)
from vgd.train import (
    Callback,
    Session,
    Trainer,
    best_so_far,
    last_epoch,
    load_clips,
    recent_means,
    selection_score,
    validated,
)

log = logging.getLogger(__name__)

CV_STATE = "cv.json"
# reported with _std and _min/_max over folds, as is each corpus's balanced accuracy
SPREAD = ("val_balanced_accuracy", "val_macro_balanced_accuracy", "val_loss")


def _spread(key: str) -> bool:
    return key in SPREAD or key.startswith("val_balanced_accuracy@")


def fold_clips(pool: Sequence[Clip], folds: Sequence[int], k: int) -> list[Clip]:
    """Fold ``k``'s training view of the pool: fold k's speakers are ``val``, the rest ``train``."""
    return [c.with_split("val" if f == k else "train") for c, f in zip(pool, folds)]


def test_fold_clips(clips: Sequence[Clip], folds: Sequence[int], k: int, seed: int) -> list[Clip]:
    """Fold ``k`` of an outer CV: test = fold k, val = fold k+1 (mod K), train = the rest.

    With K = 2 the other fold is all there is: half of its speakers validate, half train.
    """
    n_folds = max(folds) + 1
    if n_folds >= 3:
        val = {speaker_key(c) for c, f in zip(clips, folds) if f == (k + 1) % n_folds}
    else:
        rest = [c for c, f in zip(clips, folds) if f != k]
        val = {speaker_key(c) for c, f in zip(rest, speaker_folds(rest, 2, seed + 1)) if f == 0}

    def split(clip: Clip, fold: int) -> str:
        return "test" if fold == k else "val" if speaker_key(clip) in val else "train"

    out = [c.with_split(split(c, f)) for c, f in zip(clips, folds)]
    check_speaker_disjoint(out)
    return out


def leave_corpus_out(clips: Sequence[Clip], corpus: str, val_fraction: float, seed: int):
    """Train on every other corpus, test on all of ``corpus``: test = its clips, val = a seeded
    ``val_fraction`` of the other corpora's speakers (per corpus × label), train = the rest."""
    rest = [c for c in clips if c.corpus != corpus]
    if not rest or len(rest) == len(clips):
        raise ManifestError(f"leave {corpus!r} out: needs it and at least one other corpus")
    val = hold_out_speakers(rest, val_fraction, seed)

    def split(clip: Clip) -> str:
        return "test" if clip.corpus == corpus else "val" if speaker_key(clip) in val else "train"

    return [c.with_split(split(c)) for c in clips]


def training_pool(config: TrainConfig, manifest: str, clips: Sequence[Clip] | None = None):
    """The clips cross-validation may use: the training and validation splits, never test."""
    d = config.data
    splits = [*d.train_splits, *([d.val_split] if d.val_split else [])]
    pool = select(load_clips(config, manifest, clips), splits)
    if not pool:
        raise ManifestError(f"{manifest}: no clips in splits {splits} to cross-validate")
    return pool


def fold_config(config: TrainConfig) -> TrainConfig:
    """A fold's recipe: trains on ``train``, validates on ``val``; the mean decides stopping."""
    return apply_overrides(
        config,
        {"data.train_splits": ["train"], "data.val_split": "val", "optim.patience": 0},
    )


@dataclass
class CVResult:
    """Per-epoch fold means and the epoch at which the mean peaked."""

    folds: int
    history: list[dict[str, Any]]
    best_epoch: int
    best: dict[str, Any]
    stopped_early: bool
    seconds: float


@dataclass
class _CVState:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = -math.inf
    bad_epochs: int = 0
    stopped: bool = False

    def record(self, metrics: dict[str, Any], patience: int) -> None:
        """Append an epoch; the best mean (macro over corpora) balanced accuracy wins (mean loss
        breaks ties); an epoch left unvalidated (RunConfig.validate_every) is not a candidate."""
        self.history.append(metrics)
        if not validated(metrics):
            return
        score = selection_score(metrics)
        if score > self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = score, metrics["epoch"], 0
        else:
            self.bad_epochs += 1
            self.stopped = patience > 0 and self.bad_epochs >= patience


def fold_summary(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, dict]:
    """Mean, sample std (ddof 1), min and max over outer folds of each of ``keys``."""
    out = {}
    for key in keys:
        v = [float(r[key]) for r in rows]
        out[key] = {
            "mean": statistics.fmean(v),
            "std": statistics.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v),
            "max": max(v),
        }
    return out


def aggregate(epoch: int, per_fold: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One epoch's fold metrics → their means, with spread for the validation score and loss."""
    out: dict[str, Any] = {"epoch": epoch, "folds": len(per_fold)}
    keys = [k for k, v in per_fold[0].items() if isinstance(v, float) and k != "epoch"]
    for key in keys:
        values = [float(m[key]) for m in per_fold if key in m]
        out[key] = statistics.fmean(values)
        if _spread(key):
            out[f"{key}_std"] = statistics.pstdev(values)
            out[f"{key}_min"] = min(values)
            out[f"{key}_max"] = max(values)
    out["epoch_seconds"] = sum(m.get("epoch_seconds", 0.0) for m in per_fold)
    out["fold_epochs"] = epoch * len(per_fold)
    return out


class CrossValidation:
    """K trainers over speaker folds of one pool per fold seed, stepped together (resumable with
    a state_dir). Several seeds give several K-fold partitions of the same speakers: their mean
    moves less with which speakers happen to share a fold."""

    def __init__(
        self,
        config: TrainConfig,
        run: RunConfig = RunConfig(),
        folds: int = 5,
        clips: Sequence[Clip] | None = None,
        state_dir: str | Path | None = None,
        seed: int | Sequence[int] | None = None,
        reader: Reader | None = None,
    ):
        if folds < 2:
            raise ConfigError(f"cv: needs at least 2 folds, not {folds}")
        self.config, self.k = config, folds
        self.seeds = fold_seeds(seed, config.split.seed)
        self.state_dir = Path(state_dir) if state_dir else None
        self.callbacks: list[Callback] = []
        pool = training_pool(config, run.manifest, clips)
        recipe = fold_config(config)
        embeddings: Embeddings = {}  # each clip's, embedded once for all folds (vgd.probe)
        self.trainers = [
            Trainer(
                recipe,
                run,
                fold_clips(pool, fold_of, k),
                state_dir=self._fold_dir(s, k),
                progress=False,
                reader=reader,
                embeddings=embeddings,
            )
            for s in self.seeds
            for fold_of in [speaker_folds(pool, folds, s)]
            for k in range(folds)
        ]

    def _fold_dir(self, seed: int, k: int) -> Path | None:
        if self.state_dir is None:
            return None
        return self.state_dir / (f"fold{k}" if len(self.seeds) == 1 else f"seed{seed}/fold{k}")

    def add_callback(self, callback: Callback) -> None:
        """Call ``callback(metrics)`` with the fold means after every epoch."""
        self.callbacks.append(callback)

    def fit(self) -> CVResult:
        """Step the K sessions to the end of the schedule or until the mean stops improving."""
        state = self._resume()
        sessions = [t.start() for t in self.trainers]
        start = time.perf_counter() - (state.history[-1]["seconds"] if state.history else 0.0)
        epochs = self.config.optim.epochs
        while len(state.history) < epochs and not state.stopped:
            epoch = len(state.history) + 1
            metrics = aggregate(epoch, [_at_epoch(s, epoch) for s in sessions])
            state.record(metrics, self.config.optim.patience)
            metrics.update(best_so_far(state.history[state.best_epoch - 1]))
            metrics.update(recent_means(state.history))
            metrics.update(last_epoch(state.history))
            metrics.update(
                best_epoch=state.best_epoch,
                early_stopped=state.stopped,
                seconds=time.perf_counter() - start,
            )
            self._save(state)
            _log_epoch(metrics, epochs, len(self.trainers))
            for callback in self.callbacks:
                callback(metrics)
        best = state.history[state.best_epoch - 1] if state.best_epoch else {}
        seconds = state.history[-1]["seconds"] if state.history else 0.0
        folds = len(self.trainers)
        return CVResult(folds, state.history, state.best_epoch, best, state.stopped, seconds)

    def _save(self, state: _CVState) -> None:
        if self.state_dir is None:
            return
        atomic_write_json(
            self.state_dir / CV_STATE,
            {
                "config": to_dict(self.config),
                "folds": self.k,
                "seeds": list(self.seeds),
                "history": state.history,
            },
        )

    def _resume(self) -> _CVState:
        """The fold means recorded so far (the sessions resume from their own state files)."""
        state = _CVState()
        path = self.state_dir / CV_STATE if self.state_dir else None
        if path is None or not path.exists():
            return state
        saved = json.loads(path.read_text())
        seeds = saved.get("seeds", [self.config.split.seed])  # before seeds were saved: one
        if (saved.get("config"), saved.get("folds"), seeds) != (
            to_dict(self.config),
            self.k,
            list(self.seeds),
        ):
            raise ConfigError(
                f"{path}: saved state is from a different config, fold count or fold seeds"
            )
        for metrics in saved["history"]:
            state.record(metrics, self.config.optim.patience)
        return state


def _log_epoch(metrics: dict[str, Any], epochs: int, folds: int) -> None:
    if not validated(metrics):
        log.info("epoch %d/%d: not validated (validate_every)", metrics["epoch"], epochs)
        return
    log.info(
        "epoch %d/%d: val balanced accuracy %.4f ± %.4f over %d folds (min %.4f)",
        metrics["epoch"],
        epochs,
        metrics["val_balanced_accuracy"],
        metrics["val_balanced_accuracy_std"],
        folds,
        metrics["val_balanced_accuracy_min"],
    )


def fold_seeds(seed: int | Sequence[int] | None, default: int) -> tuple[int, ...]:
    """The fold seeds to partition by: one, several, or the config's split seed for None or ()."""
    if seed is None:
        return (default,)
    seeds = (seed,) if isinstance(seed, int) else tuple(seed)
    if not seeds:
        return (default,)
    if len(set(seeds)) < len(seeds):
        raise ConfigError(f"cv: fold seeds repeat ({', '.join(map(str, seeds))})")
    return seeds


def _at_epoch(session: Session, epoch: int) -> dict[str, Any]:
    """The session's metrics of ``epoch``, training it that far (a resumed fold may be ahead)."""
    while session.state.epoch < epoch:
        session.step()
    return session.state.history[epoch - 1]


def without_validation(config: TrainConfig, epochs: int) -> TrainConfig:
    """The recipe trained on the ``train`` split alone for exactly ``epochs``: no validation
    to stop it, since the epochs were chosen on validation speakers that now train."""
    return apply_overrides(
        config,
        {
            "data.train_splits": ["train"],
            "data.val_split": "",
            "optim.epochs": epochs,
            "optim.patience": 0,
        },
    )


def cross_validate(
    config: TrainConfig,
    run: RunConfig = RunConfig(),
    folds: int = 5,
    clips: Sequence[Clip] | None = None,
    callbacks: Iterable[Callback] = (),
    state_dir: str | Path | None = None,
    seed: int | Sequence[int] | None = None,
    reader: Reader | None = None,
) -> CVResult:
    """Cross-validate ``config`` over ``folds`` speaker folds per fold seed (``seed``: one or
    several; None: ``config.split.seed``); ``reader`` reads the clips' audio, not their files."""
    cv = CrossValidation(config, run, folds, clips, state_dir, seed, reader)
    for cb in callbacks:
        cv.add_callback(cb)
    return cv.fit()
