"""The built-in synthetic voice corpus: source-filter "speech" with gender-typical voices.

Each speaker gets fixed parameters drawn from overlapping male and female distributions (F0,
vocal-tract length, open quotient, breathiness), so pitch alone does not separate them. An
utterance is a glottal pulse train with jitter, shimmer, declination and accents, filtered through
F1-F4 resonators that glide between random vowels, interleaved with fricatives, stop closures and
pauses, then passed through a random channel: background noise at 10-30 dB SNR, EQ tilt, band
limits and gain. Filtering happens frame by frame in the frequency domain (the exact response of
each 2nd-order resonator), so formants can move without a per-sample loop.

Everything is a function of (seed, label, speaker index, utterance): results do not depend on the
number of worker processes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf

from vgd.audio import save_audio
from vgd.config import LABELS
from vgd.io import atomic_write_text
from vgd.manifest import Clip, write_manifest
from vgd.progress import Progress

CORPUS = "synth"
MANIFEST = "manifest.csv"
STAMP = "synth.json"  # the config that made the files beside it; a different one regenerates all

# Per-speaker F0 (Hz, the median over voiced speech): a log-normal (median, sigma) truncated to a
# range. The ranges overlap on 150-185 Hz: the best single threshold on speakers' F0 scores about
# 0.9 balanced accuracy, so pitch alone is not enough.
F0_DIST = {"male": (128.0, 0.20, (85.0, 185.0)), "female": (190.0, 0.18, (150.0, 260.0))}
# Vocal-tract factor scaling every formant: a normal (mean, sd) clipped to a range.
VTL_DIST = {"male": (1.0, 0.04, (0.9, 1.12)), "female": (1.17, 0.04, (1.05, 1.3))}

# Adult-male F1-F4 (Hz) of ten English vowels (Peterson & Barney averages; F4 approximate).
VOWELS = np.array(
    [
        [270, 2290, 3010, 3500],  # i
        [390, 1990, 2550, 3500],  # I
        [530, 1840, 2480, 3500],  # E
        [660, 1720, 2410, 3400],  # ae
        [730, 1090, 2440, 3400],  # a
        [570, 840, 2410, 3300],  # o
        [440, 1020, 2240, 3300],  # U
        [300, 870, 2240, 3300],  # u
        [640, 1190, 2390, 3400],  # ^
        [490, 1350, 1690, 3300],  # er
    ],
    dtype=np.float64,
)
NASAL = np.array([250, 1100, 2300, 3300], dtype=np.float64)
BANDWIDTHS = np.array([70, 100, 140, 200], dtype=np.float64)
# Fricative noise: centre (Hz, before the vocal-tract factor), width (octaves), level.
FRICATIVES = {
    "s": (6000.0, 0.5, 0.30),
    "sh": (3000.0, 0.6, 0.25),
    "f": (4000.0, 2.5, 0.10),
    "h": (1500.0, 2.0, 0.08),
}
FRICATIVE_KINDS = tuple(FRICATIVES)


@dataclass(frozen=True)
class SynthConfig:
    """How big the corpus is and how it is drawn; ``workers`` 0 means one process per CPU."""

    speakers: int = 200
    utterances: int = 10
    seed: int = 0
    sample_rate: int = 16000
    min_duration_s: float = 2.0
    max_duration_s: float = 5.0
    workers: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.speakers >= 2, "speakers", "must be >= 2 (half female, half male)"),
            (self.utterances >= 1, "utterances", "must be >= 1"),
            (8000 <= self.sample_rate <= 48000, "sample_rate", "must be in [8000, 48000]"),
            (self.min_duration_s > 0, "min_duration_s", "must be > 0"),
            (self.max_duration_s >= self.min_duration_s, "max_duration_s", "must be >= min"),
            (self.workers >= 0, "workers", "must be >= 0 (0: one per CPU)"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ValueError(f"SynthConfig.{name} {rule}, got {getattr(self, name)!r}")

    @property
    def n_female(self) -> int:
        return (self.speakers + 1) // 2

    @property
    def n_male(self) -> int:
        return self.speakers // 2


@dataclass(frozen=True)
class SpeakerParams:
    """A speaker's fixed voice: what stays the same across their utterances."""

    speaker: str  # e.g. "synth-f007"
    label: str
    index: int  # within the label
    f0_hz: float  # mean F0
    intonation_st: float  # accent height scale, semitones
    vtl: float  # formant scale (female ~17% higher on average)
    formant_skew: tuple[float, float, float, float]  # per-formant idiosyncrasy
    bandwidth_scale: float
    open_quotient: float  # glottal open phase fraction: higher is softer, breathier
    breathiness: float  # aspiration noise relative to the pulse train
    jitter: float  # relative period perturbation
    shimmer: float  # relative amplitude perturbation per cycle
    rate: float  # speaking rate factor (segments are shorter when higher)


