"""The one inference path: which windows a recording yields, which are kept, how they go through
the model and how their probabilities pool into one answer per recording.

Validation during training, ``evaluate`` and ``predict`` all call :func:`score`, so what
evaluation reports is what prediction does. A recording of ``n`` samples gives
``ceil(n / window)`` windows spaced evenly from its start to its end (the last one flush with the
end, so no tail is dropped), at most ``window.max_windows`` of them when that is set; a recording
shorter than a window is tiled to fill one. Windows below the silence floor are left out, and a
recording's window probabilities are averaged. ``predict`` also has each file's speech counted
(Silero VAD, batched beside the model) to tell speech from non-speech; no probability changes.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import soundfile as sf
import torch

from vgd.audio import (
    AudioError,
    Silent,
    Source,
    Waveform,
    audio_info,
    check_duration,
    load_audio,
    read_blocks,
    resample,
    rms_dbfs,
    source_name,
    to_mono,
)
from vgd.config import ModelSpec
from vgd.device import autocast

Reader = Callable[[str], np.ndarray]


class SpeechCount(Protocol):
    """Counts the speech seconds of recordings given as (mono blocks, sample rate) (vgd.vad)."""

    def count_many(self, recordings: Sequence[tuple[Iterable[np.ndarray], int]]) -> list[float]:
        """Speech seconds of each recording, in order."""
        ...


# Recordings longer than this are read window by window, so memory stays flat for hour-long files.
# Shorter ones are decoded whole (the same waveform the training cache holds).
STREAM_ABOVE_S = 600.0
STREAM_BLOCK_S = 60.0  # seconds per block when a streamed recording is read for its speech


def window_starts(n_samples: int, window: int, max_windows: int = 0) -> list[int]:
    """Window starts covering ``n_samples``: evenly spaced, the first at 0, the last at the end."""
    if n_samples <= window:
        return [0]
    n = math.ceil(n_samples / window)
    if max_windows:
        n = min(n, max_windows)
    return [int(round(s)) for s in np.linspace(0, n_samples - window, n)]


def crop(wave: np.ndarray, start: int, length: int) -> np.ndarray:
    """``length`` samples from ``start``; a short clip is repeated to fill the length.

    Repeating rather than zero-padding keeps the log-mel statistics of a short clip like those of
    a long one, so the prediction does not depend on how much padding there was.
    """
    out = np.array(wave[start : start + length], dtype=np.float32)  # a copy: may be a mmap
    if 0 < out.shape[0] < length:
        out = np.resize(out, length)
    elif out.shape[0] == 0:
        out = np.zeros(length, dtype=np.float32)
    return out


def _voiced(
    windows: Iterator[np.ndarray], spec: ModelSpec, path: str, duration_s: float
) -> Iterator[np.ndarray]:
    """The windows above the silence floor; Silent (an AudioError) when none is."""
    kept = 0
    for w in windows:
        if rms_dbfs(w) >= spec.audio.silence_dbfs:
            kept += 1
            yield w
    if kept == 0:
        reason = f"silent (no window above {spec.audio.silence_dbfs:g} dBFS)"
        raise Silent(path, reason, duration_s)


def wave_windows(wave: np.ndarray, spec: ModelSpec, path: str = "") -> Iterator[np.ndarray]:
    """The kept windows of a decoded waveform."""
    n = spec.window_samples
    starts = window_starts(wave.shape[0], n, spec.window.max_windows)
    duration_s = wave.shape[0] / spec.audio.sample_rate
    return _voiced((crop(wave, s, n) for s in starts), spec, path, duration_s)


def _stream(path: str, spec: ModelSpec, frames: int, rate: int) -> Iterator[np.ndarray]:
    """Windows read one at a time from the file (the same starts as :func:`wave_windows`)."""
    n, target = spec.window_samples, spec.audio.sample_rate
    total = round(frames * target / rate)
    try:
        with sf.SoundFile(path) as f:
            for start in window_starts(total, n, spec.window.max_windows):
                f.seek(round(start * rate / target))
                data = f.read(round(n * rate / target), dtype="float32", always_2d=True)
                yield crop(resample(to_mono(data), rate, target), 0, n)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(path, f"not audio or corrupt ({e})") from e


def file_windows(
    source: Source, spec: ModelSpec, reader: Reader | None = None
) -> tuple[float, Iterator[np.ndarray]]:
    """A file's duration and its kept windows; raises AudioError for an unusable file.

    ``reader`` (e.g. the decoded-audio cache) supplies the waveform instead of decoding it here.
    """
    wave = _whole(source, spec, reader)
    if wave is None:
        return _streamed(str(source), spec)
    return wave.shape[0] / spec.audio.sample_rate, wave_windows(wave, spec, source_name(source))


def _whole(source: Source, spec: ModelSpec, reader: Reader | None) -> np.ndarray | None:
    """The decoded waveform, or None for a file long enough to be streamed (audio already in
    memory never is)."""
    if reader is not None:
        return reader(source_name(source))
    if isinstance(source, Waveform):
        return load_audio(source, spec.audio)
    info = audio_info(source)
    if info.frames < 0 or info.duration_s <= STREAM_ABOVE_S:
        return load_audio(source, spec.audio)
    return None


def _streamed(path: str, spec: ModelSpec) -> tuple[float, Iterator[np.ndarray]]:
    """A long recording's duration and its kept windows, read one at a time."""
    info = audio_info(path)
    check_duration(info.duration_s, spec.audio, path)
    windows = _stream(path, spec, info.frames, info.sample_rate)
    return info.duration_s, _voiced(windows, spec, path, info.duration_s)


