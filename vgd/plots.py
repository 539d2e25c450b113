"""Figures people look at: mel spectrograms, confusion matrix, ROC, training curves.

matplotlib is imported inside each function with the file-only Agg backend, so importing vgd
never opens a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vgd.io import atomic_path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    pyplot().close(fig)
    return path


def mel_spectrograms(
    mels: Sequence[np.ndarray], titles: Sequence[str], hop_s: float, f_max: float, path: str | Path
) -> Path:
    """Log-mel spectrograms side by side, one panel per (n_mels, frames) array."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(mels), figsize=(4.2 * len(mels), 3.2), squeeze=False)
    for ax, mel, title in zip(axes[0], mels, titles):
        extent = (0.0, mel.shape[1] * hop_s, 0, mel.shape[0])
        im = ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=extent)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"mel band (to {f_max / 1000:g} kHz)")
    fig.colorbar(im, ax=axes[0].tolist(), label="normalised log energy", shrink=0.85)
    return save_figure(fig, path)


def confusion_matrix(metrics: dict[str, Any], path: str | Path) -> Path:
    """Counts and row percentages (recall per class) of a metrics dict's confusion matrix."""
    plt = pyplot()
    cm = np.asarray(metrics["confusion_matrix"], dtype=float)
    labels = metrics["labels"]
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            color = "white" if rows[i, j] > 0.5 else "black"
            ax.text(
                j, i, f"{int(cm[i, j])}\n{rows[i, j]:.1%}", ha="center", va="center", color=color
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"balanced accuracy {metrics['balanced_accuracy']:.3f}", fontsize=10)
    return save_figure(fig, path)


def roc_curve(
    fpr: np.ndarray, tpr: np.ndarray, auc: float | None, labels: Sequence[str], path: str | Path
) -> Path:
    """ROC of the second label's probability (e.g. ``male`` against ``female``)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    ax.plot(fpr, tpr, lw=2, label=f"AUC {auc:.4f}" if auc is not None else "AUC n/a")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set_xlabel(f"false {labels[1]} rate")
    ax.set_ylabel(f"true {labels[1]} rate")
    ax.legend(loc="lower right")
    return save_figure(fig, path)


def training_curves(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Loss and validation balanced accuracy per epoch."""
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    if all("val_loss" in h for h in history):
        ax1.plot(epochs, [h["val_loss"] for h in history], label="validation")
        ax2.plot(epochs, [h["val_balanced_accuracy"] for h in history], color="C2")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation balanced accuracy")
    return save_figure(fig, path)