def _label_code(label: str) -> int:
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, got {label!r}")
    return LABELS.index(label)


def _rng(seed: int, stream: int, label: str, index: int, utterance: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, _label_code(label), index, utterance])


def _truncated_lognormal(rng: np.random.Generator, median: float, sigma: float, lo, hi) -> float:
    while True:
        x = median * math.exp(sigma * rng.standard_normal())
        if lo <= x <= hi:
            return x


def speaker_params(index: int, label: str, seed: int) -> SpeakerParams:
    """Draw speaker ``index`` of ``label`` from the gender-typical, overlapping distributions."""
    rng = _rng(seed, 0, label, index)
    female = label == "female"
    median, sigma, (lo, hi) = F0_DIST[label]
    vtl_mean, vtl_sd, (vtl_lo, vtl_hi) = VTL_DIST[label]
    return SpeakerParams(
        speaker=f"{CORPUS}-{label[0]}{index:03d}",
        label=label,
        index=index,
        f0_hz=_truncated_lognormal(rng, median, sigma, lo, hi),
        intonation_st=float(rng.uniform(1.0, 3.5)),
        vtl=float(np.clip(rng.normal(vtl_mean, vtl_sd), vtl_lo, vtl_hi)),
        formant_skew=tuple(float(x) for x in rng.normal(1.0, 0.04, 4)),
        bandwidth_scale=float(rng.uniform(0.8, 1.4)),
        open_quotient=float(rng.uniform(0.55, 0.8) if female else rng.uniform(0.4, 0.65)),
        breathiness=float(rng.uniform(0.04, 0.2) if female else rng.uniform(0.02, 0.12)),
        jitter=float(rng.uniform(0.003, 0.015)),
        shimmer=float(rng.uniform(0.02, 0.1)),
        rate=float(rng.uniform(0.8, 1.25)),
    )


# ----------------------------------------------------------------------------- the pure core


@dataclass
class _Segment:
    kind: str  # vowel, nasal, fricative, closure, pause
    start: int
    end: int
    formants: np.ndarray | None = None  # (4,) target, voiced kinds only
    fricative: str = ""
    level: float = 0.0
    accent: float = 0.0  # semitones of F0 accent on this vowel


def _plan(rng: np.random.Generator, params: SpeakerParams, n: int, sr: int) -> list[_Segment]:
    """A random syllable sequence: [fricative | closure] vowel, with pauses between phrases."""
    ms = sr / 1000 / params.rate
    t = int(sr * rng.uniform(0.05, 0.25))
    end = n - int(sr * rng.uniform(0.05, 0.2))
    if end - t < 0.1 * sr:  # too short for leading and trailing silence
        t, end = 0, n
    segs: list[_Segment] = []
    while t < end:
        r = rng.random()
        if r < 0.35:
            kind = FRICATIVE_KINDS[rng.integers(len(FRICATIVE_KINDS))]
            length = int(ms * rng.uniform(60, 150))
            t = _append(segs, _Segment("fricative", t, t + length, fricative=kind))
        elif r < 0.5:
            t = _append(segs, _Segment("closure", t, t + int(ms * rng.uniform(25, 70))))
        t = _append(segs, _voiced_segment(rng, params, t, int(ms * rng.uniform(70, 220))))
        if rng.random() < 0.12:
            t = _append(segs, _Segment("pause", t, t + int(ms * rng.uniform(120, 400))))
    segs = [s for s in segs if s.start < end]
    segs[-1].end = min(segs[-1].end, end)
    return segs


