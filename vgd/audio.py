"""Audio I/O: any soundfile-readable file, or audio already in memory, → mono float32 at the
configured rate, or one clear error.

Files are read with soundfile (WAV, FLAC, OGG, MP3 and more) and resampled with torchaudio.
torchaudio's own file readers go through torchcodec in 2.9+, which vgd does not depend on.
Audio in memory (a :class:`Waveform`) takes the same steps after the read, so it gives the
same samples as the same audio read from a file.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from vgd.config import AudioConfig

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf"}
)


class AudioError(Exception):
    """A file cannot be used as speech; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class Silent(AudioError):
    """A readable file with no sound above the silence floor: no speech, rather than broken."""

    def __init__(self, path: str | os.PathLike, reason: str, duration_s: float = 0.0):
        super().__init__(path, reason)
        self.duration_s = duration_s


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header without decoding."""

    path: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


MAX_CHANNELS = 16  # a 2-D array's shorter axis up to this is its channels


@dataclass(frozen=True, eq=False)
class Waveform:
    """Audio already in memory: ``(frames,)`` or ``(frames, channels)`` float32 samples at
    ``sample_rate``, and the name its results are reported under."""

    samples: np.ndarray
    sample_rate: int
    name: str = "<memory>"

    def __str__(self) -> str:
        return self.name

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else self.samples.shape[1]


Source = str | os.PathLike | Waveform  # a file, or audio in memory


def as_waveform(data: Any, sample_rate: int, name: str = "<memory>") -> Waveform:
    """A numpy array or torch tensor (mono, or channels on its shorter axis) as a Waveform.

    ``(channels, frames)`` as torchaudio holds audio and ``(frames, channels)`` as soundfile
    does are both accepted; raises AudioError naming ``name`` when it cannot be audio.
    """
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "fiu":
        raise AudioError(name, f"not audio ({type(data).__name__}, expected a numeric array)")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise AudioError(name, f"sample rate must be a positive integer, got {sample_rate!r}")
    if sample_rate <= 0:
        raise AudioError(name, f"sample rate must be a positive integer, got {sample_rate!r}")
    wave = _integer_to_float(data) if data.dtype.kind in "iu" else data.astype(np.float32)
    if wave.ndim == 2 and wave.shape[0] < wave.shape[1] and wave.shape[0] <= MAX_CHANNELS:
        wave = wave.T  # (channels, frames) → (frames, channels)
    if wave.ndim > 2 or (wave.ndim == 2 and wave.shape[1] > MAX_CHANNELS):
        raise AudioError(name, f"not audio (array of shape {tuple(data.shape)})")
    return Waveform(np.ascontiguousarray(wave), int(sample_rate), name)


def _integer_to_float(data: np.ndarray) -> np.ndarray:
    """PCM integers → float32 in [-1, 1), as soundfile reads them."""
    info = np.iinfo(data.dtype)
    if info.min == 0:  # unsigned: 8-bit WAV is offset binary
        return ((data.astype(np.float64) - (info.max + 1) / 2) / ((info.max + 1) / 2)).astype(
            np.float32
        )
    return (data.astype(np.float64) / -info.min).astype(np.float32)


def source_name(source: Source) -> str:
    """How a source is named in results and errors: its path, or the in-memory audio's name."""
    return source.name if isinstance(source, Waveform) else str(source)


def is_audio_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def find_audio(
    items: Iterable[str | os.PathLike | Waveform],
) -> tuple[list[Source], list[AudioError]]:
    """Expand folders (recursively, audio extensions only, sorted) and keep files and in-memory
    audio in place; missing paths and folders without audio are errors."""
    found: list[Source] = []
    missing: list[AudioError] = []
    for item in items:
        if isinstance(item, Waveform):
            found.append(item)
            continue
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and is_audio_path(f))
            if not files:
                missing.append(AudioError(p, "folder holds no audio files"))
            found += files
        elif p.exists():
            found.append(p)
        else:
            missing.append(AudioError(p, "missing (no such file or folder)"))
    return found, missing


def audio_info(source: Source) -> AudioInfo:
    """Header of an audio file (or in-memory audio); raises AudioError if missing, empty or not
    audio."""
    if isinstance(source, Waveform):
        frames = source.samples.shape[0]
        return AudioInfo(source.name, source.sample_rate, source.channels, frames)
    path = Path(source)
    if not path.exists():
        raise AudioError(path, "missing (no such file)")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty (0 bytes)")
    try:
        with _decoder_notes_dropped():
            info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(path, f"not audio or corrupt ({_probe_reason(e)})") from e
    frames = info.frames
    # MP3 headers may not state a length; -1 or huge means "unknown until decoded".
    if frames < 0 or frames >= 2**62:
        frames = -1
    return AudioInfo(str(path), int(info.samplerate), int(info.channels), int(frames))


_STDERR_LOCK = threading.Lock()  # fd 2 is the process's: one redirection at a time
_DECODER_NOTE = b"Note: "  # libmpg123's prefix ("Note: Illegal Audio-MPEG-Header ...")


