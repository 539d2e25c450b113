"""What ``predict`` and ``segment`` answer, and the formats they write it in.

A file's :class:`Prediction` (a label, its probabilities, seconds of speech, or an error) and a
recording's :class:`FileSegments` (who speaks when) are plain records; this module renders them
as an aligned table, CSV, JSON, NIST RTTM and Praat TextGrid. It imports no model code, so the
CLI, the Python API and the benchmarks write the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vgd.io import atomic_write_text

NONSPEECH = "nonspeech"  # silent, or too little speech
UNKNOWN = "unknown"  # speech, but no label is likely enough

PREDICTION_FORMATS = ("table", "csv", "json")
FORMATS = {"csv": ".csv", "rttm": ".rttm", "textgrid": ".TextGrid", "json": ".json"}
CSV_COLUMNS = ("path", "start", "end", "label", "confidence", "error")


# ----------------------------------------------------------------------------- predictions


@dataclass
class Prediction:
    """One file's verdict, or its error."""

    path: str
    label: str | None = None
    probs: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    speech_s: float | None = None  # seconds of speech found, counted up to min_speech_s
    windows: int = 0
    error: str | None = None


def _prediction_rows(preds: Sequence[Prediction], labels: Sequence[str]) -> list[dict]:
    rows = []
    for p in preds:
        row = {"path": p.path, "label": p.label or "", "duration_s": round(p.duration_s, 3)}
        row["speech_s"] = "" if p.speech_s is None else round(p.speech_s, 3)
        row.update({f"p_{x}": round(p.probs[x], 6) if p.probs else "" for x in labels})
        row.update({"windows": p.windows, "error": p.error or ""})
        rows.append(row)
    return rows


def predictions_csv(preds: Sequence[Prediction], labels: Sequence[str]) -> str:
    """One row per file: label, duration, speech seconds, each class's probability, error."""
    buf = io.StringIO()
    rows = _prediction_rows(preds, labels)
    fields = list(rows[0]) if rows else ["path"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def predictions_json(preds: Sequence[Prediction]) -> str:
    """Every field of every prediction, as a JSON list."""
    return json.dumps([asdict(p) for p in preds], indent=2) + "\n"


def predictions_table(preds: Sequence[Prediction], labels: Sequence[str]) -> str:
    """Aligned columns: label, each class's probability, duration and speech seconds; errors in
    the last column."""
    width = max([len(p.path) for p in preds] + [4])
    head = f"{'path':<{width}}  {'label':<9}" + "".join(f" {'p_' + x:>9}" for x in labels)
    lines = [head + f" {'seconds':>8} {'speech':>7}  error"]
    for p in preds:
        probs = "".join(f" {p.probs[x]:>9.3f}" if p.probs else f" {'-':>9}" for x in labels)
        speech = "-" if p.speech_s is None else f"{p.speech_s:.2f}"
        lines.append(
            f"{p.path:<{width}}  {p.label or 'ERROR':<9}{probs} {p.duration_s:>8.2f} "
            f"{speech:>7}  {p.error or ''}"
        )
    return "\n".join(lines)


def format_predictions(preds: Sequence[Prediction], labels: Sequence[str], fmt: str) -> str:
    """Render predictions as ``table``, ``csv`` or ``json``."""
    if fmt == "csv":
        return predictions_csv(preds, labels)
    if fmt == "json":
        return predictions_json(preds)
    if fmt == "table":
        return predictions_table(preds, labels) + "\n"
    raise ValueError(f"unknown format {fmt!r}; choose from {list(PREDICTION_FORMATS)}")


# ----------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class Segment:
    """[start, end) seconds with one label and the mean posterior of that label over it."""

    start: float
    end: float
    label: str
    confidence: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class FileSegments:
    """One recording's segments (covering it end to end), or the reason it has none."""

    path: str
    duration_s: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    error: str | None = None

    def seconds(self) -> dict[str, float]:
        """Seconds per label."""
        out: dict[str, float] = {}
        for s in self.segments:
            out[s.label] = out.get(s.label, 0.0) + s.duration
        return out

    def summary(self) -> dict[str, float | None]:
        """Speech seconds in all and per label (female, male and unknown always present) and
        the women's share of the gendered speaking time: female / (female + male) seconds."""
        secs = {"female": 0.0, "male": 0.0, UNKNOWN: 0.0, **self.seconds()}
        secs.pop(NONSPEECH, None)
        female, male = secs["female"], secs["male"]
        out: dict[str, float | None] = {"duration_s": self.duration_s}
        out["speech_s"] = sum(secs.values())
        out.update({f"{k}_s": v for k, v in secs.items()})
        out["women_share"] = female / (female + male) if female + male > 0 else None
        return out

    def to(self, fmt: str) -> str:
        """This recording's segments as ``csv``, ``json``, ``rttm`` or ``textgrid`` text."""
        return format_segments([self], fmt)

    def write(self, path: str | os.PathLike, fmt: str | None = None) -> Path:
        """Write the segments atomically; the format from ``fmt`` or the file's extension."""
        text = self.to(fmt or format_of(path))
        atomic_write_text(path, text)
        return Path(path)


def format_of(path: str | os.PathLike) -> str:
    """The segment format a file name asks for by its extension (.csv .json .rttm .TextGrid)."""
    suffix = Path(path).suffix.lower()
    for fmt, ext in FORMATS.items():
        if ext.lower() == suffix:
            return fmt
    raise ValueError(
        f"{path}: no segment format has the extension {suffix!r}; use one of "
        f"{', '.join(FORMATS.values())}"
    )


def segments_csv(results: Sequence[FileSegments]) -> str:
    """One row per segment (seconds); a file that failed is one row with its ``error``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        if r.error is not None:
            writer.writerow([r.path, "", "", "", "", r.error])
        for s in r.segments:
            writer.writerow([r.path, f"{s.start:.3f}", f"{s.end:.3f}", s.label, s.confidence, ""])
    return buf.getvalue()


def file_id(path: str) -> str:
    """A recording's RTTM file id: its file name without extension, whitespace replaced."""
    return "_".join(Path(path).stem.split()) or "recording"


def segments_rttm(results: Sequence[FileSegments]) -> str:
    """NIST RTTM: one ``SPEAKER`` line per speech segment, the label as the speaker name.

    Non-speech is not written (RTTM lists speech; whatever no line covers is non-speech), and
    ``unknown`` speech is a speaker named ``unknown``. Files that failed have no lines: RTTM
    has no place for an error (the command reports them and exits 1).
    """
    lines = []
    for r in results:
        for s in r.segments:
            if s.label != NONSPEECH:
                lines.append(
                    f"SPEAKER {file_id(r.path)} 1 {s.start:.3f} {s.duration:.3f} "
                    f"<NA> <NA> {s.label} <NA> <NA>"
                )
    return "".join(line + "\n" for line in lines)


def textgrid(result: FileSegments, tier: str = "gender") -> str:
    """A Praat TextGrid (long text format) with one IntervalTier covering the recording."""

    def q(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    xmax = f"{result.duration_s:.3f}"
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0",
        f"xmax = {xmax}",
        "tiers? <exists>",
        "size = 1",
        "item []:",
        "    item [1]:",
        '        class = "IntervalTier"',
        f"        name = {q(tier)}",
        "        xmin = 0",
        f"        xmax = {xmax}",
        f"        intervals: size = {len(result.segments)}",
    ]
    for i, s in enumerate(result.segments, 1):
        lines += [
            f"        intervals [{i}]:",
            f"            xmin = {s.start:.3f}",
            f"            xmax = {s.end:.3f}",
            f"            text = {q(s.label)}",
        ]
    return "\n".join(lines) + "\n"


def segments_json(results: Sequence[FileSegments]) -> str:
    """Per file: path, duration, error, summary and segments."""
    rows = [
        {
            "path": r.path,
            "duration_s": round(r.duration_s, 3),
            "error": r.error,
            "summary": None if r.error else _rounded(r.summary()),
            "segments": [asdict(s) for s in r.segments],
        }
        for r in results
    ]
    return json.dumps(rows, indent=2) + "\n"


def _rounded(summary: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v, 4) for k, v in summary.items()}


