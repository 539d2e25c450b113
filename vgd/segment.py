"""Who speaks when, by gender: a recording becomes ``female``, ``male``, ``unknown`` and
``nonspeech`` segments.

The pure core works on a 10 ms frame grid: speech frames (from the VAD) and per-frame gender
posteriors become labels by a Viterbi search in which every gender turn inside a stretch of
speech (speech regions less than ``bridge_s`` apart) lasts at least ``min_turn_s``; runs of
labels become segments, and speech whose mean posterior is under ``min_confidence`` is called
``unknown``.

The I/O shell streams each file twice in blocks, so memory stays flat for hour-long recordings:
pass 1 runs the VAD (:mod:`vgd.vad`), pass 2 cuts model windows (``spec.window_samples``) that
slide by ``hop_s`` inside each stretch, its short pauses included as in a clip's windows (a
stretch shorter than a window is tiled to fill one, as :func:`vgd.inference.crop` does) and
sends them through the one model call,
:func:`vgd.inference.window_probs`, in batches shared across files. A frame's posterior is the
mean of the windows that cover it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vgd.formats import NONSPEECH, UNKNOWN, FileSegments, Segment
from vgd.vad import FRAME, SAMPLE_RATE, VadConfig, _merge, _runs, speech_regions

if TYPE_CHECKING:  # these modules import torch; the pure core stays numpy-only
    from vgd.audio import Source
    from vgd.checkpoint import LoadedModel

FRAME_S = 0.01  # the grid of posteriors, labels and scoring
CELL = 10  # frames per step of the turn search (0.1 s)
EPS = 1e-6  # posteriors are clipped here before the log: a zero would forbid a label outright


@dataclass(frozen=True)
class SegmentConfig:
    """How a recording is cut into gender segments (seconds throughout)."""

    # Pauses under 0.3 s are bridged (silero's 0.1 s splits read speech at every breath).
    vad: VadConfig = VadConfig(min_silence_s=0.3)
    hop_s: float = 1.0  # gender windows slide by this inside speech
    min_turn_s: float = 2.0  # inside a stretch of speech, a gender turn lasts at least this long
    # Speech regions less than this apart are one stretch: its windows span the pauses, as a
    # clip's do in ``vgd predict``, and a turn runs across them. A word alone between two pauses
    # is too short for a window of its own to say much; heard with its neighbours it is not.
    bridge_s: float = 1.0
    # Speech whose mean probability for its gender is under this is labelled ``unknown`` (0.5
    # or less: never, with two classes). The probabilities are the model's, with the temperature
    # its training fitted on whole clips; a 3-s window is less sure than a clip, so this is a
    # threshold on scores, not a promised error rate. The same default as ``vgd predict``.
    min_confidence: float = 0.7
    # Speech edges are moved in to where the signal stands this far above its local noise floor
    # (None: the VAD's edges as they are). Silero's probability falls ~0.1 s after a word ends.
    edge_margin_db: float | None = 15.0

    def __post_init__(self) -> None:
        checks = [
            (self.hop_s > 0, "hop_s", "must be > 0"),
            (
                self.edge_margin_db is None or self.edge_margin_db > 0,
                "edge_margin_db",
                "must be > 0",
            ),
            (self.min_turn_s >= 0, "min_turn_s", "must be >= 0"),
            (self.bridge_s >= 0, "bridge_s", "must be >= 0"),
            (0.0 <= self.min_confidence <= 1.0, "min_confidence", "must be in [0, 1]"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ValueError(f"SegmentConfig.{name} {rule}, got {getattr(self, name)!r}")


# ----------------------------------------------------------------------------- the pure core


def to_frame(seconds: float) -> int:
    """The frame boundary nearest to ``seconds``."""
    return int(round(seconds / FRAME_S))


def n_frames(duration_s: float) -> int:
    """Frames needed to cover ``duration_s`` (the last may be partial)."""
    return max(math.ceil(duration_s / FRAME_S - 1e-9), 1)


def region_frames(regions: Sequence[tuple[float, float]], frames: int) -> list[tuple[int, int]]:
    """Speech regions in seconds → non-empty [start, end) frame ranges within ``frames``."""
    out = []
    for start, end in regions:
        a, b = to_frame(start), min(to_frame(end), frames)
        if b > a:
            out.append((a, b))
    return out


def frame_db(wave: np.ndarray, frame_samples: int) -> np.ndarray:
    """Energy in dB (re full scale) of each whole ``frame_samples`` frame of ``wave``."""
    frames = wave[: wave.size // frame_samples * frame_samples].reshape(-1, frame_samples)
    return 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)


def _active_runs(active: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """[start, end) runs of True, gaps shorter than ``min_gap`` bridged (the VAD's own rules)."""
    return [(int(a), int(b)) for a, b in _merge(_runs(active).tolist(), min_gap)]


def stretches(speech: Sequence[tuple[int, int]], bridge: int) -> list[tuple[int, int]]:
    """Speech frame ranges (sorted) joined across gaps shorter than ``bridge`` frames."""
    return [(int(a), int(b)) for a, b in _merge([list(r) for r in speech], bridge)]


def tighten_speech(
    speech: Sequence[tuple[int, int]],
    db: np.ndarray,
    margin_db: float,
    min_pause: int,
    context: int = 200,
) -> list[tuple[int, int]]:
    """Speech frame ranges cut to the frames that stand above the local noise floor.

    The VAD finds speech but places its edges late (its LSTM's probability decays after a word
    ends) and bridges pauses it sees shrunk. Inside each range, a frame is kept when its energy
    is ``margin_db`` above the floor (the 5th-percentile frame within ``context`` frames of the
    range), or halfway from the floor to the range's loud frames (95th percentile) when that is
    less; gaps under ``min_pause`` frames are bridged. Ranges only shrink or split, never grow,
    and a range with nothing above the floor is kept whole: energy cannot overrule the VAD's
    "speech" where speech and noise are equally loud.
    """
    out: list[tuple[int, int]] = []
    for a, b in speech:
        local = db[max(a - context, 0) : min(b + context, db.size)]
        inside = db[a:b]
        if local.size == 0 or inside.size == 0:
            out.append((a, b))
            continue
        floor = float(np.percentile(local, 5))
        loud = float(np.percentile(inside, 95))
        kept = _active_runs(inside > floor + min(margin_db, (loud - floor) / 2), min_pause)
        out += [(a + s, a + e) for s, e in kept] if kept else [(a, b)]
    return out


def runs(values: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of equal consecutive values."""
    if values.size == 0:
        return []
    edges = np.flatnonzero(values[1:] != values[:-1]) + 1
    bounds = [0, *edges.tolist(), values.size]
    return list(zip(bounds[:-1], bounds[1:]))


def min_turn_path(logp: np.ndarray, min_len: int) -> np.ndarray:
    """The most likely class per frame when every run of one class lasts ``min_len`` frames or more.

    ``logp`` is (T, C) log posteriors. A two-or-more-state HMM with a minimum duration, solved by
    dynamic programming: ``best[t][s]`` scores frames [0, t) ending in a run of ``s`` that has
    lasted at least ``min_len``; a run either continues one frame or a new one starts with
    ``min_len`` frames at once. Fewer than ``2 * min_len`` frames allow no change: one class.
    """
    T, C = logp.shape
    D = max(min_len, 1)
    if T < 2 * D or C == 1:
        return np.full(T, int(logp.sum(axis=0).argmax()))
    cum = np.vstack([np.zeros(C), np.cumsum(logp, axis=0)]).tolist()
    lp = logp.tolist()
    best = [[-math.inf] * C for _ in range(T + 1)]
    came = [[-2] * C for _ in range(T + 1)]  # -2: run starts at frame 0; -1: continued; s: from s
    best[D] = list(cum[D])
    for t in range(D + 1, T + 1):
        prev, back, row, now, c0 = best[t - 1], best[t - D], lp[t - 1], cum[t], cum[t - D]
        for s in range(C):
            score, origin = prev[s] + row[s], -1
            for q in range(C):
                if q != s and back[q] + now[s] - c0[s] > score:
                    score, origin = back[q] + now[s] - c0[s], q
            best[t][s], came[t][s] = score, origin
    path = np.empty(T, dtype=int)
    t, s = T, int(np.argmax(best[T]))
    while t > 0:
        origin = came[t][s]
        if origin == -1:
            path[t - 1] = s
            t -= 1
        elif origin == -2:
            path[:t] = s
            t = 0
        else:
            path[t - D : t] = s
            t, s = t - D, origin
    return path


def frame_labels(
    speech: Sequence[tuple[int, int]], posteriors: np.ndarray, min_turn_frames: int
) -> np.ndarray:
    """Class index per frame (-1: non-speech); each speech range is decoded on its own.

    The search runs on cells of ``CELL`` frames (their log posteriors summed), so turn changes
    inside continuous speech fall on a 0.1 s grid: ten times fewer steps of a Python loop, and
    finer than 3-s windows can place a change anyway. Speech edges stay on the 10 ms grid.
    """
    labels = np.full(posteriors.shape[0], -1, dtype=int)
    logp = np.log(np.clip(posteriors, EPS, 1.0))
    min_cells = math.ceil(min_turn_frames / CELL)
    for a, b in speech:
        cells = np.add.reduceat(logp[a:b], np.arange(0, b - a, CELL), axis=0)
        labels[a:b] = np.repeat(min_turn_path(cells, min_cells), CELL)[: b - a]
    return labels


def to_segments(
    labels: np.ndarray,
    posteriors: np.ndarray,
    nonspeech_conf: np.ndarray,
    names: Sequence[str],
    duration_s: float,
    min_confidence: float,
) -> list[Segment]:
    """Runs of frame labels as segments; gendered speech under ``min_confidence`` → unknown.

    A speech segment's confidence is the mean posterior of its class over its frames, a
    non-speech segment's the mean of 1 - the VAD's speech probability. Neighbours that end up
    with the same label (two unknowns) are merged, their confidences weighted by length.
    """
    raw = []
    for a, b in runs(labels):
        k = int(labels[a])
        conf = float(nonspeech_conf[a:b].mean() if k < 0 else posteriors[a:b, k].mean())
        name = NONSPEECH if k < 0 else names[k] if conf >= min_confidence else UNKNOWN
        raw.append((a, b, name, conf))
    merged: list[list] = []
    for a, b, name, conf in raw:
        if merged and merged[-1][2] == name:
            m = merged[-1]
            m[3] = (m[3] * (m[1] - m[0]) + conf * (b - a)) / (b - m[0])
            m[1] = b
        else:
            merged.append([a, b, name, conf])
    return [
        Segment(round(a * FRAME_S, 3), round(min(b * FRAME_S, duration_s), 3), name, round(c, 4))
        for a, b, name, c in merged
    ]


def decode(
    speech: Sequence[tuple[int, int]],
    posteriors: np.ndarray,
    nonspeech_conf: np.ndarray,
    names: Sequence[str],
    duration_s: float,
    config: SegmentConfig = SegmentConfig(),
    voiced: Sequence[tuple[int, int]] | None = None,
) -> list[Segment]:
    """Speech frame ranges, (frames, C) gender posteriors and per-frame non-speech confidence
    → segments covering [0, duration_s].

    Gender turns are decoded over the stretches of ``speech``; ``voiced`` (the same speech with
    tighter edges and short pauses cut out, see :func:`tighten_speech`), or else ``speech``,
    then says which of their frames are labelled speech, so a pause splits the speech without
    splitting the turn around it.
    """
    turns = stretches(speech, to_frame(config.bridge_s))
    labels = frame_labels(turns, posteriors, to_frame(config.min_turn_s))
    keep = np.zeros(labels.size, dtype=bool)
    for a, b in speech if voiced is None else voiced:
        keep[a:b] = True
    labels[~keep] = -1
    return to_segments(labels, posteriors, nonspeech_conf, names, duration_s, config.min_confidence)


def window_plan(
    speech: Sequence[tuple[int, int]], window_frames: int, hop_frames: int
) -> list[tuple[int, int, int, int]]:
    """Gender windows as (first frame, frames to read, credit from, credit to), sorted.

    Inside a region of at least a window, windows are evenly spaced at most ``hop_frames``
    apart, the first at its start and the last flush with its end; a shorter region is one
    window of the region alone (tiled to the model's length when cut).
    """
    plan = []
    for a, b in speech:
        if b - a <= window_frames:
            plan.append((a, b - a, a, b))
            continue
        count = math.ceil((b - a - window_frames) / hop_frames) + 1
        for start in np.linspace(a, b - window_frames, count).round().astype(int).tolist():
            plan.append((start, window_frames, start, start + window_frames))
    return plan


# ----------------------------------------------------------------------------- I/O shell


def cut_windows(
    blocks: Iterator[np.ndarray], plan: Sequence[tuple[int, int, int, int]], frame_samples: float
) -> Iterator[tuple[np.ndarray, int, int]]:
    """(samples, credit from, credit to) for each planned window, from blocks read in order.

    Keeps only the samples from the current window on: memory is a window plus a block.
    """
    buf, buf_start = np.zeros(0, dtype=np.float32), 0
    for first, length, c0, c1 in plan:
        a, b = round(first * frame_samples), round((first + length) * frame_samples)
        while buf_start + buf.size < b:
            block = next(blocks, None)
            if block is None:
                break
            buf = np.concatenate([buf, block]) if buf.size else block
        if a > buf_start:  # the plan is sorted: nothing before ``a`` is needed again
            drop = min(a - buf_start, buf.size)
            buf, buf_start = buf[drop:], buf_start + drop
        yield buf[a - buf_start : b - buf_start], c0, c1


class _EnergyTrack:
    """Energy (dB) per frame of a recording pushed in blocks of any length."""

    def __init__(self, frame_samples: int):
        self.frame_samples = frame_samples
        self._pending = np.zeros(0, dtype=np.float32)
        self._parts: list[np.ndarray] = []

    def push(self, block: np.ndarray) -> None:
        samples = np.concatenate([self._pending, block]) if self._pending.size else block
        whole = samples.size // self.frame_samples * self.frame_samples
        self._parts.append(frame_db(samples[:whole], self.frame_samples))
        self._pending = samples[whole:]

    def finish(self, frames: int) -> np.ndarray:
        """The ``frames`` energies (a last partial frame zero-padded; silence past the end)."""
        if self._pending.size:
            self.push(np.zeros(self.frame_samples - self._pending.size, dtype=np.float32))
        db = np.concatenate([*self._parts, np.full(frames, -120.0)])
        return db[:frames]


class _Job:
    """One recording between its VAD pass and its last window's probabilities."""

    def __init__(self, index: int, source: Source, samples: int, probs: np.ndarray, classes: int):
        self.index, self.source, self.path = index, source, str(source)  # a Waveform: its name
        self.duration_s = samples / SAMPLE_RATE
        frames = n_frames(self.duration_s)
        self.sums = np.zeros((frames, classes))  # window probabilities summed per frame
        self.counts = np.zeros(frames, dtype=np.int32)
        vad_of_frame = (np.arange(frames) * FRAME_S * SAMPLE_RATE / FRAME).astype(int)
        speech_prob = probs[np.minimum(vad_of_frame, probs.size - 1)]
        self.nonspeech_conf = 1.0 - speech_prob.astype(np.float64)
        self.speech: list[tuple[int, int]] = []  # the VAD's regions: windows and turns
        self.voiced: list[tuple[int, int]] | None = None  # their tightened frames, when asked
        self.pending = 0  # windows queued but not yet through the model
        self.closed = False  # every window is queued
        self.error: str | None = None

    def add(self, c0: int, c1: int, probs: np.ndarray) -> None:
        self.sums[c0:c1] += probs
        self.counts[c0:c1] += 1
        self.pending -= 1

    def result(self, names: Sequence[str], config: SegmentConfig) -> FileSegments:
        if self.error is not None:
            return FileSegments(self.path, self.duration_s, error=self.error)
        posteriors = self.sums / np.maximum(self.counts, 1)[:, None]
        segs = decode(
            self.speech,
            posteriors,
            self.nonspeech_conf,
            names,
            self.duration_s,
            config,
            self.voiced,
        )
        return FileSegments(self.path, self.duration_s, segs)


class Segmenter:
    """Segments recordings with a loaded gender model and Silero VAD.

    ``block_s`` seconds are read at a time (memory), ``batch_size`` windows go through the model
    at once, across files (16: on a CPU as fast as 64, and ~120 MB less peak memory).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        config: SegmentConfig = SegmentConfig(),
        batch_size: int = 16,
        precision: str = "fp32",
        block_s: float = 60.0,
    ):
        from vgd.vad import SpeechDetector

        if batch_size < 1 or block_s <= 0:
            raise ValueError(
                f"batch_size must be >= 1 and block_s > 0, got {batch_size}, {block_s}"
            )
        self.loaded, self.config = loaded, config
        self.batch_size, self.precision, self.block_s = batch_size, precision, block_s
        self.detector = SpeechDetector()
        self.names = tuple(loaded.labels)
        clash = {NONSPEECH, UNKNOWN} & set(self.names)
        if clash:
            raise ValueError(f"model labels {self.names} use reserved name(s) {sorted(clash)}")

    def segment_paths(
        self, paths: Sequence[Source], on_done: Callable[[], None] | None = None
    ) -> list[FileSegments]:
        """Segments of every file (or audio in memory), in order; a file that cannot be used
        gets its error.

        A file's windows join one queue with the next file's, so batches are full; a file's
        result is built (and its per-frame arrays freed) as soon as its last window is scored.
        """
        from vgd.audio import AudioError

        results: list[FileSegments] = [FileSegments(str(p)) for p in paths]
        open_jobs: list[_Job] = []
        queue: list[tuple[_Job, int, int, np.ndarray]] = []
        for i, source in enumerate(paths):
            try:
                job = self._vad_pass(i, source)
            except AudioError as e:
                results[i].error = e.reason
            else:
                open_jobs.append(job)
                try:
                    for window, c0, c1 in self._windows(job):
                        queue.append((job, c0, c1, window))
                        job.pending += 1
                        if len(queue) >= self.batch_size:
                            self._run(queue)
                except AudioError as e:
                    job.error = e.reason
                job.closed = True
                open_jobs = self._finish(open_jobs, results)
            if on_done:
                on_done()
        self._run(queue)
        self._finish(open_jobs, results)
        return results

    def _vad_pass(self, index: int, source: Source) -> _Job:
        """Pass 1: speech probabilities of the whole file, then its speech frame ranges."""
        from vgd.audio import AudioError, audio_info, read_blocks

        audio_info(source)  # missing, empty, not audio: one clear error before decoding
        stream, parts, samples = self.detector.stream(), [], 0
        energy = _EnergyTrack(round(FRAME_S * SAMPLE_RATE))
        for block in read_blocks(source, SAMPLE_RATE, self.block_s):
            parts.append(stream.push(block))
            energy.push(block)
            samples += block.size
        if samples == 0:
            raise AudioError(str(source), "empty (0 audio frames)")
        parts.append(stream.flush())
        probs = np.concatenate(parts)
        job = _Job(index, source, samples, probs, len(self.names))
        config = self.config
        regions = speech_regions(probs, self.detector.hop_s, config.vad, job.duration_s)
        job.speech = region_frames(regions, job.sums.shape[0])
        if config.edge_margin_db is not None:
            db, pause = energy.finish(job.sums.shape[0]), to_frame(config.vad.min_silence_s)
            job.voiced = tighten_speech(job.speech, db, config.edge_margin_db, pause)
        return job

    def _windows(self, job: _Job) -> Iterator[tuple[np.ndarray, int, int]]:
        """Pass 2: the model's windows over the speech, cut from the file read again in blocks."""
        from vgd.audio import read_blocks
        from vgd.inference import crop

        spec = self.loaded.spec
        rate, n = spec.audio.sample_rate, spec.window_samples
        hop = max(to_frame(self.config.hop_s), 1)
        turns = stretches(job.speech, to_frame(self.config.bridge_s))
        plan = window_plan(turns, max(to_frame(n / rate), 1), hop)
        if not plan:
            return
        blocks = read_blocks(job.source, rate, self.block_s)
        for samples, c0, c1 in cut_windows(blocks, plan, rate * FRAME_S):
            yield crop(samples, 0, n), c0, c1

    def _run(self, queue: list[tuple[_Job, int, int, np.ndarray]]) -> None:
        """The queued windows through the model; their probabilities credited to their frames."""
        from vgd.inference import window_probs

        if not queue:
            return
        probs = window_probs(self.loaded.model, np.stack([w for *_, w in queue]), self.precision)
        for (job, c0, c1, _), p in zip(queue, probs):
            job.add(c0, c1, p)
        queue.clear()

    def _finish(self, open_jobs: list[_Job], results: list[FileSegments]) -> list[_Job]:
        """Results of the closed jobs whose windows are all scored; the jobs still open."""
        still = []
        for job in open_jobs:
            if job.closed and job.pending == 0:
                results[job.index] = job.result(self.names, self.config)
            else:
                still.append(job)
        return still


def segment_paths(
    loaded: LoadedModel,
    paths: Sequence[str | os.PathLike],
    config: SegmentConfig = SegmentConfig(),
    batch_size: int = 16,
    progress: bool = True,
) -> list[FileSegments]:
    """Segment every audio file under ``paths`` (folders expanded); missing ones are error rows."""
    from vgd.audio import find_audio
    from vgd.progress import Progress

    files, missing = find_audio(paths)
    bar = Progress(len(files), "segmenting", unit="files", enabled=progress)
    results = Segmenter(loaded, config, batch_size).segment_paths(files, on_done=bar.update)
    bar.close()
    return [FileSegments(e.path, error=e.reason) for e in missing] + results
