"""Every supported corpus → one manifest (a sorted list of Clip), with unreadable files listed.

A builder reads a corpus's own layout and metadata into unvalidated clips; ``build()`` then
checks each file (header, full decode or not at all) and leaves out the ones that fail, so one
bad file in 100,000 costs one line in ``failures`` rather than the whole run.

Sources and what they read:

- ``folder``: ``root/<label>/**`` for each label (folders named ``f``, ``Male``, ... count too).
  The speaker is the first folder below the label folder when there is one, else the file name
  up to its first ``_`` or ``-`` (``female/anna_03.wav`` → ``anna``). Corpus: the root's name.
- ``csv`` / ``synth``: an existing manifest CSV with at least path, label, speaker (``root`` is
  the CSV or a folder holding ``manifest.csv``, as ``vgd data synth`` writes).
- ``librispeech``: ``SPEAKERS.TXT`` beside or above ``root``; audio ``<speaker>/<chapter>/*.flac``.
- ``vctk``: ``speaker-info.txt``; audio in per-speaker folders (``wav48/p225/...``).
- ``common_voice``: ``validated.tsv`` (or the TSV given as ``root``); audio in ``clips/``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import soundfile as sf

from vgd.audio import AudioError, audio_info, is_audio_path, load_audio
from vgd.config import AudioConfig
from vgd.manifest import Clip, ManifestError, read_manifest
from vgd.progress import Progress

log = logging.getLogger(__name__)

VALIDATE = ("header", "decode", "none")

_LABEL_SPELLINGS = {
    "female": "female",
    "f": "female",
    "woman": "female",
    "feminine": "female",
    "female_feminine": "female",
    "male": "male",
    "m": "male",
    "man": "male",
    "masculine": "male",
    "male_masculine": "male",
}


def normalise_label(text: str | None) -> str | None:
    """``"F"``, ``"Female"``, ``"female_feminine"`` → ``"female"`` (likewise male); else None."""
    return _LABEL_SPELLINGS.get((text or "").strip().lower().replace("-", "_"))


def _label(text: str | None, labels: Sequence[str]) -> str | None:
    """The label ``text`` names if it is one of ``labels``, else None (the row is skipped)."""
    name = normalise_label(text) or (text or "").strip().lower()
    return name if name in labels else None


@dataclass(frozen=True)
class Found:
    """What a builder found before validation: clips, and rows left out for want of a label."""

    clips: list[Clip]
    skipped: int = 0


def _labelled(
    rows: Iterable[tuple[Path, str | None, str]], labels: Sequence[str], corpus: str
) -> Found:
    """Clips from (path, label as the corpus spells it, speaker) rows; unusable labels skipped."""
    clips, skipped = [], 0
    for path, raw, speaker in rows:
        label = _label(raw, labels)
        if label is None or not speaker:
            skipped += 1
            continue
        clips.append(Clip(str(path), label, speaker, 0.0, corpus))
    return Found(clips, skipped)


@dataclass(frozen=True)
class BuildResult:
    """Usable clips sorted by path, one line per unreadable file, rows without a usable label."""

    clips: list[Clip]
    failures: list[str]
    skipped: int
    source: str

    def summary(self) -> str:
        speakers = len({(c.corpus, c.speaker) for c in self.clips})
        return (
            f"{self.source}: {len(self.clips)} clips from {speakers} speakers, "
            f"{len(self.failures)} unreadable, {self.skipped} without a usable label"
        )


# ----------------------------------------------------------------------------- helpers


def _existing_dir(root: Path) -> Path:
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    if not root.is_dir():
        raise ManifestError(f"{root}: expected a corpus folder, found a file")
    return root


def _find_file(name: str, candidates: Iterable[Path], what: str) -> Path:
    candidates = list(candidates)
    for folder in candidates:
        if (folder / name).is_file():
            return folder / name
    looked = ", ".join(str(folder / name) for folder in candidates)
    raise FileNotFoundError(f"{name} not found ({what}); looked for {looked}")


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if is_audio_path(p) and p.is_file())


# ----------------------------------------------------------------------------- builders


def _folder(root: Path, labels: Sequence[str]) -> Found:
    root = _existing_dir(root)
    label_dirs = [(d, _label(d.name, labels)) for d in sorted(root.iterdir()) if d.is_dir()]
    label_dirs = [(d, label) for d, label in label_dirs if label]
    if not label_dirs:
        raise ManifestError(f"{root}: no label folders; expected sub-folders named {list(labels)}")
    corpus = root.resolve().name
    clips = []
    for label_dir, label in label_dirs:
        for path in _audio_files(label_dir):
            clips.append(Clip(str(path), label, _folder_speaker(path, label_dir), 0.0, corpus))
    return Found(clips)


def _folder_speaker(path: Path, label_dir: Path) -> str:
    parts = path.relative_to(label_dir).parts
    if len(parts) > 1:
        return parts[0]
    return re.split(r"[_-]", path.stem, maxsplit=1)[0] or path.stem


def _csv(root: Path, labels: Sequence[str], default_corpus: str = "") -> Found:
    path = root / "manifest.csv" if root.is_dir() else root
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such manifest CSV")
    corpus = default_corpus or path.parent.resolve().name
    clips, skipped = [], 0
    for clip in read_manifest(path):
        label = _label(clip.label, labels)
        if label is None:
            skipped += 1
            continue
        clips.append(replace(clip, label=label, corpus=clip.corpus or corpus))
    return Found(clips, skipped)


def _synth(root: Path, labels: Sequence[str]) -> Found:
    return _csv(_existing_dir(root) / "manifest.csv", labels, default_corpus="synth")


def read_librispeech_speakers(path: Path) -> dict[str, str]:
    """``SPEAKERS.TXT`` → {reader id: raw SEX}; ';' lines are comments, names may hold '|'."""
    table = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 3 and fields[0]:
            table[fields[0]] = fields[1]
    if not table:
        raise ManifestError(f"{path}: no speaker rows (expected 'ID | SEX | SUBSET | ...')")
    return table


def _librispeech(root: Path, labels: Sequence[str]) -> Found:
    root = _existing_dir(root)
    table_path = _find_file(
        "SPEAKERS.TXT", [root, root.parent], "LibriSpeech's speaker table, the source of the labels"
    )
    sex = read_librispeech_speakers(table_path)
    # <subset>/<speaker>/<chapter>/<utterance>.flac
    rows = ((p, sex.get(p.parent.parent.name), p.parent.parent.name) for p in _audio_files(root))
    return _labelled(rows, labels, "librispeech")


def _vctk_key(speaker_id: str) -> str:
    """'p225' and '225' (releases differ) are one speaker."""
    s = speaker_id.strip().lower()
    return s[1:] if s.startswith("p") and s[1:].isdigit() else s


def read_vctk_speakers(path: Path) -> dict[str, tuple[str, str]]:
    """``speaker-info.txt`` → {key: (id as written, raw GENDER)}; columns ID AGE GENDER ..."""
    table = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].upper() == "ID" or fields[0].startswith(("#", ";")):
            continue
        table[_vctk_key(fields[0])] = (fields[0], fields[2])
    if not table:
        raise ManifestError(f"{path}: no speaker rows (expected 'ID AGE GENDER ACCENTS ...')")
    return table


def _vctk(root: Path, labels: Sequence[str]) -> Found:
    root = _existing_dir(root)
    table_path = _find_file(
        "speaker-info.txt", [root, root.parent], "VCTK's speaker table, the source of the labels"
    )
    table = read_vctk_speakers(table_path)
    # Both microphones (mic1/mic2 in 0.92) are kept: they are the same speaker, so splits stay
    # speaker-disjoint.
    found = ((p, table.get(_vctk_key(p.parent.name), ("", ""))) for p in _audio_files(root))
    return _labelled(((p, gender, spk) for p, (spk, gender) in found), labels, "vctk")


def _common_voice(root: Path, labels: Sequence[str]) -> Found:
    if root.is_file():
        tsv = root
    else:
        tsv = _find_file("validated.tsv", [_existing_dir(root)], "Common Voice's clip table")
    clips_dir = tsv.parent / "clips"
    with open(tsv, newline="", encoding="utf-8") as f:
        # Sentences hold quotes; QUOTE_NONE keeps a stray '"' from swallowing later rows.
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in ("client_id", "path", "gender") if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{tsv}: missing column(s) {', '.join(missing)}")
        rows = [
            (clips_dir / r["path"], r["gender"] if r["path"] else None, r["client_id"])
            for r in reader
        ]
    return _labelled(rows, labels, "common_voice")


SOURCES: dict[str, Callable[[Path, Sequence[str]], Found]] = {
    "folder": _folder,
    "csv": _csv,
    "synth": _synth,
    "librispeech": _librispeech,
    "vctk": _vctk,
    "common_voice": _common_voice,
}


# ----------------------------------------------------------------------------- validation


def _header_duration(path: str) -> float:
    """Duration from the header; files whose header gives no length (some MP3s) are counted."""
    info = audio_info(path)
    frames = info.frames
    if frames < 0:
        try:
            frames = sum(len(b) for b in sf.blocks(path, blocksize=1 << 16))
        except (sf.LibsndfileError, RuntimeError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise AudioError(path, f"not audio or corrupt ({reason})") from e
    if frames == 0:
        raise AudioError(path, "empty (0 audio frames)")
    return frames / info.sample_rate


def _decoded_duration(path: str, config: AudioConfig = AudioConfig()) -> float:
    return load_audio(path, config).size / config.sample_rate


def _checked(clip: Clip, validate: str) -> Clip:
    if validate == "header":
        return replace(clip, duration_s=_header_duration(clip.path))
    return replace(clip, duration_s=_decoded_duration(clip.path))


def validate_clips(
    clips: Sequence[Clip], validate: str, desc: str, progress: bool = True
) -> tuple[list[Clip], list[str]]:
    """Keep clips whose audio passes the check (durations filled in); failures as one-liners.

    ``header`` reads each file's header (missing, empty, not audio); ``decode`` decodes it with
    the default AudioConfig, so silent and too-short clips are caught too; ``none`` trusts the
    metadata and touches no file.
    """
    if validate == "none":
        return list(clips), []
    kept, failures = [], []
    bar = Progress(len(clips), desc, unit="files", enabled=progress)
    for clip in clips:
        try:
            kept.append(_checked(clip, validate))
        except AudioError as e:
            failures.append(str(e))
        bar.update()
    bar.close()
    return kept, failures


def build(
    source: str,
    root: str | os.PathLike,
    validate: str = "header",
    progress: bool = True,
    labels: Sequence[str] = ("female", "male"),
) -> BuildResult:
    """Read corpus ``source`` at ``root`` into clips sorted by path, checking each file.

    Raises ValueError for an unknown source or check, FileNotFoundError or ManifestError (naming
    the file) for a missing root or metadata file. Unreadable audio is never fatal: it is left
    out and listed in ``failures``.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown corpus source {source!r}; choose from {sorted(SOURCES)}")
    if validate not in VALIDATE:
        raise ValueError(f"unknown validate {validate!r}; choose from {list(VALIDATE)}")
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder ({source} corpus root)")
    found = SOURCES[source](root, tuple(labels))
    if found.skipped:
        log.info("%s: %d row(s) without a usable label left out", source, found.skipped)
    clips = sorted(found.clips, key=lambda c: c.path)
    kept, failures = validate_clips(clips, validate, f"{source}: checking audio", progress)
    return BuildResult(kept, failures, found.skipped, source)
