"""The manifest: one CSV that every step reads (path, label, speaker, duration_s, corpus, split).

Paths are stored relative to the manifest's folder when they lie under it, so a data folder can
move as a whole; anything else is stored absolute.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from vgd.io import atomic_write_text

COLUMNS = ("path", "label", "speaker", "duration_s", "corpus", "split")
REQUIRED = ("path", "label", "speaker")


class ManifestError(ValueError):
    """A manifest file is missing, malformed or names unknown labels; the message names it."""


@dataclass(frozen=True)
class Clip:
    """One labelled utterance."""

    path: str
    label: str
    speaker: str
    duration_s: float = 0.0
    corpus: str = ""
    split: str = ""

    def with_split(self, split: str) -> Clip:
        return replace(self, split=split)


def _relative(path: str, root: Path) -> str:
    p = Path(path).resolve()
    try:
        return p.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(p)


def write_manifest(clips: Iterable[Clip], path: str | os.PathLike) -> Path:
    """Write clips to CSV atomically, paths relative to the manifest's folder where possible."""
    path = Path(path)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for clip in clips:
        row = asdict(clip)
        row["path"] = _relative(clip.path, path.parent)
        row["duration_s"] = f"{clip.duration_s:.3f}"
        writer.writerow(row)
    atomic_write_text(path, buf.getvalue())
    return path


def read_manifest(path: str | os.PathLike) -> list[Clip]:
    """Read a manifest CSV; relative paths resolve against the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ManifestError(f"{path}: missing column(s) {', '.join(missing)} (has {header})")
        clips = [_row_to_clip(row, path, n) for n, row in enumerate(reader, start=2)]
    if not clips:
        raise ManifestError(f"{path}: no clips")
    return clips


def corpus_name(path: str | os.PathLike) -> str:
    """The name a manifest gives clips that lack a corpus: its folder's for ``manifest.csv``
    (``data/librispeech/manifest.csv`` → ``librispeech``), else the file's stem."""
    path = Path(path)
    return path.parent.resolve().name if path.stem == "manifest" else path.stem


def read_manifests(paths: Sequence[str | os.PathLike]) -> list[Clip]:
    """Several manifests as one pool, each clip tagged with its corpus.

    A clip keeps the corpus its row names, else it takes its manifest's :func:`corpus_name`.
    With more than one manifest the splits they carry are dropped: each was drawn for its corpus
    alone, and the pool's are drawn again stratified by corpus × gender.
    """
    if not paths:
        raise ManifestError("no manifest given")
    pool: list[Clip] = []
    for path in paths:
        name = corpus_name(path)
        for clip in read_manifest(path):
            clip = clip if clip.corpus else replace(clip, corpus=name)
            pool.append(clip if len(paths) == 1 else clip.with_split(""))
    return pool


def _row_to_clip(row: dict[str, str], manifest: Path, line: int) -> Clip:
    names = {f.name for f in fields(Clip)}
    values = {k: (v or "").strip() for k, v in row.items() if k in names}
    for col in REQUIRED:
        if not values.get(col):
            raise ManifestError(f"{manifest}:{line}: empty {col}")
    p = Path(values["path"])
    values["path"] = str(p if p.is_absolute() else (manifest.parent / p))
    try:
        values["duration_s"] = float(values.get("duration_s") or 0.0)
    except ValueError as e:
        raise ManifestError(f"{manifest}:{line}: duration_s is not a number") from e
    values["label"] = values["label"].lower()
    return Clip(**values)


def check_labels(clips: Sequence[Clip], labels: Sequence[str], source: str = "manifest") -> None:
    """Raise ManifestError if a clip's label is not one of ``labels``."""
    unknown = sorted({c.label for c in clips} - set(labels))
    if unknown:
        raise ManifestError(f"{source}: unknown label(s) {unknown}; expected {list(labels)}")


@dataclass(frozen=True)
class LabelStats:
    label: str
    clips: int
    speakers: int
    hours: float


def stats(clips: Sequence[Clip]) -> list[LabelStats]:
    """Clips, speakers and hours per label (plus a total row)."""
    groups: dict[str, list[Clip]] = defaultdict(list)
    for c in clips:
        groups[c.label].append(c)
    rows = [_label_stats(label, group) for label, group in sorted(groups.items())]
    rows.append(_label_stats("total", list(clips)))
    return rows


def _label_stats(label: str, clips: Sequence[Clip]) -> LabelStats:
    return LabelStats(
        label=label,
        clips=len(clips),
        speakers=len({(c.corpus, c.speaker) for c in clips}),
        hours=sum(c.duration_s for c in clips) / 3600,
    )


def format_stats(clips: Sequence[Clip]) -> str:
    """A printable per-label table, with the same per split when splits are assigned."""
    lines = [f"{'label':<10} {'clips':>7} {'speakers':>9} {'hours':>8}"]
    lines += [f"{r.label:<10} {r.clips:>7} {r.speakers:>9} {r.hours:>8.2f}" for r in stats(clips)]
    splits = sorted({c.split for c in clips if c.split})
    for split in splits:
        part = [c for c in clips if c.split == split]
        cells = ", ".join(f"{r.label} {r.clips} clips/{r.speakers} spk" for r in stats(part)[:-1])
        lines.append(f"split {split}: {cells}")
    return "\n".join(lines)
