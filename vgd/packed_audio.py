"""A corpus's decoded audio in one array, read by clip path: what a search hands its trials.

The search's driver decodes every usable clip once (through the on-disk cache) and lays the
waveforms end to end in one float32 array. A trial then reads its training and validation clips
from that array by path (``PackedAudio.read`` is a ``vgd.inference.Reader``), so the node it runs
on needs neither the audio files, nor the manifest, nor the cache. The object pickles as three
arrays and the clip list; Ray's object store (search/shipping.py) hands it to every trial of a
node from one shared-memory copy.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vgd.audio import AudioError
from vgd.inference import Reader
from vgd.manifest import Clip

BYTES_PER_SAMPLE = 4  # float32: the waveforms exactly as the reader gave them


class TooLarge(ValueError):
    """The decoded corpus is larger than the memory it was allowed; names both sizes."""

    def __init__(self, nbytes: int, budget: int):
        self.nbytes, self.budget = nbytes, budget
        super().__init__(f"decoded audio of {gib(nbytes)} exceeds the budget of {gib(budget)}")


def gib(nbytes: float) -> str:
    """Bytes as GiB with two decimals (MiB below 0.1 GiB)."""
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 0.1 * 2**30 else f"{nbytes / 2**20:.1f} MiB"


@dataclass(frozen=True, eq=False)
class PackedAudio:
    """Clips' waveforms end to end: clip i is ``data[offsets[i]:][: lengths[i]]``."""

    clips: tuple[Clip, ...]
    data: np.ndarray  # (N,) float32
    offsets: np.ndarray  # (n_clips,) int64
    lengths: np.ndarray  # (n_clips,) int64

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes + self.offsets.nbytes + self.lengths.nbytes)

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {c.path: i for i, c in enumerate(self.clips)}

    def read(self, path: str) -> np.ndarray:
        """The clip's waveform (a read-only view); AudioError for a path not packed here."""
        i = self._index.get(str(path))
        if i is None:
            raise AudioError(path, "not in the audio the search packed for its trials")
        start = int(self.offsets[i])
        return self.data[start : start + int(self.lengths[i])]


def pack_audio(
    clips: Sequence[Clip], reader: Reader, budget: int = 0
) -> tuple[PackedAudio, list[str]]:
    """Decode ``clips`` through ``reader`` into one array; the clips that failed, with reasons.

    With a ``budget`` (bytes) raises :class:`TooLarge`, naming the whole corpus's size, as soon
    as the decoded audio would exceed it (the rest is only measured, not kept).
    """
    waves, kept, failed, total = [], [], [], 0
    for clip in clips:
        try:
            wave = reader(clip.path)
        except AudioError as e:
            failed.append(str(e))
            continue
        kept.append(clip)
        total += wave.shape[0] * BYTES_PER_SAMPLE
        if budget and total > budget:
            waves = []  # over budget: only measure the rest, for the error's figure
        else:
            waves.append(wave)
    if budget and total > budget:
        raise TooLarge(total, budget)
    return _concatenate(kept, waves), failed


def _concatenate(clips: list[Clip], waves: list[np.ndarray]) -> PackedAudio:
    lengths = np.array([w.shape[0] for w in waves], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    data = np.empty(int(lengths.sum()), dtype=np.float32)
    for wave, start, n in zip(waves, offsets, lengths):
        data[start : start + n] = wave
    data.flags.writeable = False
    return PackedAudio(tuple(clips), data, offsets, lengths)
