"""Deterministic test and benchmark signals: music, noise, tones, near-silence, synthetic voices.

Every generator is a pure function of its arguments (seeded numpy), returns a mono float32 wave
in [-1, 1] at ``sample_rate`` (16 kHz by default) and never touches the filesystem.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power spectrum ~ 1 / f**exponent
# Scale degrees (semitones above the tonic) of a I-V-vi-IV progression, root position triads.
PROGRESSION = ((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12))
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11, 12)


def _samples(seconds: float, sample_rate: int) -> int:
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    return round(seconds * sample_rate)


def _to_rms(x: np.ndarray, level_db: float) -> np.ndarray:
    """Scale to an RMS level in dBFS (a silent input stays silent)."""
    rms = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
    return (x * (10 ** (level_db / 20) / rms if rms > 0 else 0.0)).astype(np.float32)


def _to_peak(x: np.ndarray, peak_db: float) -> np.ndarray:
    """Scale to a peak level in dBFS (a silent input stays silent)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (10 ** (peak_db / 20) / peak if peak > 0 else 0.0)).astype(np.float32)


def tone(
    seconds: float, freq: float, level_db: float = -12.0, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """A pure sine at ``freq`` Hz and ``level_db`` dBFS RMS."""
    t = np.arange(_samples(seconds, sample_rate)) / sample_rate
    return _to_rms(np.sin(2 * np.pi * freq * t), level_db)


def coloured_noise(
    seconds: float,
    colour: str = "pink",
    seed: int = 0,
    level_db: float = -20.0,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Gaussian noise shaped to a white, pink (1/f) or brown (1/f^2) power spectrum."""
    if colour not in NOISE_EXPONENTS:
        raise ValueError(f"colour must be one of {sorted(NOISE_EXPONENTS)}, got {colour!r}")
    n = _samples(seconds, sample_rate)
    rng = np.random.default_rng([seed, n])
    f = np.fft.rfftfreq(n, 1 / sample_rate)
    # Amplitude ~ f^(-exponent / 2); below 20 Hz held flat so brown noise is not all DC drift.
    gain = np.maximum(f, 20.0) ** (-NOISE_EXPONENTS[colour] / 2)
    spec = (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)) * gain
    return _to_rms(np.fft.irfft(spec, n), level_db)


def silence_with_hiss(
    seconds: float, level_db: float = -60.0, seed: int = 0, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Near-silence: faint white hiss at ``level_db`` dBFS RMS, like a quiet room's preamp."""
    return coloured_noise(seconds, "white", seed, level_db, sample_rate)


def _note(freq: float, n: int, sample_rate: int, decay: float) -> np.ndarray:
    """A plucked/struck note: harmonics at 1/k, the higher ones dying away faster."""
    t = np.arange(n) / sample_rate
    ks = np.arange(1, 11)
    ks = ks[ks * freq < 0.45 * sample_rate][:, None]
    partials = np.sin(2 * np.pi * freq * ks * t) / ks * np.exp(-decay * np.sqrt(ks) * t)
    attack = np.minimum(t / 0.005, 1.0)  # 5 ms, so notes start without a click
    return partials.sum(axis=0) * attack


def _drum(kind: str, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Kick (falling sine), snare (noise and a 190 Hz body) or hi-hat (a tick of bright noise)."""
    t = np.arange(n) / sample_rate
    if kind == "kick":
        phase = 2 * np.pi * (50 * t + 100 * (1 - np.exp(-t / 0.03)) * 0.03)  # 150 → 50 Hz
        return 1.5 * np.sin(phase) * np.exp(-t / 0.15)
    noise = rng.standard_normal(n)
    if kind == "snare":
        return (0.5 * noise + np.sin(2 * np.pi * 190 * t)) * np.exp(-t / 0.06)
    return 0.3 * np.diff(noise, prepend=0.0) * np.exp(-t / 0.02)  # hat: differenced = bright


def music_like(seconds: float, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Synthetic pop: a I-V-vi-IV chord per bar, bass, an eighth-note melody and a drum kit.

    Key, tempo (90-140 bpm) and melody are drawn from ``seed``; peak -3 dBFS.
    """
    rng = np.random.default_rng(seed)
    n = _samples(seconds, sample_rate)
    out = np.zeros(n + 2 * sample_rate)  # room for the last notes to ring, trimmed below
    beat = round(60 / rng.uniform(90, 140) * sample_rate)
    tonic = 220.0 * 2 ** (rng.integers(0, 12) / 12)  # A3 .. G#4
    for b in range(n // beat + 1):
        start = b * beat
        chord = PROGRESSION[(b // 4) % len(PROGRESSION)]
        for degree in chord:  # the chord, struck on every beat
            freq = tonic * 2 ** (degree / 12)
            out[start : start + 2 * beat] += 0.25 * _note(freq, 2 * beat, sample_rate, 3.0)
        bass = tonic / 4 * 2 ** (chord[0] / 12)
        out[start : start + beat] += 0.6 * _note(bass, beat, sample_rate, 2.0)
        for half in range(2):  # melody on eighth notes
            at = start + half * beat // 2
            degree = MAJOR_SCALE[rng.integers(len(MAJOR_SCALE))] + 12
            freq = tonic * 2 ** (degree / 12)
            out[at : at + beat] += 0.35 * _note(freq, beat, sample_rate, 6.0)
            out[at : at + beat // 2] += _drum("hat", beat // 2, sample_rate, rng)
        kind = "kick" if b % 2 == 0 else "snare"
        out[start : start + beat] += _drum(kind, beat, sample_rate, rng)
    return _to_peak(out[:n], -3.0)


def synthetic_voice(
    seconds: float,
    label: str = "female",
    speaker: int = 0,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """An utterance of vgd.synth's source-filter voice ``speaker`` of ``label``."""
    from vgd.synth import speaker_params, synthesize  # imports torch via vgd.audio: only if used

    params = speaker_params(speaker, label, seed)
    return synthesize(params, 0, seed, sample_rate, seconds)


def timeline(
    parts: list[tuple[str, np.ndarray]], sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Concatenate labelled waves; also return each part's (start, end, label) in seconds."""
    spans, start = [], 0
    for label, wave in parts:
        spans.append((start / sample_rate, (start + wave.size) / sample_rate, label))
        start += wave.size
    waves = [np.asarray(w, dtype=np.float32) for _, w in parts]
    return (np.concatenate(waves) if waves else np.zeros(0, np.float32)), spans
