"""Prediction over files and folders, for recordings of any length.

Each file is streamed in crop-length windows, windows are batched across files, and a file's
window probabilities are pooled. A bad file gets an error row; the rest go on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from vgd.audio import (
    AudioError,
    audio_info,
    check_duration,
    is_audio_path,
    rms_dbfs,
    stream_windows,
)
from vgd.checkpoint import LoadedModel
from vgd.dataset import crop_or_pad
from vgd.device import resolve_device
from vgd.progress import Progress

log = logging.getLogger(__name__)


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


class _Pool:
    """Running per-file sums of window probabilities."""

    def __init__(self, n_files: int, n_classes: int):
        self.sums = np.zeros((n_files, n_classes))
        self.counts = np.zeros(n_files, dtype=int)

    def add(self, files: Sequence[int], probs: np.ndarray) -> None:
        np.add.at(self.sums, np.asarray(files), probs)
        np.add.at(self.counts, np.asarray(files), 1)

    def mean(self, i: int) -> np.ndarray:
        return self.sums[i] / max(self.counts[i], 1)


@torch.inference_mode()
def predict_paths(
    loaded: LoadedModel,
    paths: Iterable[str | os.PathLike],
    batch_size: int = 64,
    device: str = "auto",
    progress: bool = True,
) -> list[Prediction]:
    """Classify every audio file under ``paths``; one Prediction per file, errors included."""
    files, missing = find_audio(paths)
    dev = resolve_device(device)
    model = loaded.model.to(dev).eval()
    pool = _Pool(len(files), len(loaded.labels))
    results = [Prediction(str(f)) for f in files]
    batch: list[tuple[int, np.ndarray]] = []
    bar = Progress(len(files), "predicting", unit="files", enabled=progress)

    @torch.inference_mode()
    def flush() -> None:
        if batch:
            waves = torch.from_numpy(np.stack([w for _, w in batch])).to(dev)
            pool.add([i for i, _ in batch], torch.softmax(model(waves).float(), 1).cpu().numpy())
            batch.clear()

    for i, path in enumerate(files):
        try:
            for window in _voiced_windows(path, loaded, results[i]):
                batch.append((i, window))
                if len(batch) >= batch_size:
                    flush()
        except AudioError as e:
            results[i].error = e.reason
        bar.update()
    flush()
    bar.close()
    for i, r in enumerate(results):
        if r.error is None:
            probs = pool.mean(i)
            r.probs = {label: float(p) for label, p in zip(loaded.labels, probs)}
            r.label = loaded.labels[int(probs.argmax())]
    return missing + results


def _voiced_windows(path: Path, loaded: LoadedModel, result: Prediction) -> Iterator[np.ndarray]:
    """Crop-length windows of a file that are not silent; fills the result's duration/windows."""
    cfg = loaded.config
    rate, crop = cfg.audio.sample_rate, round(cfg.data.crop_s * cfg.audio.sample_rate)
    info = audio_info(path)
    samples = 0
    for window in stream_windows(path, cfg.audio, cfg.data.crop_s):
        samples += window.shape[0]
        if rms_dbfs(window) >= cfg.audio.silence_dbfs:
            result.windows += 1
            yield crop_or_pad(window, 0, crop)
    result.duration_s = info.duration_s if info.frames > 0 else samples / rate
    check_duration(result.duration_s, cfg.audio, path)
    if result.windows == 0:
        raise AudioError(path, f"silent (no window above {cfg.audio.silence_dbfs:g} dBFS)")


# ----------------------------------------------------------------------------- output


def _rows(preds: Sequence[Prediction], labels: Sequence[str]) -> list[dict]:
    rows = []
    for p in preds:
        row = {"path": p.path, "label": p.label or "", "duration_s": round(p.duration_s, 3)}
        row.update({f"p_{x}": round(p.probs[x], 5) if p.probs else "" for x in labels})
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
