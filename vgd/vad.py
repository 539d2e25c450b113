"""Speech activity detection with Silero VAD: which parts of a recording are speech at all.

The model (silero-vad's TorchScript weights, shipped inside its wheel, ~2 MB) gives one speech
probability per 32 ms frame (512 samples at 16 kHz); ``speech_regions`` turns those into
(start, end) seconds with the same rules as silero's ``get_speech_timestamps``, in numpy.

Silero's own loop calls the model once per frame, which costs ~27 s per hour of audio on one
CPU thread. The model is a stateless per-frame encoder (the frame plus 64 samples of the one
before) feeding an LSTM cell, so here the encoder runs on a block of frames at once and the same
weights run as an ``nn.LSTM`` over the block; the probabilities match silero's loop to ~1e-7.

The model is loaded from the installed package's data folder, never downloaded, and ``torch``
and silero are imported only when a detector first needs them: ``import vgd.vad`` is numpy only.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

SAMPLE_RATE = 16000  # the only rate the 16 kHz model (the one used here) accepts
FRAME = 512  # samples per probability: 32 ms
CONTEXT = 64  # samples of the previous frame the model sees before each frame
HIDDEN = 128  # LSTM state size
N_FFT = 256  # silero's STFT: 256-sample Hann windows, hop 128, the frame padded by 64 (reflect)
BLOCK_FRAMES = 1024  # frames per batched forward (~33 s): bounds memory, amortises the call cost
CHECK_EVERY = 32 * FRAME  # samples (~1 s) a speech counter runs before it first looks


@dataclass(frozen=True)
class VadConfig:
    """How frame probabilities become speech regions (silero's defaults, in seconds)."""

    threshold: float = 0.5  # a frame at or above this starts (or continues) speech
    neg_threshold: float | None = None  # below this, speech stops; None: threshold - 0.15
    min_speech_s: float = 0.25  # shorter regions (after merging) are dropped
    min_silence_s: float = 0.1  # shorter gaps between regions are filled
    pad_s: float = 0.03  # added to both ends of each region, clipped to the recording

    def __post_init__(self) -> None:
        checks = [
            (0.0 < self.threshold <= 1.0, "threshold", "must be in (0, 1]"),
            (self.off_threshold <= self.threshold, "neg_threshold", "must be <= threshold"),
            (self.min_speech_s >= 0, "min_speech_s", "must be >= 0"),
            (self.min_silence_s >= 0, "min_silence_s", "must be >= 0"),
            (self.pad_s >= 0, "pad_s", "must be >= 0"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ValueError(f"VadConfig.{name} {rule}, got {getattr(self, name)!r}")

    @property
    def off_threshold(self) -> float:
        """The probability below which a speech region ends (silero's rule when unset)."""
        if self.neg_threshold is None:
            return max(self.threshold - 0.15, 0.01)
        return self.neg_threshold


# ----------------------------------------------------------------------------- the pure core


def _hysteresis(probs: np.ndarray, on: float, off: float) -> np.ndarray:
    """Per-frame speech flags: on at ``p >= on``, staying on until ``p < off``."""
    decisive = (probs >= on) | (probs < off)
    # Each frame takes the decision of the last decisive frame at or before it; none: silence.
    last = np.maximum.accumulate(np.where(decisive, np.arange(probs.size), -1))
    return np.where(last >= 0, probs[np.maximum(last, 0)] >= on, False)


def _runs(flags: np.ndarray) -> np.ndarray:
    """(K, 2) [start, end) frame indices of the runs of True in ``flags``."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)


def _merge(regions: list[list[float]], max_gap: float) -> list[list[float]]:
    """Join consecutive regions separated by less than ``max_gap`` seconds (or overlapping)."""
    merged: list[list[float]] = []
    for start, end in regions:
        if merged and start - merged[-1][1] < max_gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def speech_regions(
    probs: np.ndarray,
    hop_s: float,
    config: VadConfig = VadConfig(),
    duration_s: float | None = None,
) -> list[tuple[float, float]]:
    """Speech (start, end) seconds from per-frame probabilities: hysteresis, gap filling,
    dropping short regions, then padding clipped to [0, duration_s].

    Frame ``i`` covers [i * hop_s, (i + 1) * hop_s); ``duration_s`` defaults to
    ``len(probs) * hop_s`` (pass the true length: the last frame is usually part padding).
    """
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    duration = probs.size * hop_s if duration_s is None else duration_s
    flags = _hysteresis(probs, config.threshold, config.off_threshold)
    regions = [[s * hop_s, min(e * hop_s, duration)] for s, e in _runs(flags)]
    regions = _merge(regions, config.min_silence_s)
    regions = [r for r in regions if r[1] - r[0] >= config.min_speech_s]
    padded = [[max(s - config.pad_s, 0.0), min(e + config.pad_s, duration)] for s, e in regions]
    return [(s, e) for s, e in _merge(padded, 0.0)]


def speech_fraction(regions: list[tuple[float, float]], duration_s: float) -> float:
    """The share of ``duration_s`` covered by (non-overlapping) ``regions``; 0 when empty."""
    if duration_s <= 0:
        return 0.0
    return float(min(sum(e - s for s, e in regions) / duration_s, 1.0))


# ----------------------------------------------------------------------------- the model


def _model_path() -> Path:
    """The TorchScript file inside the installed silero-vad package.

    Found with ``find_spec`` rather than by importing ``silero_vad``: importing it runs
    ``torch.set_num_threads(1)`` for the whole process (silero_vad/model.py).
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("speech detection needs silero-vad: pip install 'silero-vad==6.2.3'")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.jit"
    if not path.is_file():
        raise RuntimeError(f"silero-vad is installed but has no model file at {path}")
    return path


def load_silero_jit() -> torch.jit.ScriptModule:
    """Silero's TorchScript model (the streaming one: ``model(chunk_512, 16000)``), on CPU."""
    import torch

    path = _model_path()
    try:
        with warnings.catch_warnings():  # torch 2.11 deprecates TorchScript; silero ships it
            warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", DeprecationWarning)
            model = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as e:
        raise RuntimeError(f"could not load the silero VAD model from {path}") from e
    return model.eval()


class _BatchedSilero:
    """Silero's 16 kHz network split so a block of frames runs as one call.

    Silero's STFT is a convolution with a periodic-Hann-windowed DFT basis; here it is the same
    transform by FFT, ~2.5x faster (magnitudes agree to ~1e-6), the phase it also computes and
    never uses left out.
    """

    def __init__(self, jit: torch.jit.ScriptModule):
        import torch

        try:  # silero's internals (checked against 6.2.3), not its public API
            self.net = jit._model  # the 16 kHz branch: stft -> encoder -> decoder (cell, head)
            context, cell = int(self.net.context_size_samples), self.net.decoder.rnn
            basis = self.net.stft.forward_basis_buffer[:, 0].double()  # (2 * bins, N_FFT)
            hop = int(self.net.stft.hop_length)
        except (AttributeError, RuntimeError) as e:
            raise RuntimeError("silero-vad's model layout changed; vgd expects 6.2.x") from e
        if context != CONTEXT:
            raise RuntimeError(f"silero VAD model wants {context} context samples, vgd {CONTEXT}")
        self.window = torch.hann_window(N_FFT, periodic=True)
        if hop != N_FFT // 2 or (basis - _dft_basis(self.window)).abs().max() > 1e-6:
            raise RuntimeError("silero-vad's STFT is not the Hann-windowed DFT vgd expects")
        self.lstm = torch.nn.LSTM(HIDDEN, HIDDEN, batch_first=True).eval()
        with torch.no_grad():  # the cell's weights, run over a sequence in one fused call
            self.lstm.weight_ih_l0.copy_(cell.weight_ih)
            self.lstm.weight_hh_l0.copy_(cell.weight_hh)
            self.lstm.bias_ih_l0.copy_(cell.bias_ih)
            self.lstm.bias_hh_l0.copy_(cell.bias_hh)

    def magnitudes(self, x: torch.Tensor) -> torch.Tensor:
        """(N, CONTEXT + FRAME) → (N, N_FFT // 2 + 1, 4) STFT magnitudes, as silero's STFT."""
        import torch

        padded = torch.nn.functional.pad(x[:, None], (0, CONTEXT), mode="reflect")[:, 0]
        frames = padded.unfold(1, N_FFT, N_FFT // 2) * self.window  # (N, 4, N_FFT)
        return torch.fft.rfft(frames, dim=-1).abs().transpose(1, 2)

    def __call__(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """(N, CONTEXT + FRAME) frames with context, (h, c) each (1, 1, HIDDEN) → (N,) probs."""
        feats = self.net.encoder(self.magnitudes(x)).squeeze(-1)  # (N, HIDDEN)
        hidden, state = self.lstm(feats[None], state)  # (1, N, HIDDEN)
        probs = self.net.decoder.decoder(hidden[0].unsqueeze(-1))  # (N, 1, 1)
        return probs.reshape(-1), state

    def fresh(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, CONTEXT + FRAME) frames of B recordings, each from a zero state → (B, T) probs."""
        import torch

        b, t, _ = x.shape
        feats = self.net.encoder(self.magnitudes(x.reshape(b * t, -1))).squeeze(-1)
        zeros = torch.zeros(1, b, HIDDEN)
        hidden, _ = self.lstm(feats.reshape(b, t, HIDDEN), (zeros, zeros.clone()))
        probs = self.net.decoder.decoder(hidden.reshape(b * t, HIDDEN).unsqueeze(-1))
        return probs.reshape(b, t)


def _dft_basis(window: torch.Tensor) -> torch.Tensor:
    """(2 * bins, N_FFT) windowed DFT rows, real parts then imaginary: silero's STFT weights."""
    import torch

    n = torch.arange(N_FFT, dtype=torch.float64)
    k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)[:, None]
    angle = 2 * math.pi * k * n / N_FFT
    return torch.cat([torch.cos(angle), -torch.sin(angle)]) * window.double()


class SpeechStream:
    """Probabilities for consecutive chunks of one 16 kHz recording; push chunks in order.

    Keeps the LSTM state, the previous frame's last 64 samples and under 512 pending samples,
    so memory is flat however long the recording is.
    """

    def __init__(self, model: _BatchedSilero, block_frames: int = BLOCK_FRAMES):
        import torch

        self._model, self._block = model, block_frames
        zeros = torch.zeros(1, 1, HIDDEN)
        self._state = (zeros, zeros.clone())
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Probabilities (float32) of every frame completed by ``chunk`` (any length)."""
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 1:
            raise ValueError(f"push expects a mono (samples,) chunk, got shape {chunk.shape}")
        samples = np.concatenate([self._pending, chunk])
        n = samples.size // FRAME * FRAME
        self._pending = samples[n:]
        step = self._block * FRAME
        out = [self._frames(samples[i : min(i + step, n)]) for i in range(0, n, step)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def flush(self) -> np.ndarray:
        """The last partial frame, zero-padded as silero does; empty when none is pending."""
        if self._pending.size == 0:
            return np.zeros(0, dtype=np.float32)
        last = np.pad(self._pending, (0, FRAME - self._pending.size))
        self._pending = np.zeros(0, dtype=np.float32)
        return self._frames(last)

    def _frames(self, samples: np.ndarray) -> np.ndarray:
        """Run whole frames (``samples.size`` a multiple of FRAME) and advance the state."""
        import torch

        frames = samples.reshape(-1, FRAME)
        contexts = np.concatenate([self._context[None], frames[:-1, -CONTEXT:]])
        x = torch.from_numpy(np.ascontiguousarray(np.concatenate([contexts, frames], axis=1)))
        with torch.inference_mode():
            probs, self._state = self._model(x, self._state)
        self._context = frames[-1, -CONTEXT:].copy()
        return probs.numpy().astype(np.float32, copy=False)


class SpeechDetector:
    """Silero VAD, loaded on first use: speech probability per 32 ms frame.

    Uses torch's current thread count (``torch.set_num_threads``); it never changes it.
    """

    def __init__(self, block_frames: int = BLOCK_FRAMES):
        if block_frames < 1:
            raise ValueError(f"block_frames must be >= 1, got {block_frames}")
        self.block_frames = block_frames
        self._model: _BatchedSilero | None = None

    @property
    def hop_s(self) -> float:
        """Seconds per probability."""
        return FRAME / SAMPLE_RATE

    def stream(self) -> SpeechStream:
        """A fresh stream for one recording (16 kHz chunks, pushed in order)."""
        if self._model is None:
            self._model = _BatchedSilero(load_silero_jit())
        return SpeechStream(self._model, self.block_frames)

    def batch_probs(self, waves: np.ndarray) -> np.ndarray:
        """(B, samples) 16 kHz starts of B recordings, whole frames → (B, frames) float32
        probabilities, in one call: what a fresh stream gives each of them."""
        import torch

        if self._model is None:
            self._model = _BatchedSilero(load_silero_jit())
        frames = np.asarray(waves, dtype=np.float32).reshape(len(waves), -1, FRAME)
        contexts = np.concatenate(
            [np.zeros_like(frames[:, :1, :CONTEXT]), frames[:, :-1, -CONTEXT:]], axis=1
        )
        x = torch.from_numpy(np.ascontiguousarray(np.concatenate([contexts, frames], axis=2)))
        with torch.inference_mode():
            return self._model.fresh(x).numpy().astype(np.float32, copy=False)

    def frame_probs(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """(ceil(seconds / hop_s),) float32 speech probabilities of a whole mono recording."""
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"frame_probs expects a mono (samples,) wave, got shape {wave.shape}")
        if sample_rate != SAMPLE_RATE:
            from vgd.audio import resample

            wave = resample(wave, sample_rate, SAMPLE_RATE)
        stream = self.stream()
        return np.concatenate([stream.push(wave), stream.flush()])

    def regions(
        self, wave: np.ndarray, sample_rate: int, config: VadConfig = VadConfig()
    ) -> list[tuple[float, float]]:
        """Speech (start, end) seconds of a whole mono recording."""
        probs = self.frame_probs(wave, sample_rate)
        return speech_regions(probs, self.hop_s, config, duration_s=len(wave) / sample_rate)


class SpeechCounter:
    """Seconds of speech in whole recordings, for a file-level speech or non-speech verdict.

    Counting stops once it reaches ``enough_s``: the verdict cannot change after that, so a
    speech file costs the VAD only its first seconds, while a file without speech is read to
    the end. The model is loaded here, not lazily on first use.
    """

    def __init__(self, config: VadConfig = VadConfig(), enough_s: float = math.inf):
        self.config, self.enough_s = config, enough_s
        self.detector = SpeechDetector()
        self.detector.stream()  # loads the model now, not lazily inside a thread

    def __call__(self, blocks: Iterable[np.ndarray], sample_rate: int) -> float:
        """Speech seconds of a recording given as consecutive mono blocks at ``sample_rate``."""
        stream, probs, samples = self.detector.stream(), [], 0
        for block in blocks:
            if sample_rate != SAMPLE_RATE:
                from vgd.audio import resample

                block = resample(block, sample_rate, SAMPLE_RATE)
            for chunk in _growing_chunks(block, samples):
                probs.append(stream.push(chunk))
                samples += chunk.size
                found = self._seconds(probs, None)
                if found >= self.enough_s:
                    return found
        probs.append(stream.flush())
        return self._seconds(probs, samples / SAMPLE_RATE)

    def count_many(self, recordings: Sequence[tuple[Iterable[np.ndarray], int]]) -> list[float]:
        """Speech seconds of each (blocks, sample_rate) recording, as ``self(blocks, rate)``.

        Every recording's first ~1 s goes through the model in one batched call, which is all
        that speech needs; only recordings whose first second is not enough are read on, one
        by one. Per recording, the model's fixed cost is most of the VAD's on short files.
        """
        heads, rests = [], []
        for blocks, rate in recordings:
            it = iter(blocks)
            first = next(it, np.zeros(0, dtype=np.float32))
            rests.append((itertools.chain([first], it), rate))
            if rate != SAMPLE_RATE:
                from vgd.audio import resample

                first = resample(first, rate, SAMPLE_RATE)
            heads.append(first[:CHECK_EVERY] if first.size >= CHECK_EVERY else None)
        found: list[float | None] = [None] * len(heads)
        full = [i for i, h in enumerate(heads) if h is not None]
        if full and self.enough_s < math.inf:
            probs = self.detector.batch_probs(np.stack([heads[i] for i in full]))
            for i, p in zip(full, probs):
                seconds = self._seconds([p], None)
                found[i] = seconds if seconds >= self.enough_s else None
        return [f if f is not None else self(*rest) for f, rest in zip(found, rests)]

    def _seconds(self, probs: list[np.ndarray], duration_s: float | None) -> float:
        """Speech seconds in the frames so far (a lower bound of the whole recording's)."""
        hop_s = FRAME / SAMPLE_RATE
        regions = speech_regions(np.concatenate(probs), hop_s, self.config, duration_s)
        return float(sum(e - s for s, e in regions))


def _growing_chunks(block: np.ndarray, done: int) -> Iterator[np.ndarray]:
    """``block`` in chunks of ~1 s or an eighth of what came before, whichever is larger.

    Early chunks are short, so counting stops soon after the speech starts; later ones grow, so
    re-counting the regions after each chunk stays linear in the length of the recording.
    """
    start = 0
    while start < block.size:
        size = max(CHECK_EVERY, (done + start) // 8 // FRAME * FRAME)
        yield block[start : start + size]
        start += size
