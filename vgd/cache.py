"""On-disk cache of decoded, resampled audio, shared by epochs, trials and processes.

Each entry is a ``.npy`` file named by a hash of the source's path, size, modification time and
the target rate, so an edited file is decoded again. Entries are written to a temporary file
and renamed into place, so two processes filling the cache at once never see half an entry, and
they are read memory-mapped so concurrent readers share the operating system's page cache.
Failures are cached too (as a small text file) so a bad file is not decoded again every epoch.
The entries take at most ``limit_gb`` (least recently used removed first), so a cache pointed at
a large corpus cannot fill the disk; one read marks an entry used.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vgd.audio import AudioError, load_audio
from vgd.config import AUDIO_CACHE_GB, AudioConfig
from vgd.io import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

EVICT_EVERY = 0.05  # a scan for eviction once the entries written since grow by this share


class AudioCache:
    """Decoded audio by source path; ``get`` decodes on a miss, later calls read the cached copy."""

    def __init__(
        self,
        root: str | os.PathLike,
        config: AudioConfig = AudioConfig(),
        limit_gb: float = AUDIO_CACHE_GB,
    ):
        self.root = Path(root).expanduser()
        self.config = config
        self.limit = int(limit_gb * 1e9)  # 0: no limit
        self._used: set[str] = set()  # entries this object has marked used (one utime each)
        self._written = 0  # bytes written since the last eviction scan

    def key(self, path: str | os.PathLike) -> str:
        p = Path(path).resolve()
        try:
            st = p.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        c = self.config
        text = f"{p}|{stamp}|{c.sample_rate}|{c.min_duration_s}|{c.silence_dbfs}"
        return hashlib.sha1(text.encode()).hexdigest()

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, path: str | os.PathLike) -> np.ndarray:
        """The waveform of ``path`` (read-only, memory-mapped); raises AudioError as load_audio."""
        key = self.key(path)
        entry = self._entry(key)
        if entry.exists():
            self._mark_used(key, entry)
            with contextlib.suppress(FileNotFoundError):  # else evicted meanwhile: decode again
                return np.load(entry, mmap_mode="r")
        failure = entry.with_suffix(".err")
        if failure.exists():
            raise AudioError(path, failure.read_text().strip())
        return self._fill(path, entry)

    def _fill(self, path: str | os.PathLike, entry: Path) -> np.ndarray:
        try:
            wave = load_audio(path, self.config)
        except AudioError as e:
            atomic_write_text(entry.with_suffix(".err"), e.reason)
            raise
        with atomic_path(entry) as tmp, open(tmp, "wb") as f:
            np.save(f, wave)
        self._used.add(entry.stem)
        self._written += entry.stat().st_size
        wave = np.load(entry, mmap_mode="r")
        if self.limit and self._written > EVICT_EVERY * self.limit:
            self.evict(keep=entry)
        return wave

    def _mark_used(self, key: str, entry: Path) -> None:
        if self.limit and key not in self._used:
            self._used.add(key)
            with contextlib.suppress(FileNotFoundError):
                os.utime(entry)

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove the least recently used entries beyond the limit; warn when this object's own
        entries alone exceed it (they are decoded again on every pass: raise the limit)."""
        self._written = 0
        if not self.limit:
            return []
        entries = list(self.root.glob("??/*.npy"))
        removed = evict_oldest(entries, self.limit, keep=[keep] if keep else [])
        mine = sum(1 for p in removed if p.stem in self._used)
        if mine:
            log.warning(
                "decoded-audio cache %s: %d entries in use exceed its %.3g GB limit and will be "
                "decoded again; raise the limit (audio_cache_gb)",
                self.root,
                mine,
                self.limit / 1e9,
            )
        return removed

    def contains(self, path: str | os.PathLike) -> bool:
        return self._entry(self.key(path)).exists()


@dataclass
class PrefillReport:
    """What a prefill did: how many entries were decoded, already there, or failed."""

    decoded: int = 0
    cached: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def prefill(cache: AudioCache, paths: Sequence[str], progress: bool = True) -> PrefillReport:
    """Decode every path not yet cached, so later readers (trials, epochs) only read."""
    from vgd.progress import Progress

    report = PrefillReport()
    start = time.perf_counter()
    bar = Progress(len(paths), "caching audio", unit="files", enabled=progress)
    for path in paths:
        if cache.contains(path):
            report.cached += 1
        else:
            try:
                cache.get(path)
                report.decoded += 1
            except AudioError as e:
                report.failed[str(path)] = e.reason
        bar.update()
    bar.close()
    cache.evict()
    report.seconds = time.perf_counter() - start
    return report


def evict_oldest(paths: Iterable[Path], limit: int, keep: Iterable[Path] = ()) -> list[Path]:
    """Remove the least recently modified of ``paths`` until they take at most ``limit`` bytes
    (those in ``keep`` stay and count). A process that has a removed file memory-mapped keeps
    reading it; one that looks for it later writes it again."""
    kept = set(keep)
    entries, total = [], 0
    for path in paths:
        try:
            st = path.stat()
        except FileNotFoundError:  # another process removed it first
            continue
        total += st.st_size
        if path not in kept:
            entries.append((st.st_mtime_ns, st.st_size, path))
    removed = []
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    if removed:
        log.info("cache over %.1f GB: removed %d least recently used", limit / 1e9, len(removed))
    return removed
