"""On-disk cache of decoded, resampled audio, shared by epochs, trials and processes.

Each entry is a ``.npy`` file named by a hash of the source's path, size, modification time and
the target rate, so an edited file is decoded again. Entries are written to a temporary file
and renamed into place, so two processes filling the cache at once never see half an entry, and
they are read memory-mapped so concurrent readers share the operating system's page cache.
Failures are cached too (as a small text file) so a bad file is not decoded again every epoch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vgd.audio import AudioError, load_audio
from vgd.config import AudioConfig
from vgd.io import atomic_path, atomic_write_text

log = logging.getLogger(__name__)


class AudioCache:
    """Decoded audio by source path; ``get`` decodes on a miss, later calls read the cached copy."""

    def __init__(self, root: str | os.PathLike, config: AudioConfig = AudioConfig()):
        self.root = Path(root).expanduser()
        self.config = config

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
        return np.load(entry, mmap_mode="r")

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
    report.seconds = time.perf_counter() - start
    return report