@dataclass
class Scored:
    """One recording's pooled class probabilities, or the reason it has none."""

    probs: np.ndarray | None = None
    windows: int = 0
    duration_s: float = 0.0
    error: str | None = None
    silent: bool = False  # the error is silence: no sound above the floor, not a broken file
    speech_s: float | None = None  # what ``score``'s ``speech`` counted (None: not asked)
    logits: np.ndarray | None = None  # (windows, n_classes), when ``score`` is asked to keep them


class _Batches:
    """Windows of many recordings in fixed-size batches through the model; sums per recording.

    Recordings handed to ``count`` have their speech counted with the batch their windows end
    in, by ``speech`` in one batched call, in the caller's thread: torch's small ops cost three
    times as much in a second thread of a 2-core machine (measured), so the decode threads run
    no torch. Their waves wait for that batch: memory holds at most one batch's files. A
    streamed recording that turns out unreadable while counted gets its error in ``errors``.
    """

    def __init__(self, model, n, n_classes, batch_size, precision, speech=None, keep=False):
        self.model, self.batch_size, self.precision = model, batch_size, precision
        self.speech: SpeechCount | None = speech
        self.logits: list[list[np.ndarray]] | None = [[] for _ in range(n)] if keep else None
        self.sums = np.zeros((n, n_classes))
        self.counts = np.zeros(n, dtype=int)
        self.speech_s: list[float | None] = [None] * n
        self.pending: list[tuple[int, np.ndarray]] = []
        self.recordings: list[tuple[int, tuple[Iterable[np.ndarray], int]]] = []
        self.errors: dict[int, str] = {}

    def add(self, index: int, window: np.ndarray) -> None:
        self.pending.append((index, window))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def count(self, index: int, blocks: Iterable[np.ndarray], rate: int) -> None:
        """Count recording ``index``'s speech with the next batch."""
        if self.speech is not None:
            self.recordings.append((index, (blocks, rate)))

    def flush(self) -> None:
        if self.pending:
            idx = np.array([i for i, _ in self.pending])
            logits = window_logits(
                self.model, np.stack([w for _, w in self.pending]), self.precision
            )
            if self.logits is not None:
                for i, z in zip(idx.tolist(), logits):
                    self.logits[i].append(z)
            np.add.at(self.sums, idx, softmax(logits))
            np.add.at(self.counts, idx, 1)
            self.pending.clear()
        if self.recordings:
            try:
                counted = self.speech.count_many([r for _, r in self.recordings])
            except AudioError:  # a streamed file failed mid-way: count one by one to find it
                counted = [self._count_one(i, r) for i, r in self.recordings]
            for (i, _), seconds in zip(self.recordings, counted):
                self.speech_s[i] = seconds
            self.recordings.clear()

    def _count_one(self, index: int, recording) -> float | None:
        try:
            return self.speech.count_many([recording])[0]
        except AudioError as e:
            self.errors[index] = e.reason
            return None