@contextlib.contextmanager
def _decoder_notes_dropped() -> Iterator[None]:
    """Hold what C code writes to stderr while a file's format is probed and write it back
    without libmpg123's notes: probing a file that is not MP3 prints them, and the file's
    one-line AudioError already says what is wrong."""
    with _STDERR_LOCK, contextlib.ExitStack() as stack:
        try:
            held = stack.enter_context(tempfile.TemporaryFile())
            saved = os.dup(2)
        except OSError:  # no writable temp dir or no file descriptor left: probe unfiltered
            held = None
        if held is None:
            yield
            return
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [x for x in held.read().splitlines(True) if not x.startswith(_DECODER_NOTE)]
            if kept:
                os.write(2, b"".join(kept))


def _probe_reason(e: Exception) -> str:
    """libsndfile's reason, except the one it gives any existing file it cannot open."""
    if "does not exist or is not a regular file" in str(e):
        return "no format libsndfile can decode"
    return _short(e)


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:160]


def to_mono(data: np.ndarray) -> np.ndarray:
    """(frames, channels) or (frames,) → (frames,) float32, averaging channels."""
    data = np.asarray(data, dtype=np.float32)
    return data.mean(axis=1) if data.ndim == 2 else data


def resample(wave: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample a mono float32 waveform with torchaudio's windowed-sinc resampler."""
    if orig_rate == target_rate or wave.size == 0:
        return np.ascontiguousarray(wave, dtype=np.float32)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), orig_rate, target_rate)
    return out.numpy().astype(np.float32, copy=False)


def rms_dbfs(wave: np.ndarray) -> float:
    """RMS level in dB relative to full scale; -inf for digital silence."""
    if wave.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def load_audio(source: Source, config: AudioConfig = AudioConfig()) -> np.ndarray:
    """Decode ``source`` to mono float32 at ``config.sample_rate``, validating it as usable speech.

    Raises AudioError naming the file when it is missing, empty, not audio or corrupt, shorter
    than ``config.min_duration_s`` or silent (RMS below ``config.silence_dbfs``). In-memory
    audio takes the same steps from its samples on.
    """
    name = source_name(source)
    info = audio_info(source)
    if info.frames == 0:
        raise AudioError(name, "empty (0 audio frames)")
    if isinstance(source, Waveform):
        data, rate = source.samples, source.sample_rate
    else:
        try:
            data, rate = sf.read(name, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError) as e:
            raise AudioError(name, f"not audio or corrupt ({_short(e)})") from e
    if data.shape[0] == 0:
        raise AudioError(name, "empty (0 audio frames)")
    if not np.isfinite(data).all():
        raise AudioError(name, "corrupt (samples are NaN or infinite)")
    wave = resample(to_mono(data), rate, config.sample_rate)
    check_wave(wave, config, name)
    return wave


def check_wave(wave: np.ndarray, config: AudioConfig, path: str | os.PathLike) -> None:
    """Raise AudioError if a decoded waveform is too short or silent."""
    duration_s = wave.size / config.sample_rate
    check_duration(duration_s, config, path)
    level = rms_dbfs(wave)
    if level < config.silence_dbfs:
        shown = "-inf" if math.isinf(level) else f"{level:.1f}"
        reason = f"silent (RMS {shown} dBFS < floor {config.silence_dbfs:g} dBFS)"
        raise Silent(path, reason, duration_s)


def check_duration(duration_s: float, config: AudioConfig, path: str | os.PathLike) -> None:
    """Raise AudioError if ``duration_s`` is under the configured minimum."""
    if duration_s < config.min_duration_s:
        raise AudioError(
            path, f"too short ({duration_s:.2f} s < minimum {config.min_duration_s:g} s)"
        )


def read_blocks(source: Source, sample_rate: int, block_s: float) -> Iterator[np.ndarray]:
    """The file as consecutive mono float32 blocks at ``sample_rate``; AudioError if unusable.

    Each block is resampled on its own, so a file at another rate differs from a whole-file
    resampling by a few samples' ringing at block edges. In-memory audio is cut into the same
    blocks.
    """
    if isinstance(source, Waveform):
        return _memory_blocks(source, sample_rate, block_s)
    return _file_blocks(source, sample_rate, block_s)


def _memory_blocks(source: Waveform, sample_rate: int, block_s: float) -> Iterator[np.ndarray]:
    step = max(round(block_s * source.sample_rate), 1)
    for start in range(0, source.samples.shape[0], step):
        data = source.samples[start : start + step]
        if not np.isfinite(data).all():
            raise AudioError(source.name, "corrupt (samples are NaN or infinite)")
        yield resample(to_mono(data), source.sample_rate, sample_rate)


def _file_blocks(path: str | os.PathLike, sample_rate: int, block_s: float) -> Iterator[np.ndarray]:
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            step = max(round(block_s * rate), 1)
            while True:
                data = f.read(step, dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    return
                if not np.isfinite(data).all():
                    raise AudioError(path, "corrupt (samples are NaN or infinite)")
                yield resample(to_mono(data), rate, sample_rate)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(path, f"not audio or corrupt ({_short(e)})") from e


def save_audio(path: str | os.PathLike, wave: np.ndarray, sample_rate: int) -> None:
    """Write a mono float waveform; format from the extension (16-bit PCM for WAV/FLAC)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "PCM_16" if path.suffix.lower() in (".wav", ".flac") else None
    sf.write(str(path), np.clip(wave, -1.0, 1.0), sample_rate, subtype=subtype)
