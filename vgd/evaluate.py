"""Evaluation: pooled clip probabilities → accuracy, balanced accuracy, P/R/F1, ROC-AUC, confusion,
speaker-level accuracy; written as a metrics JSON plus plots and plot data."""

from __future__ import annotations

import csv
import io
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn import metrics as skm

from vgd.cache import AudioCache
from vgd.calibration import expected_calibration_error
from vgd.checkpoint import LoadedModel
from vgd.config import ModelSpec
from vgd.dataset import IGNORE
from vgd.inference import Reader, score
from vgd.io import atomic_write_json, atomic_write_text
from vgd.manifest import Clip
from vgd.splits import speaker_key

log = logging.getLogger(__name__)


def pooled_loss(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood of the true label under the pooled probabilities."""
    ok = targets != IGNORE
    if not ok.any():
        return float("nan")
    p_true = probs[ok, targets[ok]]
    return float(-np.mean(np.log(np.clip(p_true, 1e-7, 1.0))))


def score_clips(
    model: torch.nn.Module,
    spec: ModelSpec,
    clips: Sequence[Clip],
    batch_size: int = 64,
    precision: str = "fp32",
    reader: Reader | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled probabilities (NaN rows for unusable clips) and targets (IGNORE for those)."""
    index = {label: i for i, label in enumerate(spec.labels)}
    scored = score(model, spec, [c.path for c in clips], batch_size, precision, reader)
    probs = np.full((len(clips), len(spec.labels)), np.nan)
    targets = np.full(len(clips), IGNORE)
    for i, (clip, s) in enumerate(zip(clips, scored)):
        if s.probs is not None:
            probs[i], targets[i] = s.probs, index[clip.label]
    return probs, targets


def compute_metrics(
    targets: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    speakers: Sequence[Any] | None = None,
    corpora: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Clip-level (and speaker-level) classification metrics; unreadable clips are left out.

    With ``corpora`` (each clip's corpus) also the metrics of each corpus and
    ``macro_balanced_accuracy``, their balanced accuracies' mean: a corpus of 1,280 clips then
    counts no more than one of 251.
    """
    ok = targets != IGNORE
    y, p = targets[ok], probs[ok]
    pred = p.argmax(axis=1)
    idx = list(range(len(labels)))
    prec, rec, f1, support = skm.precision_recall_fscore_support(
        y, pred, labels=idx, zero_division=0
    )
    out: dict[str, Any] = {
        "n_clips": int(ok.sum()),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": float(_balanced_accuracy(y, pred, idx)),
        "precision_macro": float(np.mean(prec)),
        "recall_macro": float(np.mean(rec)),
        "f1_macro": float(np.mean(f1)),
        "roc_auc": _roc_auc(y, p, idx),
        "per_class": {
            label: {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": skm.confusion_matrix(y, pred, labels=idx).tolist(),
        "labels": list(labels),
    }
    if speakers is not None:
        out.update(_speaker_metrics(y, p, [s for s, k in zip(speakers, ok) if k]))
    if corpora is not None:
        kept = np.array([c for c, k in zip(corpora, ok) if k], dtype=object)
        who = None if speakers is None else [s for s, k in zip(speakers, ok) if k]
        out["per_corpus"] = _per_corpus(y, pred, kept, labels, who)
        out["macro_balanced_accuracy"] = float(
            np.mean([m["balanced_accuracy"] for m in out["per_corpus"].values()])
        )
    return out


def _per_corpus(
    y: np.ndarray,
    pred: np.ndarray,
    corpora: np.ndarray,
    labels: Sequence[str],
    speakers: Sequence[Any] | None,
) -> dict[str, dict[str, Any]]:
    """Balanced accuracy, recall per label, clips and speakers of each corpus."""
    out = {}
    for corpus in sorted(set(corpora.tolist())):
        mine = corpora == corpus
        yc, pc = y[mine], pred[mine]
        out[corpus] = {
            "n_clips": int(mine.sum()),
            "n_speakers": len({s for s, m in zip(speakers, mine) if m}) if speakers else None,
            "balanced_accuracy": _balanced_accuracy(yc, pc, list(range(len(labels)))),
            "recall": {
                label: float(np.mean(pc[yc == i] == i)) if np.any(yc == i) else None
                for i, label in enumerate(labels)
            },
        }
    return out


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray, idx: list[int]) -> float:
    """Mean recall over the classes present (sklearn's definition, without its warning)."""
    recalls = [np.mean(pred[y == i] == i) for i in idx if np.any(y == i)]
    return float(np.mean(recalls)) if recalls else 0.0


def _roc_auc(y: np.ndarray, p: np.ndarray, idx: list[int]) -> float | None:
    if len(set(y.tolist())) < 2:
        return None
    if len(idx) == 2:
        return float(skm.roc_auc_score(y, p[:, 1]))
    return float(skm.roc_auc_score(y, p, multi_class="ovr", labels=idx))


def _speaker_metrics(y: np.ndarray, p: np.ndarray, speakers: Sequence[Any]) -> dict[str, Any]:
    """Pool each speaker's clip probabilities and score one decision per speaker."""
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, s in enumerate(speakers):
        groups[s].append(i)
    truth = np.array([np.bincount(y[g]).argmax() for g in groups.values()])
    pred = np.array([p[g].mean(axis=0).argmax() for g in groups.values()])
    return {
        "n_speakers": len(groups),
        "speaker_accuracy": float(np.mean(truth == pred)),
        "speaker_balanced_accuracy": float(_balanced_accuracy(truth, pred, sorted(set(truth)))),
    }


@dataclass
class EvalResult:
    """Metrics with the per-clip probabilities they came from."""

    metrics: dict[str, Any]
    clips: list[Clip]
    probs: np.ndarray
    targets: np.ndarray
    labels: tuple[str, ...]

    def scored(self) -> list[tuple[Clip, int, np.ndarray]]:
        """(clip, target index, class probabilities) of every clip that could be read."""
        return [
            (c, int(t), p) for c, t, p in zip(self.clips, self.targets, self.probs) if t != IGNORE
        ]


def evaluate(
    loaded: LoadedModel,
    clips: Sequence[Clip],
    batch_size: int = 64,
    cache_dir: str = "",
) -> EvalResult:
    """Score a trained model on clips (pooled windows per clip, then per speaker) where it lives.

    It goes through :func:`vgd.inference.score`, the path ``vgd predict`` takes, so the
    probabilities in the report are the ones prediction gives for the same files.
    """
    reader = AudioCache(cache_dir, loaded.spec.audio).get if cache_dir else None
    probs, targets = score_clips(loaded.model, loaded.spec, clips, batch_size, reader=reader)
    metrics = compute_metrics(
        targets, probs, loaded.labels, [speaker_key(c) for c in clips], [c.corpus for c in clips]
    )
    metrics["loss"] = pooled_loss(probs, targets)
    ok = targets != IGNORE
    metrics["ece"] = expected_calibration_error(probs[ok], targets[ok])
    metrics["temperature"] = loaded.spec.temperature
    metrics["n_unreadable"] = int((targets == IGNORE).sum())
    return EvalResult(metrics, list(clips), probs, targets, loaded.labels)


def write_report(result: EvalResult, out_dir: str | Path) -> dict[str, Path]:
    """metrics.json, per-clip predictions.csv, roc.csv, confusion.png and roc.png in ``out_dir``."""
    from vgd import plots

    out = Path(out_dir)
    paths = {
        "metrics": out / "metrics.json",
        "predictions": out / "predictions.csv",
        "roc_data": out / "roc.csv",
        "confusion": out / "confusion.png",
        "roc": out / "roc.png",
    }
    atomic_write_json(paths["metrics"], result.metrics)
    atomic_write_text(paths["predictions"], _predictions_csv(result))
    atomic_write_text(paths["roc_data"], _roc_csv(result))
    plots.confusion_matrix(result.metrics, paths["confusion"])
    plots.roc_curve(
        *_roc_points(result), result.metrics.get("roc_auc"), result.labels, paths["roc"]
    )
    return paths


def _predictions_csv(result: EvalResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "speaker", "actual", "predicted", *[f"p_{x}" for x in result.labels]])
    for clip, t, p in result.scored():
        w.writerow(
            [
                clip.path,
                clip.speaker,
                result.labels[t],
                result.labels[int(p.argmax())],
                *[f"{v:.6f}" for v in p],
            ]
        )
    return buf.getvalue()


def _roc_points(result: EvalResult) -> tuple[np.ndarray, np.ndarray]:
    ok = result.targets != IGNORE
    y, p = result.targets[ok], result.probs[ok]
    if len(set(y.tolist())) < 2:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    fpr, tpr, _ = skm.roc_curve(y == 1, p[:, 1])
    return fpr, tpr


def _roc_csv(result: EvalResult) -> str:
    fpr, tpr = _roc_points(result)
    return "fpr,tpr\n" + "".join(f"{a:.5f},{b:.5f}\n" for a, b in zip(fpr, tpr))


def _corpus_lines(metrics: dict[str, Any]) -> list[str]:
    """Per-corpus balanced accuracy and recalls, and their macro, when there are 2+ corpora."""
    per = metrics.get("per_corpus") or {}
    if len(per) < 2:
        return []
    labels = metrics["labels"]
    head = f"\n{'corpus':<16} {'clips':>6} {'bal acc':>8}" + "".join(
        f" {'rec ' + x:>11}" for x in labels
    )
    lines = [head]
    for name, m in per.items():
        recalls = "".join(f" {_num(m['recall'][x]):>11}" for x in labels)
        lines.append(f"{name:<16} {m['n_clips']:>6} {m['balanced_accuracy']:>8.4f}{recalls}")
    lines.append(f"{'macro':<16} {'':>6} {metrics['macro_balanced_accuracy']:>8.4f}")
    return lines


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def format_metrics(metrics: dict[str, Any]) -> str:
    """A printable table: headline numbers, then precision/recall/F1 per class."""
    auc = metrics.get("roc_auc")
    lines = [
        f"clips {metrics['n_clips']}  speakers {metrics.get('n_speakers', '?')}",
        f"accuracy           {metrics['accuracy']:.4f}",
        f"balanced accuracy  {metrics['balanced_accuracy']:.4f}",
        f"macro F1           {metrics['f1_macro']:.4f}",
        f"ROC-AUC            {auc:.4f}" if auc is not None else "ROC-AUC            n/a",
    ]
    if "speaker_accuracy" in metrics:
        lines.append(f"speaker accuracy   {metrics['speaker_accuracy']:.4f}")
    if "ece" in metrics:
        lines.append(
            f"calibration error  {metrics['ece']:.4f} (ECE, T={metrics['temperature']:.2f})"
        )
    lines.append(f"\n{'class':<10} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
    for label, m in metrics["per_class"].items():
        lines.append(
            f"{label:<10} {m['precision']:>9.4f} {m['recall']:>7.4f} "
            f"{m['f1']:>7.4f} {m['support']:>8}"
        )
    lines += _corpus_lines(metrics)
    labels = metrics["labels"]
    lines.append("\nconfusion (rows actual, columns predicted)")
    lines.append(" " * 10 + "".join(f"{x:>9}" for x in labels))
    for label, row in zip(labels, metrics["confusion_matrix"]):
        lines.append(f"{label:<10}" + "".join(f"{v:>9}" for v in row))
    return "\n".join(lines)