def _decoded(
    source: Source, spec: ModelSpec, reader: Reader | None
) -> tuple[float, Iterable, Iterable[np.ndarray]]:
    """A file's duration, windows and blocks for its speech count, worked out here (in a worker
    thread); a streamed file's windows and blocks are read later, as they are used."""
    rate = spec.audio.sample_rate
    wave = _whole(source, spec, reader)
    if wave is None:
        duration, windows = _streamed(str(source), spec)
        return duration, windows, _Blocks(str(source), rate)
    return wave.shape[0] / rate, list(wave_windows(wave, spec, source_name(source))), [wave]


@dataclass(frozen=True)
class _Blocks:
    """A streamed recording's blocks, read afresh each time they are iterated."""

    path: str
    rate: int

    def __iter__(self) -> Iterator[np.ndarray]:
        return read_blocks(self.path, self.rate, STREAM_BLOCK_S)


def _ahead(pool, sources, spec, reader, depth: int) -> Iterator[Future]:
    """Futures of :func:`_decoded` in the order of ``paths``, at most ``depth`` in flight.

    The bound keeps memory flat: at most ``depth`` decoded files wait for the model.
    """
    pending: deque[Future] = deque()
    for source in sources:
        pending.append(pool.submit(_decoded, source, spec, reader))
        if len(pending) >= depth:
            yield pending.popleft()
    while pending:
        yield pending.popleft()


@torch.inference_mode()
def score(
    model: torch.nn.Module,
    spec: ModelSpec,
    paths: Sequence[Source],
    batch_size: int = 64,
    precision: str = "fp32",
    reader: Reader | None = None,
    on_done: Callable[[], None] | None = None,
    workers: int = 0,
    speech: SpeechCount | None = None,
    keep_logits: bool = False,
) -> list[Scored]:
    """Pooled probabilities of every recording (a file, or audio in memory), batching windows
    across recordings.

    The model runs where its weights are; a file that cannot be used gets its error and the rest
    go on. ``on_done`` is called after each recording (for progress bars). ``workers`` threads
    (0: one per CPU core but one, at most 8) decode the next files while the model runs;
    results keep the order of ``paths``. ``speech`` (e.g. a :class:`vgd.vad.SpeechCounter`)
    counts each file's speech seconds beside the model; it changes no probability.
    ``keep_logits`` keeps each recording's window logits too (calibration fits on them).
    """
    results = [Scored() for _ in paths]
    n_workers = workers or min(8, max(1, (os.cpu_count() or 2) - 1))
    n_classes = len(spec.labels)
    batches = _Batches(model, len(paths), n_classes, batch_size, precision, speech, keep_logits)
    with ThreadPoolExecutor(n_workers, thread_name_prefix="vgd-decode") as pool:
        for i, future in enumerate(_ahead(pool, paths, spec, reader, 2 * n_workers)):
            r = results[i]
            try:
                r.duration_s, windows, blocks = future.result()
                for w in windows:
                    batches.add(i, w)
                batches.count(i, blocks, spec.audio.sample_rate)
            except Silent as e:
                r.error, r.silent, r.duration_s = e.reason, True, e.duration_s
            except AudioError as e:
                r.error = e.reason
            if on_done:
                on_done()
    batches.flush()
    for i, r in enumerate(results):
        r.windows, r.speech_s = int(batches.counts[i]), batches.speech_s[i]
        r.error = batches.errors.get(i, r.error)
        if r.error is None:
            r.probs = batches.sums[i] / r.windows
            if batches.logits is not None:
                r.logits = np.stack(batches.logits[i]).reshape(-1, n_classes)
    return results


@torch.inference_mode()
def window_logits(
    model: torch.nn.Module, windows: np.ndarray, precision: str = "fp32"
) -> np.ndarray:
    """Logits (B, n_classes), at the model's temperature, of a (B, samples) float32 batch.

    The one model call: the model runs in eval mode where its weights are. :func:`score`,
    calibration and callers that choose their own windows (e.g. :mod:`vgd.segment`) all use it.
    """
    model.eval()
    device = next(model.parameters()).device
    waves = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).to(device)
    with autocast(device, precision):
        logits = model(waves).float()
    return logits.cpu().numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of (B, n_classes) logits, as torch computes them."""
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


def window_probs(
    model: torch.nn.Module, windows: np.ndarray, precision: str = "fp32"
) -> np.ndarray:
    """Class probabilities (B, n_classes) of a (B, samples) float32 batch of windows."""
    return softmax(window_logits(model, windows, precision))