def _append(segs: list[_Segment], seg: _Segment) -> int:
    segs.append(seg)
    return seg.end


def _voiced_segment(rng: np.random.Generator, params: SpeakerParams, start: int, length: int):
    nasal = rng.random() < 0.15
    base = NASAL if nasal else VOWELS[rng.integers(len(VOWELS))]
    formants = base * params.vtl * np.array(params.formant_skew) * rng.normal(1.0, 0.03, 4)
    stressed = rng.random() < 0.35
    level = 0.3 if nasal else rng.uniform(0.6, 1.0) * (1.0 if stressed else 0.75)
    accent = params.intonation_st * rng.uniform(0.5, 1.0) if stressed else 0.0
    kind = "nasal" if nasal else "vowel"
    return _Segment(kind, start, start + length, formants, level=level, accent=accent)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` samples, applied twice (a triangle), by cumulative sums."""
    for _ in range(2):
        c = np.concatenate([[0.0], np.cumsum(x)])
        half = width // 2
        idx = np.arange(x.size)
        lo, hi = np.clip(idx - half, 0, x.size), np.clip(idx + half + 1, 0, x.size)
        x = (c[hi] - c[lo]) / (hi - lo)
    return x


def _envelopes(segs: list[_Segment], n: int, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Voicing and noise amplitude per sample, with ~10 ms ramps."""
    voiced, noise = np.zeros(n), np.zeros(n)
    for s in segs:
        if s.kind in ("vowel", "nasal"):
            voiced[s.start : s.end] = s.level
        elif s.kind == "fricative":
            noise[s.start : s.end] = FRICATIVES[s.fricative][2]
    return _smooth(voiced, int(0.006 * sr)), _smooth(noise, int(0.004 * sr))


def _f0_contour(
    rng: np.random.Generator, params: SpeakerParams, segs: list[_Segment], n: int, sr: int
) -> np.ndarray:
    """F0 per sample: declination over each phrase and accents on stressed vowels, centred so the
    median over voiced speech is the speaker's F0 moved by a small per-utterance offset."""
    step = max(1, sr // 200)  # build at 5 ms, then interpolate
    t = np.arange(0, n + step, step, dtype=np.float64)
    st = np.zeros(t.size)  # semitones from the speaker's F0
    bounds = [0] + [s.start for s in segs if s.kind == "pause"] + [n]
    for a, b in zip(bounds[:-1], bounds[1:]):
        in_phrase = (t >= a) & (t < b)
        decl = rng.uniform(1.5, 4.0)
        pos = (t[in_phrase] - a) / max(b - a, 1)
        st[in_phrase] += decl * (0.5 - pos)
        if rng.random() < 0.2:  # a phrase-final rise
            st[in_phrase] += 3.0 * np.clip((pos - 0.8) / 0.2, 0, 1) ** 2
    for s in segs:
        if s.accent:
            centre, width = (s.start + s.end) / 2, 0.6 * (s.end - s.start) + 0.02 * sr
            st += s.accent * np.exp(-0.5 * ((t - centre) / width) ** 2)
    voiced = np.zeros(t.size, dtype=bool)
    for s in segs:
        if s.formants is not None:
            voiced |= (t >= s.start) & (t < s.end)
    st += rng.normal(0.0, 0.6) - (np.median(st[voiced]) if voiced.any() else 0.0)
    f0 = params.f0_hz * 2.0 ** (st / 12)
    return np.interp(np.arange(n), t, np.clip(f0, 50.0, 500.0))


def _glottal_source(
    rng: np.random.Generator, params: SpeakerParams, f0: np.ndarray, sr: int
) -> np.ndarray:
    """Rosenberg-pulse flow derivative with jitter and shimmer, plus pulsed aspiration noise."""
    n = f0.size
    block = max(1, int(sr / params.f0_hz))  # about one period
    wobble = np.repeat(rng.standard_normal(n // block + 1), block)[:n]
    phase = np.cumsum(f0 * (1.0 + params.jitter * wobble) / sr)
    cycle, frac = np.divmod(phase, 1.0)
    oq = params.open_quotient
    tp, tn = 0.7 * oq, 0.3 * oq
    flow = np.where(
        frac < tp,
        0.5 * (1 - np.cos(np.pi * frac / tp)),
        np.where(frac < oq, np.cos(np.pi * (frac - tp) / (2 * tn)), 0.0),
    )
    amp = 1.0 + params.shimmer * rng.standard_normal(int(cycle[-1]) + 2)
    flow *= amp[cycle.astype(np.int64)]
    pulse = np.diff(flow, prepend=0.0)
    pulse /= np.std(pulse) + 1e-12
    aspiration = rng.standard_normal(n) * (0.3 + flow)
    return pulse + params.breathiness * aspiration


class _Stft:
    """Hann-windowed STFT with 75% overlap; frame ``t`` is centred on sample ``t * hop``."""

    def __init__(self, n: int, sr: int):
        self.n = n
        self.n_fft = 1 << max(6, math.ceil(math.log2(0.032 * sr)))
        self.hop = self.n_fft // 4
        self.window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.n_fft) / self.n_fft)
        self.frames = -(-n // self.hop) + 1
        self.freqs = np.fft.rfftfreq(self.n_fft, 1 / sr)
        self.centres = np.minimum(np.arange(self.frames) * self.hop, n - 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        pad = self.n_fft // 2
        total = (self.frames - 1) * self.hop + self.n_fft
        xp = np.pad(x, (pad, total - pad - x.size))
        frames = np.lib.stride_tricks.sliding_window_view(xp, self.n_fft)[:: self.hop]
        return np.fft.rfft(frames * self.window, axis=1)  # (T, bins)

    def inverse(self, spec: np.ndarray) -> np.ndarray:
        frames = np.fft.irfft(spec, self.n_fft, axis=1) * self.window  # (T, n_fft)
        r, hop, t = self.n_fft // self.hop, self.hop, self.frames
        out = np.zeros((t + r - 1) * hop)
        norm = np.zeros_like(out)
        w2 = (self.window**2).reshape(r, hop)
        for k in range(r):
            out[k * hop : (k + t) * hop] += frames[:, k * hop : (k + 1) * hop].reshape(-1)
            norm[k * hop : (k + t) * hop] += np.tile(w2[k], t)
        pad = self.n_fft // 2
        return (out / np.maximum(norm, 1e-3))[pad : pad + self.n]


def resonator_response(
    freqs_hz: np.ndarray, bandwidths_hz: np.ndarray, sample_rate: int, grid_hz: np.ndarray
) -> np.ndarray:
    """Complex response on ``grid_hz`` of cascaded 2nd-order resonators (unity gain at DC).

    ``freqs_hz`` and ``bandwidths_hz`` are (..., K) for K resonators; the result is (..., bins).
    Each is the all-pole section 1 / (1 - 2 r cos(theta) z^-1 + r^2 z^-2), r = exp(-pi B / fs).
    """
    r2 = np.exp(-2 * np.pi * bandwidths_hz / sample_rate)
    c = -2 * np.sqrt(r2) * np.cos(2 * np.pi * freqs_hz / sample_rate)
    z1 = np.exp(-2j * np.pi * grid_hz / sample_rate)
    den = 1 + c[..., None] * z1 + r2[..., None] * z1**2  # (..., K, bins)
    return np.prod(1 + c + r2, axis=-1)[..., None] / den.prod(axis=-2)


def _formant_tracks(segs: list[_Segment], centres: np.ndarray, sr: int) -> np.ndarray:
    """(T, 4) formant frequencies: steady in each vowel's middle half, gliding in between."""
    knots_t, knots_f = [], []
    for s in segs:
        if s.formants is not None:
            quarter = (s.end - s.start) / 4
            knots_t += [s.start + quarter, s.end - quarter]
            knots_f += [s.formants, s.formants]
    if not knots_t:
        knots_t, knots_f = [0.0], [VOWELS.mean(axis=0)]
    f = np.stack(knots_f)
    tracks = np.stack([np.interp(centres, knots_t, f[:, k]) for k in range(4)], axis=1)
    return np.minimum(tracks, 0.45 * sr - np.array([300.0, 200.0, 100.0, 0.0]))


def _fricative_shape(segs: list[_Segment], stft: _Stft, params: SpeakerParams) -> np.ndarray:
    """(T, bins) magnitude of the noise filter: a log-frequency bump per fricative."""
    n = stft.n
    centre, width = np.full(n, 1500.0), np.full(n, 2.0)
    for s in segs:
        if s.kind == "fricative":
            fc, w, _ = FRICATIVES[s.fricative]
            centre[s.start : s.end], width[s.start : s.end] = fc * params.vtl, w
        elif s.kind == "pause":  # breath noise: broad and low
            centre[s.start : s.end], width[s.start : s.end] = 1200.0, 2.0
    fc = np.minimum(centre[stft.centres], 0.9 * stft.freqs[-1])[:, None]  # below Nyquist
    w = width[stft.centres][:, None]
    octaves = np.log2(np.maximum(stft.freqs, 20.0) / fc)
    return np.exp(-0.5 * (octaves / w) ** 2)


def _breath_envelope(rng: np.random.Generator, segs: list[_Segment], n: int) -> np.ndarray:
    """Faint inhalations in some pauses."""
    env = np.zeros(n)
    for s in segs:
        if s.kind == "pause" and rng.random() < 0.5:
            length = s.end - s.start
            shape = np.sin(np.pi * np.arange(length) / length)
            env[s.start : s.end] = rng.uniform(0.01, 0.04) * shape
    return env


def _channel(rng: np.random.Generator, speech: np.ndarray, sr: int) -> np.ndarray:
    """Coloured background noise at 10-30 dB SNR, then a microphone/line EQ, then a random gain."""
    n = speech.size
    f = np.fft.rfftfreq(n, 1 / sr)
    fpos = np.maximum(f, 1.0)
    colour = fpos ** (-rng.uniform(0.0, 2.0) / 2)  # white ... brown
    noise_spec = (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)) * colour
    noise = np.fft.irfft(noise_spec, n)
    snr_db = rng.uniform(10.0, 30.0)
    noise *= _rms(speech) / (_rms(noise) + 1e-12) * 10 ** (-snr_db / 20)
    tilt = (fpos / 1000.0) ** (rng.uniform(-3.0, 3.0) / 6.02)  # dB per octave around 1 kHz
    highpass = 1 / np.sqrt(1 + (rng.uniform(40.0, 120.0) / fpos) ** 4)
    cutoff = rng.uniform(3800.0, sr / 2) if rng.random() < 0.5 else sr
    lowpass = 1 / np.sqrt(1 + (f / cutoff) ** 8)
    y = np.fft.irfft(np.fft.rfft(speech + noise) * tilt * highpass * lowpass, n)
    peak_dbfs = rng.uniform(-18.0, -1.0)
    return y * 10 ** (peak_dbfs / 20) / (np.max(np.abs(y)) + 1e-12)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def synthesize(
    params: SpeakerParams, utterance: int, seed: int, sample_rate: int, duration_s: float
) -> np.ndarray:
    """One utterance of ``params``' voice: (round(duration_s * sample_rate),) float32 in [-1, 1].

    Deterministic in (params, utterance, seed, sample_rate, duration_s).
    """
    sr, n = sample_rate, max(1, round(duration_s * sample_rate))
    rng = _rng(seed, 1, params.label, params.index, utterance)
    segs = _plan(rng, params, n, sr)
    voiced_env, noise_env = _envelopes(segs, n, sr)
    f0 = _f0_contour(rng, params, segs, n, sr)
    stft = _Stft(n, sr)

    source = _glottal_source(rng, params, f0, sr) * voiced_env
    formants = _formant_tracks(segs, stft.centres, sr)
    bandwidths = np.broadcast_to(BANDWIDTHS * params.bandwidth_scale, formants.shape)
    tract = resonator_response(formants, bandwidths, sr, stft.freqs)
    voiced = stft.inverse(stft.forward(source) * tract)
    loud = voiced_env > 0.2
    voiced /= (_rms(voiced[loud]) if loud.any() else 1.0) + 1e-12

    shape = _fricative_shape(segs, stft, params)
    noise = stft.inverse(stft.forward(rng.standard_normal(n)) * shape)
    noise *= (noise_env + _breath_envelope(rng, segs, n)) / (_rms(noise) + 1e-12)

    return _channel(rng, voiced + noise, sr).astype(np.float32)


def utterance_duration(config: SynthConfig, params: SpeakerParams, utterance: int) -> float:
    """The length of an utterance in seconds, drawn in [min_duration_s, max_duration_s]."""
    rng = _rng(config.seed, 2, params.label, params.index, utterance)
    samples = round(rng.uniform(config.min_duration_s, config.max_duration_s) * config.sample_rate)
    return samples / config.sample_rate


# ----------------------------------------------------------------------------- the I/O shell


@dataclass(frozen=True)
class _Job:
    params: SpeakerParams
    utterance: int
    seed: int
    sample_rate: int
    duration_s: float
    path: str

    @property
    def frames(self) -> int:
        return round(self.duration_s * self.sample_rate)

    def clip(self) -> Clip:
        p = self.params
        return Clip(self.path, p.label, p.speaker, self.frames / self.sample_rate, CORPUS)


def _jobs(out_dir: Path, config: SynthConfig) -> Iterator[_Job]:
    width = max(2, len(str(config.utterances - 1)))
    for label, count in (("female", config.n_female), ("male", config.n_male)):
        for index in range(count):
            params = speaker_params(index, label, config.seed)
            folder = out_dir / label / params.speaker
            for u in range(config.utterances):
                path = folder / f"{params.speaker}_{u:0{width}d}.flac"
                duration = utterance_duration(config, params, u)
                yield _Job(params, u, config.seed, config.sample_rate, duration, str(path))


def _is_complete(job: _Job) -> bool:
    try:
        info = sf.info(job.path)
    except (sf.LibsndfileError, RuntimeError, OSError):
        return False
    return info.samplerate == job.sample_rate and info.frames == job.frames


def _make(job: _Job) -> Clip:
    """Synthesise and write one clip unless a complete file is already there."""
    if not _is_complete(job):
        wave = synthesize(job.params, job.utterance, job.seed, job.sample_rate, job.duration_s)
        path = Path(job.path)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.flac")
        try:
            save_audio(tmp, wave, job.sample_rate)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return job.clip()


def _stamp(config: SynthConfig) -> str:
    fields = {k: v for k, v in asdict(config).items() if k != "workers"}
    return json.dumps(fields, indent=2, sort_keys=True) + "\n"


def generate_corpus(
    out_dir: str | os.PathLike, config: SynthConfig = SynthConfig(), progress: bool = True
) -> list[Clip]:
    """Write the corpus as ``out_dir/<label>/<speaker>/<speaker>_<utt>.flac`` plus its manifest.

    Files are written atomically and the manifest last, so an interrupted run never leaves a
    manifest naming missing files. Re-running with the same config (recorded in ``synth.json``)
    keeps the files that are complete (same rate and length), so an interrupted run resumes; a
    different config first deletes the manifest and the files it would overwrite.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp_path, manifest = out / STAMP, out / MANIFEST
    jobs = list(_jobs(out, config))
    if not (stamp_path.is_file() and stamp_path.read_text() == _stamp(config)):
        manifest.unlink(missing_ok=True)
        for job in jobs:
            Path(job.path).unlink(missing_ok=True)
        atomic_write_text(stamp_path, _stamp(config))
    workers = min(config.workers or os.cpu_count() or 1, len(jobs))
    bar = Progress(len(jobs), "synth", unit="clips", enabled=progress)
    if workers <= 1:
        clips = [_tick(bar, c) for c in map(_make, jobs)]
    else:
        # spawn: a forked worker inherits the locks torch's threads held at the fork, and can
        # wait on one forever (a test suite that had trained a model hung so)
        with get_context("spawn").Pool(workers) as pool:
            clips = [_tick(bar, c) for c in pool.imap(_make, jobs, chunksize=4)]
    bar.close()
    write_manifest(clips, manifest)
    return clips


def _tick(bar: Progress, clip: Clip) -> Clip:
    bar.update()
    return clip
