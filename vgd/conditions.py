"""Recording conditions that clean read speech lacks: the speaker's speed, the room, the
telephone channel and lossy codecs, as batched ops on (B, n) float32 waveforms.

Every function runs on the device of its input and takes its randomness from an explicit
``torch.Generator``. The exception is the OGG Vorbis and MP3 round trip: libsndfile encodes and
decodes one row at a time on the CPU (about 3 ms per second of 16 kHz audio for OGG and 5 ms
for MP3 on one core, so 10-15 ms per 3 s crop), and a CUDA batch passes through host memory for
it. :class:`Conditions` applies the configured ones in the world's order: the speaker and the
room first, then (after the batcher's gain, EQ, shift and noise) the channel and the codec.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import Tensor

from vgd.config import AugmentConfig

TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
MU_LAW_CHANNELS = 256  # 8-bit companding, as G.711
MAX_COMPRESSION = 0.9  # libsndfile's lossy compression level runs 0 (best) to 0.9 here
SOUNDFILE_FORMATS = {"ogg": ("OGG", "VORBIS"), "mp3": ("MP3", "MPEG_LAYER_III")}
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


# ----------------------------------------------------------------------------- the speaker


def source_length(n: int, max_factor: float) -> int:
    """Source samples :func:`speed` needs for ``n`` output samples at factors <= ``max_factor``."""
    return math.ceil((n - 1) * max_factor) + 4  # one sample before, two after, one of rounding


def speed(source: Tensor, factors: Tensor, n: int) -> Tensor:
    """``n`` samples of each (B, m) row played ``factors[i]`` times as fast (tempo and pitch).

    Output sample j is the row at position ``1 + j * factor`` by Catmull-Rom cubic
    interpolation. A row shorter than :func:`source_length` wraps around circularly.
    """
    j = torch.arange(n, device=source.device)
    # j * (factor - 1) stays small, so its fraction is exact to ~1e-4 samples in float32.
    drift = j * (factors[:, None].float() - 1)  # (B, n)
    whole = drift.floor()
    t = drift.sub_(whole)  # where between taps 1 and 2 the output falls
    base = whole.long().add_(j)  # tap 0: one sample before the output's position
    needed = int(base.max()) + 4
    if needed > source.shape[1]:
        source = source.repeat(1, -(-needed // source.shape[1]))
    # The cubic through taps p0..p3 of every interval, evaluated at t by Horner's rule.
    p0, p1, p2, p3 = (source[:, k : source.shape[1] - 3 + k] for k in range(4))
    c1 = (p2 - p0).mul_(0.5)
    c2 = (p3 * -0.5).add_(p0).add_(p2, alpha=2).sub_(p1, alpha=2.5)
    c3 = (p3 - p0).mul_(0.5).add_((p1 - p2).mul_(1.5))
    out = torch.gather(c3, 1, base).mul_(t).add_(torch.gather(c2, 1, base)).mul_(t)
    return out.add_(torch.gather(c1, 1, base)).mul_(t).add_(torch.gather(p1, 1, base))


# ----------------------------------------------------------------------------- the room


def room_impulses(
    rt60_s: Tensor, drr_db: Tensor, length: int, sample_rate: int, gen: torch.Generator
) -> Tensor:
    """(B, length) synthetic room impulse responses: a unit direct path at t = 0, then Gaussian
    noise decaying by 60 dB in each row's ``rt60_s``, at ``drr_db`` below the direct path."""
    t = torch.arange(length, device=rt60_s.device) / sample_rate
    decay = torch.exp(-3 * math.log(10) * t / rt60_s[:, None])  # amplitude: -60 dB at rt60
    tail = torch.randn(rt60_s.shape[0], length, generator=gen, device=rt60_s.device) * decay
    tail[:, 0] = 0.0
    energy = tail.square().sum(1, keepdim=True).clamp_min(1e-20)
    tail = tail * torch.sqrt(10 ** (-drr_db[:, None] / 10) / energy)
    tail[:, 0] = 1.0
    return tail


def reverb(x: Tensor, rirs: Tensor) -> Tensor:
    """Each (B, n) row convolved with its RIR by FFT: same length, direct path aligned, same RMS."""
    n = x.shape[1]
    size = 1 << (n + rirs.shape[1] - 2).bit_length()  # >= the full linear convolution
    spectrum = torch.fft.rfft(x, size, dim=1) * torch.fft.rfft(rirs, size, dim=1)
    wet = torch.fft.irfft(spectrum, size, dim=1)[:, :n]
    return wet * (_rms(x) / _rms(wet).clamp_min(1e-10))


