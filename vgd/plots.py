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
    validated = [h for h in history if "val_loss" in h]  # every epoch, or every Nth
    if validated:
        at = [h["epoch"] for h in validated]
        marker = "" if len(validated) == len(history) else "o"
        ax1.plot(at, [h["val_loss"] for h in validated], marker=marker, label="validation")
        ax2.plot(at, [h["val_balanced_accuracy"] for h in validated], marker=marker, color="C2")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation balanced accuracy")
    return save_figure(fig, path)


SEGMENT_COLOURS = {"female": "#d6604d", "male": "#4393c3", "unknown": "#999999"}
NONSPEECH_COLOUR = "#f0f0f0"


def segment_bands(
    segments: Sequence[tuple[float, float, str]],
    path: str | Path,
    wave: np.ndarray | None = None,
    sample_rate: int = 16000,
    mel: np.ndarray | None = None,
    hop_s: float = 0.01,
    start_s: float = 0.0,
    title: str = "",
) -> Path:
    """A waveform (or an (n_mels, frames) log-mel spectrogram) over a strip of coloured
    (start, end, label) segments, times in seconds of the recording; ``start_s`` is where the
    signal starts. Non-speech is pale grey, other labels not in SEGMENT_COLOURS get C2, C3..."""
    if (wave is None) == (mel is None):
        raise ValueError("segment_bands needs exactly one of wave and mel")
    plt = pyplot()
    from matplotlib.patches import Patch

    extra = {s[2] for s in segments} - set(SEGMENT_COLOURS) - {"nonspeech"}
    labels = list(SEGMENT_COLOURS) + sorted(extra)
    colours = {x: SEGMENT_COLOURS.get(x, f"C{i}") for i, x in enumerate(labels)}
    colours["nonspeech"] = NONSPEECH_COLOUR
    fig, (ax, strip) = plt.subplots(
        2, 1, figsize=(11, 3.6), sharex=True, gridspec_kw={"height_ratios": [5, 1]}
    )
    if wave is not None:
        end_s = start_s + wave.size / sample_rate
        _envelope(ax, wave, sample_rate, start_s)
        ax.set_ylabel("amplitude")
    else:
        end_s = start_s + mel.shape[1] * hop_s
        extent = (start_s, end_s, 0, mel.shape[0])
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=extent)
        ax.set_ylabel("mel band")
    for s, e, label in segments:
        if e > start_s and s < end_s:
            strip.axvspan(max(s, start_s), min(e, end_s), color=colours[label], lw=0)
            if wave is not None and label != "nonspeech":
                ax.axvspan(max(s, start_s), min(e, end_s), color=colours[label], alpha=0.25, lw=0)
    strip.set_yticks([])
    strip.set_xlim(start_s, end_s)
    strip.set_xlabel("time (s)")
    handles = [Patch(color=colours[x], label=x) for x in [*labels, "nonspeech"]]
    strip.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -1.2), ncol=len(handles))
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def _envelope(ax, wave: np.ndarray, sample_rate: int, start_s: float, columns: int = 4000) -> None:
    """Min/max per pixel column, so an hour of samples draws as fast as a second."""
    step = max(wave.size // columns, 1)
    n = wave.size // step * step
    if n == 0:
        return
    blocks = wave[:n].reshape(-1, step)
    t = start_s + (np.arange(blocks.shape[0]) * step + step / 2) / sample_rate
    ax.fill_between(t, blocks.min(axis=1), blocks.max(axis=1), color="#333333", lw=0)
    ax.set_ylim(-1.05 * max(np.abs(blocks).max(), 1e-3), 1.05 * max(np.abs(blocks).max(), 1e-3))
