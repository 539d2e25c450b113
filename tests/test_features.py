"""The log-mel front end: the smoothing that hides the pitch, and the training-time pitch shift
that keeps the formants."""

import math

import pytest
import torch

from vgd.config import AugmentConfig, ConfigError, FeatureConfig
from vgd.features import LogMel, PitchShift, SpecAugment, shift_harmonics, smooth_frequency

SR = 16000
LIFTER = 32  # 2 ms at 16 kHz, as PitchShift uses


def _vowel(f0: float, formants=(700.0, 1200.0, 2600.0), seconds: float = 1.0) -> torch.Tensor:
    """A steady harmonic vowel: harmonics of ``f0`` weighted by resonances at ``formants``."""
    t = torch.arange(int(seconds * SR)) / SR
    wave = torch.zeros_like(t)
    for h in range(1, int(7000 / f0)):
        f = h * f0
        gain = sum(1 / (1 + ((f - fc) / 120.0) ** 2) for fc in formants)
        wave += gain * torch.sin(2 * math.pi * f * t)
    return wave / wave.abs().max()


def _power(wave: torch.Tensor) -> torch.Tensor:
    return LogMel(FeatureConfig(), SR).mel.spectrogram(wave[None])  # (1, K, F)


def _pitch_period(power: torch.Tensor) -> int:
    """Quefrency (samples) of the cepstral peak between 2.5 and 16 ms: the pitch period."""
    ceps = torch.fft.irfft(torch.log(power + 1e-6), dim=1).mean(dim=2)[0]
    return int(torch.argmax(ceps[40:256])) + 40


def _envelope(power: torch.Tensor) -> torch.Tensor:
    """The cepstrally smoothed log spectrum below 3.75 kHz, averaged over frames."""
    ceps = torch.fft.irfft(torch.log(power + 1e-6), dim=1)
    n = ceps.shape[1]
    q = torch.arange(n)
    smooth = torch.fft.rfft(ceps * ((q < LIFTER) | (q > n - LIFTER))[:, None], dim=1).real
    return smooth[0, 3:120].mean(dim=1)


def test_shifted_harmonics_move_the_pitch_and_keep_the_formants():
    power = _power(_vowel(200.0))
    assert abs(_pitch_period(power) - SR / 200) <= 2
    lowered = shift_harmonics(power, torch.tensor([0.8]), LIFTER)
    assert abs(_pitch_period(lowered) - SR / 160) <= 3  # 200 Hz → 160 Hz
    raised = shift_harmonics(power, torch.tensor([1.25]), LIFTER)
    assert abs(_pitch_period(raised) - SR / 250) <= 2
    # The envelope (the formants) stays: within 0.6 nats, where stretching the whole spectrum
    # (no envelope kept) moves it by more than 1.5.
    stretched = shift_harmonics(power, torch.tensor([0.8]), 0)
    for shifted in (lowered, raised):
        assert (_envelope(shifted) - _envelope(power)).abs().mean() < 0.6
    assert (_envelope(stretched) - _envelope(power)).abs().mean() > 1.5


def test_a_factor_of_one_leaves_the_spectrum_as_it_was():
    power = _power(_vowel(140.0))
    same = shift_harmonics(power, torch.tensor([1.0]), LIFTER)
    assert torch.allclose(same, power, rtol=1e-3, atol=1e-4)


def test_pitch_shift_changes_only_the_share_of_rows_asked():
    power = _power(_vowel(180.0)).expand(64, -1, -1).contiguous()
    torch.manual_seed(0)
    out = PitchShift(AugmentConfig(pitch_pct=20, pitch_prob=0.5), SR)(power)
    changed = (out - power).abs().flatten(1).amax(dim=1) > 1e-3
    assert 16 <= int(changed.sum()) <= 48
    assert torch.equal(out[~changed], power[~changed])


def test_the_front_end_is_unchanged_without_a_spectral_change():
    wave = _vowel(120.0)[None]
    frontend = LogMel(FeatureConfig(), SR)
    expected = torch.log(frontend.mel(wave) + 1e-6)
    normalised = (expected - expected.mean()) / expected.std()
    assert torch.allclose(frontend(wave)[:, 0], normalised, atol=1e-3)
    assert SpecAugment(AugmentConfig(), SR).pitch is None  # off by default
    assert SpecAugment(AugmentConfig(pitch_pct=20, pitch_prob=0.0), SR).pitch is None
    assert SpecAugment(AugmentConfig(pitch_pct=20), SR).pitch is not None


@pytest.mark.parametrize(
    "field,value", [("pitch_pct", -1.0), ("pitch_pct", 60.0), ("pitch_prob", 1.5)]
)
def test_pitch_settings_out_of_range_are_refused(field, value):
    with pytest.raises(ConfigError, match=f"augment.{field}"):
        AugmentConfig(**{field: value})


def test_smoothing_hides_the_pitch_and_keeps_the_formants():
    """Two pitches an octave apart differ by a third as much once smoothed over 300 Hz, while
    formants 18% higher (a shorter vocal tract) differ nearly as much as without smoothing."""
    plain, smooth = LogMel(FeatureConfig(), SR), LogMel(FeatureConfig(smooth_hz=300), SR)
    higher = tuple(1.18 * f for f in (700.0, 1200.0, 2600.0))

    def gaps(frontend):
        low = frontend(_vowel(110.0)[None])
        pitch = (low - frontend(_vowel(220.0)[None])).abs().mean()
        formants = (low - frontend(_vowel(110.0, higher)[None])).abs().mean()
        return float(pitch), float(formants)

    pitch, formants = gaps(plain)
    pitch_s, formants_s = gaps(smooth)
    assert pitch_s < pitch / 2
    assert formants_s > 0.8 * formants
    assert formants_s > 2 * pitch_s


def test_smoothing_averages_each_bin_with_its_neighbours():
    power = torch.zeros(1, 9, 2)
    power[0, 4] = 3.0  # one harmonic
    out = smooth_frequency(power, 3)
    assert torch.allclose(out[0, 3:6], torch.ones(3, 2))
    assert out[0, :3].sum() == 0 and out[0, 6:].sum() == 0
    flat = torch.full((1, 9, 2), 2.0)
    assert torch.allclose(smooth_frequency(flat, 5), flat)  # the edges are not darkened
    assert LogMel(FeatureConfig(), SR).smooth == 0  # off by default
    assert LogMel(FeatureConfig(smooth_hz=300), SR).smooth == 11  # 300 Hz of 31.25 Hz bins, odd


def test_smoothing_out_of_range_is_refused():
    with pytest.raises(ConfigError, match="features.smooth_hz"):
        FeatureConfig(smooth_hz=-1.0)