def _rms(x: Tensor) -> Tensor:
    return x.square().mean(1, keepdim=True).sqrt()


# ----------------------------------------------------------------------------- the channel


def band_pass(x: Tensor, sample_rate: int, low_hz: float, high_hz: float) -> Tensor:
    """Zero-phase band-pass in the rFFT domain: Butterworth magnitudes, order 4 low, 8 high."""
    n = x.shape[1]
    f = torch.fft.rfftfreq(n, 1 / sample_rate, device=x.device).clamp_min(1e-3)
    gain = 1 / torch.sqrt((1 + (low_hz / f) ** 8) * (1 + (f / high_hz) ** 16))
    return torch.fft.irfft(torch.fft.rfft(x, dim=1) * gain, n, dim=1)


def telephone(x: Tensor, sample_rate: int) -> Tensor:
    """A narrow-band telephone channel: 300-3400 Hz, then sampled at 8 kHz and back."""
    n = x.shape[1]
    x = band_pass(x, sample_rate, *TELEPHONE_BAND_HZ)  # the anti-aliasing filter of the line
    if sample_rate <= TELEPHONE_RATE:
        return x
    narrow = AF.resample(x, sample_rate, TELEPHONE_RATE)
    wide = AF.resample(narrow, TELEPHONE_RATE, sample_rate)
    return _fit(wide, n)


def _fit(x: Tensor, n: int) -> Tensor:
    """``x`` cut or zero-padded at the end to ``n`` samples."""
    return x[:, :n] if x.shape[1] >= n else torch.nn.functional.pad(x, (0, n - x.shape[1]))


def mu_law(x: Tensor) -> Tensor:
    """8-bit μ-law companding and back (samples beyond ±1 clip, as in a real coder)."""
    codes = AF.mu_law_encoding(x.clamp(-1.0, 1.0), MU_LAW_CHANNELS)
    return AF.mu_law_decoding(codes, MU_LAW_CHANNELS)


def codec_round_trip(x: Tensor, codec: str, sample_rate: int, levels: Tensor) -> Tensor:
    """Each row encoded as OGG Vorbis or MP3 at its compression level in [0, 0.9] and decoded.

    Per-row CPU work through libsndfile; the decoder removes the encoder's delay, and the
    output is cut or padded to the input's length.
    """
    fmt, subtype = SOUNDFILE_FORMATS[codec]
    rows = x.detach().cpu().numpy()
    out = np.zeros_like(rows)
    for i, (row, level) in enumerate(zip(rows, levels.tolist())):
        buffer = io.BytesIO()
        sf.write(buffer, row, sample_rate, format=fmt, subtype=subtype, compression_level=level)
        buffer.seek(0)
        decoded = sf.read(buffer, dtype="float32")[0]
        out[i, : decoded.shape[0]] = decoded[: row.shape[0]]
    return torch.from_numpy(out).to(x.device)


# ----------------------------------------------------------------------------- the recipe


@dataclass(frozen=True, eq=False)
class Draws:
    """One batch's per-row uniforms in [0, 1), drawn together before any is used, so switching
    one condition on (and drawing its room noise) leaves the others' draws where they were."""

    speed: Tensor
    reverb: Tensor
    rt60: Tensor
    drr: Tensor
    telephone: Tensor
    codec: Tensor
    which_codec: Tensor
    level: Tensor

    @classmethod
    def draw(cls, rows: int, gen: torch.Generator) -> Draws:
        """Every uniform of a batch of ``rows`` crops, on the generator's device."""
        return cls(*torch.rand(8, rows, generator=gen, device=gen.device))