def format_segments(results: Sequence[FileSegments], fmt: str) -> str:
    """All recordings in one text; ``textgrid`` holds one recording, so takes exactly one."""
    if fmt == "textgrid":
        ok = [r for r in results if r.error is None]
        if len(ok) != 1:
            raise ValueError(f"a TextGrid holds one recording, got {len(ok)}: write to a folder")
        return textgrid(ok[0])
    writers = {"csv": segments_csv, "rttm": segments_rttm, "json": segments_json}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}; choose from {sorted(FORMATS)}")
    return writers[fmt](results)


def write_per_file(
    results: Sequence[FileSegments], fmt: str, folder: str | os.PathLike
) -> list[str]:
    """One file per usable recording in ``folder`` (``<name>.<ext>``, numbered if names clash)."""
    used: set[str] = set()
    written = []
    for r in results:
        if r.error is not None:
            continue
        name, n = file_id(r.path), 1
        while name.lower() in used:
            n += 1
            name = f"{file_id(r.path)}-{n}"
        used.add(name.lower())
        path = Path(folder) / f"{name}{FORMATS[fmt]}"
        atomic_write_text(path, format_segments([r], fmt))
        written.append(str(path))
    return written


def format_summary(results: Sequence[FileSegments]) -> str:
    """Aligned columns per file: speech seconds per label and the women's share."""
    width = max([len(r.path) for r in results] + [4])
    head = f"{'path':<{width}} {'seconds':>9} {'speech':>9} {'female':>9} {'male':>9}"
    lines = [head + f" {'unknown':>9} {'women':>6}  error"]
    for r in results:
        if r.error is not None:
            lines.append(
                f"{r.path:<{width}} {'-':>9} {'-':>9} {'-':>9} {'-':>9} {'-':>9} "
                f"{'-':>6}  {r.error}"
            )
            continue
        s = r.summary()
        share = "-" if s["women_share"] is None else f"{s['women_share']:.1%}"
        cols = [s[k] for k in ("duration_s", "speech_s", "female_s", "male_s", "unknown_s")]
        lines.append(f"{r.path:<{width}}" + "".join(f" {c:>9.1f}" for c in cols) + f" {share:>6}")
    return "\n".join(lines) + "\n"