class Conditions:
    """The recording conditions of an ``AugmentConfig`` at one sample rate, for whole batches."""

    def __init__(self, config: AugmentConfig, sample_rate: int):
        self.config, self.sample_rate = config, sample_rate
        if "mp3" in config.codec_names and config.codec_prob > 0 and sample_rate not in MP3_RATES:
            raise ValueError(f"augment.codecs: MP3 needs a rate of {MP3_RATES}, not {sample_rate}")

    @property
    def active(self) -> bool:
        return self.before or self.after

    @property
    def before(self) -> bool:
        """Whether the speaker or the room changes anything."""
        return self.config.speed_pct > 0 or self.config.reverb_prob > 0

    @property
    def after(self) -> bool:
        """Whether the channel or a codec changes anything."""
        return self.config.telephone_prob > 0 or self.config.codec_prob > 0

    def source_length(self, n: int) -> int:
        """Samples of source a crop of ``n`` needs (``n`` when the speed stays put)."""
        c = self.config
        return source_length(n, 1 + c.speed_pct / 100) if c.speed_pct > 0 else n

    def speaker_and_room(
        self, source: Tensor, n: int, draws: Draws, gen: torch.Generator
    ) -> Tensor:
        """(B, n) crops of (B, m) ``source``: each at its own speed, some in a room."""
        c = self.config
        if c.speed_pct > 0:
            x = speed(source, 1 + c.speed_pct / 100 * (2 * draws.speed - 1), n)
        else:
            x = source[:, :n]
        rows = torch.nonzero(draws.reverb < c.reverb_prob).flatten()
        if rows.numel():
            rt60 = _between(draws.rt60[rows], c.reverb_rt60_s)
            drr = _between(draws.drr[rows], c.reverb_drr_db)
            length = min(math.ceil(c.reverb_rt60_s[1] * self.sample_rate), n)
            rirs = room_impulses(rt60, drr, length, self.sample_rate, gen)
            x = x.index_copy(0, rows, reverb(x[rows], rirs))
        return x

    def channel(self, x: Tensor, draws: Draws) -> Tensor:
        """Some rows through the telephone band, some through one of the codecs."""
        c = self.config
        rows = torch.nonzero(draws.telephone < c.telephone_prob).flatten()
        if rows.numel():
            x = x.index_copy(0, rows, telephone(x[rows], self.sample_rate))
        names = c.codec_names
        which = (draws.which_codec * len(names)).long()
        which = torch.where(draws.codec < c.codec_prob, which, -1)
        for k, name in enumerate(names):
            rows = torch.nonzero(which == k).flatten()
            if rows.numel():
                x = x.index_copy(0, rows, self._code(x[rows], name, draws.level[rows]))
        return x

    def _code(self, x: Tensor, name: str, level: Tensor) -> Tensor:
        if name == "mulaw":
            return mu_law(x)
        return codec_round_trip(x, name, self.sample_rate, level * MAX_COMPRESSION)

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        """Every condition on (B, n) crops, in order; speed within the crop (wrapping if faster)."""
        draws = Draws.draw(x.shape[0], gen)
        if self.before:
            x = self.speaker_and_room(x, x.shape[1], draws, gen)
        return self.channel(x, draws) if self.after else x


def _between(u: Tensor, bounds: tuple[float, float]) -> Tensor:
    lo, hi = bounds
    return lo + (hi - lo) * u


# ----------------------------------------------------------------------------- test conditions

# Fixed degradations for measuring a model off its training conditions: each is one setting, not
# a range, and its randomness is seeded by the clip, so every model hears the same test audio.
TEST_CONDITIONS = ("telephone", "reverb", "mulaw", "mp3", "noise")
TEST_REVERB = (0.6, 3.0)  # RT60 s, direct-to-reverberant dB: a mid-sized untreated room
TEST_MP3_LEVEL = 0.9  # libsndfile's strongest MP3 compression
TEST_NOISE_SNR_DB = 10.0


def degrade(wave: np.ndarray, condition: str, sample_rate: int, seed: int) -> np.ndarray:
    """One (n,) float32 waveform through a named test condition; the same seed, the same output."""
    if condition not in TEST_CONDITIONS:
        raise ValueError(
            f"unknown test condition {condition!r}: one of {', '.join(TEST_CONDITIONS)}"
        )
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
    if condition == "telephone":
        x = telephone(x, sample_rate)
    elif condition == "reverb":
        rt60, drr = (torch.tensor([v]) for v in TEST_REVERB)
        length = min(math.ceil(TEST_REVERB[0] * sample_rate), x.shape[1])
        x = reverb(x, room_impulses(rt60, drr, length, sample_rate, gen))
    elif condition == "mulaw":
        x = mu_law(x)
    elif condition == "mp3":
        x = codec_round_trip(x, "mp3", sample_rate, torch.tensor([TEST_MP3_LEVEL]))
    else:
        noise = torch.randn(x.shape, generator=gen)
        x = x + noise * _rms(x) / _rms(noise) * 10 ** (-TEST_NOISE_SNR_DB / 20)
    return x[0].numpy().astype(np.float32)
