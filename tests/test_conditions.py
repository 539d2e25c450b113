"""Recording conditions: each keeps the label-relevant signal (F0, alignment, the speech band),
is drawn per row from its generator, and is configured by validated fields."""

import math

import numpy as np
import pytest
import torch

from conftest import toy_config, toy_run
from vgd import conditions as C
from vgd.conditions import Conditions, Draws
from vgd.config import AugmentConfig, ConfigError, TrainConfig, apply_overrides
from vgd.dataset import make_reader
from vgd.pitch import median_f0
from vgd.train import load_clips
from vgd.train_input import LoaderBatches, training_batches

SR = 16000
OFF = AugmentConfig(gain_db=0.0, noise_prob=0.0)


def voice(f0: float, n: int, rows: int = 1, seed: int = 0) -> torch.Tensor:
    """(rows, n) harmonic tones at ``f0`` with random phases and a little noise, around -20 dBFS."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    out = [
        sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 12))
        + 0.01 * rng.standard_normal(n)
        for _ in range(rows)
    ]
    return torch.tensor(np.stack(out) * 0.06, dtype=torch.float32)


def clicks(n: int, rows: int = 1, seed: int = 0) -> torch.Tensor:
    """(rows, n) short pulses at irregular times: one clear correlation peak, unlike a tone."""
    rng = np.random.default_rng(seed)
    out = np.zeros((rows, n))
    for row in out:
        row[rng.choice(n - 64, 40, replace=False)] = rng.choice([-0.3, 0.3], 40)
        row[:] = np.convolve(row, np.hanning(9), "same")
    return torch.tensor(out, dtype=torch.float32)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def f0_of(row: torch.Tensor) -> float:
    return median_f0(row.numpy(), SR)


def lag_of_peak(a: torch.Tensor, b: torch.Tensor, max_lag: int = 200) -> int:
    """The lag of ``b`` against ``a`` at their cross-correlation's peak."""
    m = a.shape[0] - 2 * max_lag
    core = a[max_lag : max_lag + m]
    scores = [
        float(core @ b[max_lag + lag : max_lag + lag + m]) for lag in range(-max_lag, max_lag)
    ]
    return int(np.argmax(scores)) - max_lag


def level_db(y: torch.Tensor, x: torch.Tensor) -> float:
    """Power of ``y`` over ``x`` in dB, away from the edges."""
    return 10 * math.log10(
        float(y[:, 1000:-1000].square().mean() / x[:, 1000:-1000].square().mean())
    )


def tone(freq: float, n: int = SR) -> torch.Tensor:
    return 0.3 * torch.sin(2 * math.pi * freq * torch.arange(n) / SR)[None]


# ----------------------------------------------------------------------------- speed


def test_speed_moves_f0_by_its_factor_and_no_more():
    x = voice(150.0, 3 * SR, rows=3)
    factors = torch.tensor([1.05, 0.95, 1.0])
    y = C.speed(x, factors, 2 * SR)
    for row, f in zip(y, factors.tolist()):
        assert abs(f0_of(row) / 150.0 - f) < 0.005 * f
    assert torch.equal(y[2], x[2, 1 : 2 * SR + 1])  # factor 1: the source, one sample on


def test_speed_reads_within_source_length_and_wraps_only_when_short():
    n, fast = 1000, 1.06
    ramp = torch.arange(C.source_length(n, fast), dtype=torch.float32)[None]
    y = C.speed(ramp, torch.tensor([fast]), n)
    # Cubic interpolation of a line is the line: output j is the source at 1 + j * factor.
    expected = 1 + torch.arange(n) * fast
    assert torch.allclose(y[0], expected, atol=1e-3)
    wrapped = C.speed(ramp[:, :n], torch.tensor([fast]), n)  # the loader path: a crop only
    assert wrapped[0, -1] < wrapped[0, 0] + 100  # past the end it reads the crop's start again


# ----------------------------------------------------------------------------- reverb


def schroeder_rt60(rir: torch.Tensor) -> float:
    """RT60 from the -5 to -25 dB slope of the backward-integrated energy decay (T20)."""
    energy = torch.flip(torch.cumsum(torch.flip(rir.double().square(), [0]), 0), [0])
    edc = 10 * torch.log10(energy / energy[0])
    i5, i25 = int((edc > -5).sum()), int((edc > -25).sum())
    slope = (edc[i25] - edc[i5]) / ((i25 - i5) / SR)
    return float(-60 / slope)


def test_room_impulse_decays_at_its_rt60_behind_a_direct_path():
    rt60, drr = torch.tensor([0.2, 0.5, 0.8]), torch.tensor([0.0, 6.0, 12.0])
    rirs = C.room_impulses(rt60, drr, round(0.8 * SR), SR, gen())
    assert torch.equal(rirs[:, 0], torch.ones(3))
    for rir, t60, ratio in zip(rirs, rt60.tolist(), drr.tolist()):
        assert abs(schroeder_rt60(rir[1:]) / t60 - 1) < 0.1
        assert abs(-10 * math.log10(float(rir[1:].square().sum())) - ratio) < 0.01


def test_reverb_keeps_length_level_alignment_and_f0():
    x = voice(180.0, 2 * SR, rows=2)
    rirs = C.room_impulses(torch.tensor([0.8, 0.4]), torch.tensor([0.0, 6.0]), 12800, SR, gen())
    y = C.reverb(x, rirs)
    assert y.shape == x.shape
    assert torch.allclose(y.square().mean(1), x.square().mean(1), rtol=1e-3)
    for a, b in zip(x, y):
        assert abs(f0_of(b) / 180.0 - 1) < 0.005
        assert not torch.allclose(a, b, atol=1e-2)
    pulses = clicks(2 * SR, rows=2)
    for a, b in zip(pulses, C.reverb(pulses, rirs)):
        assert lag_of_peak(a, b) == 0  # the direct path, where it was


def test_drawn_rooms_span_the_configured_rt60_range():
    config = AugmentConfig(reverb_prob=1.0, reverb_rt60_s=(0.2, 0.8), reverb_drr_db=(20.0, 20.0))
    impulse = torch.zeros(40, SR)
    impulse[:, 0] = 1.0
    g = gen(1)
    out = Conditions(config, SR).speaker_and_room(impulse, SR, Draws.draw(40, g), g)
    measured = torch.tensor([schroeder_rt60(row[1:]) for row in out])
    assert measured.min() > 0.2 * 0.9 and measured.max() < 0.8 * 1.1
    assert measured.min() < 0.35 and measured.max() > 0.65


# ----------------------------------------------------------------------------- channel


@pytest.mark.parametrize(
    "freq, low, high", [(100, -99, -30), (1000, -0.5, 0.5), (5000, -99, -40), (7000, -99, -40)]
)
def test_telephone_keeps_the_speech_band_only(freq, low, high):
    x = tone(freq)
    y = C.telephone(x, SR)
    assert y.shape == x.shape
    assert low < level_db(y, x) < high


def test_mu_law_error_is_that_of_8_bit_companding():
    for scale in (1.0, 0.1):  # about -20 and -40 dBFS: companding keeps the SNR nearly flat
        x = scale * voice(150.0, SR)
        snr = -level_db(C.mu_law(x) - x, x)
        assert 28 < snr < 42
    assert C.mu_law(torch.tensor([[2.0, -2.0]])).abs().max() <= 1.0


@pytest.mark.parametrize("codec", ["ogg", "mp3"])
def test_lossy_codecs_keep_length_alignment_and_f0(codec):
    x = voice(140.0, 12345, rows=2)
    y = C.codec_round_trip(x, codec, SR, torch.tensor([0.0, 0.9]))
    assert y.shape == x.shape and y.dtype == torch.float32
    snr = [-level_db((b - a)[None], a[None]) for a, b in zip(x, y)]
    assert 12 < snr[1] < snr[0] < 50  # lossy, more so at the higher compression level
    for b in y:
        assert abs(f0_of(b) / 140.0 - 1) < 0.005
    pulses = clicks(12345, rows=2)
    levels = torch.tensor([0.0, 0.9])
    for a, b in zip(pulses, C.codec_round_trip(pulses, codec, SR, levels)):
        assert lag_of_peak(a, b) == 0  # the encoder's delay is taken out


# ----------------------------------------------------------------------------- the recipe


def test_each_condition_reaches_its_share_of_rows():
    x = voice(150.0, 1600, rows=400)
    for field in ("reverb_prob", "telephone_prob", "codec_prob"):
        config = AugmentConfig(**{field: 0.3})
        y = Conditions(config, SR)(x, gen(2))
        changed = (y - x).abs().amax(1) > 1e-6
        assert abs(changed.float().mean().item() - 0.3) < 0.08, field  # ±0.023 at 1 sigma


def test_the_same_generator_seed_gives_the_same_batch():
    config = AugmentConfig(
        speed_pct=5.0, reverb_prob=0.5, telephone_prob=0.5, codec_prob=0.8, codecs="mulaw+ogg"
    )
    x = voice(200.0, 4000, rows=6)
    conditions = Conditions(config, SR)
    a, b, c = conditions(x, gen(7)), conditions(x, gen(7)), conditions(x, gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and torch.isfinite(a).all()


def test_nothing_is_active_by_default():
    assert not Conditions(AugmentConfig(), SR).active
    assert Conditions(AugmentConfig(), SR).source_length(800) == 800


def test_loader_batches_get_the_conditions(toy_manifest, tmp_path):
    def first_batch(**augment):
        over = {f"augment.{k}": v for k, v in augment.items()}
        config = toy_config(toy_manifest, tmp_path, **{"augment.noise_prob": 0.0, **over})
        run = toy_run(toy_manifest, tmp_path, train_input="loader")
        clips = [c for c in load_clips(config, run.manifest) if c.split == "train"]
        source = training_batches(
            config, run, clips, make_reader(config.audio), torch.device("cpu")
        )
        assert isinstance(source[0], LoaderBatches)
        return next(iter(source[0].epoch(1)))[0]

    clean, phoned = first_batch(), first_batch(telephone_prob=1.0)
    assert torch.allclose(phoned, C.telephone(clean, SR), atol=1e-5)


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "path, value",
    [
        ("augment.speed_pct", -1.0),
        ("augment.speed_pct", 25.0),
        ("augment.reverb_prob", 1.5),
        ("augment.telephone_prob", -0.1),
        ("augment.codec_prob", 2.0),
        ("augment.reverb_rt60_s", [0.9, 0.2]),
        ("augment.reverb_rt60_s", [0.0, 0.5]),
        ("augment.reverb_drr_db", [10.0, 0.0]),
        ("augment.codecs", "aac"),
        ("augment.codecs", "ogg+ogg"),
        ("augment.codecs", ""),
    ],
)
def test_bad_condition_values_are_refused_naming_the_field(path, value):
    with pytest.raises(ConfigError, match=path.replace(".", r"\.")):
        apply_overrides(TrainConfig(), {path: value})


def test_condition_fields_load_from_yaml_lists_and_strings():
    config = apply_overrides(
        TrainConfig(), {"augment.reverb_rt60_s": [0.3, 0.6], "augment.codecs": "mulaw+mp3"}
    )
    assert config.augment.reverb_rt60_s == (0.3, 0.6)
    assert config.augment.codec_names == ("mulaw", "mp3")


def test_mp3_at_a_rate_it_cannot_code_is_refused():
    with pytest.raises(ValueError, match="MP3"):
        Conditions(AugmentConfig(codec_prob=0.1, codecs="mp3"), 20000)


@pytest.mark.gpu
def test_conditions_on_cuda_are_reproducible_and_stay_there():
    config = AugmentConfig(
        speed_pct=5.0, reverb_prob=0.5, telephone_prob=0.5, codec_prob=0.8, codecs="mulaw+mp3"
    )
    x = voice(200.0, 4000, rows=8).cuda()
    conditions = Conditions(config, SR)
    a = conditions(x, torch.Generator("cuda").manual_seed(3))
    b = conditions(x, torch.Generator("cuda").manual_seed(3))
    assert a.device.type == "cuda" and torch.equal(a, b) and torch.isfinite(a).all()


# ----------------------------------------------------------------------------- test conditions


@pytest.mark.parametrize("condition", C.TEST_CONDITIONS)
def test_test_conditions_are_fixed_per_seed_and_keep_length_and_f0(condition):
    wave = voice(150.0, SR)[0].numpy()
    out = C.degrade(wave, condition, SR, seed=7)
    assert out.dtype == np.float32 and out.shape == wave.shape
    assert np.array_equal(out, C.degrade(wave, condition, SR, seed=7))
    assert not np.allclose(out, wave, atol=1e-3)  # it did change the audio
    assert abs(median_f0(out, SR) - 150.0) < 3.0


def test_test_noise_sits_at_its_snr_and_its_draw_follows_the_seed():
    wave = voice(150.0, SR)[0].numpy()
    a, b = (C.degrade(wave, "noise", SR, seed=s) for s in (1, 2))
    snr = 10 * np.log10(np.mean(wave**2) / np.mean((a - wave) ** 2))
    assert snr == pytest.approx(C.TEST_NOISE_SNR_DB, abs=0.01)
    assert not np.allclose(a, b)


def test_an_unknown_test_condition_is_refused_by_name():
    with pytest.raises(ValueError, match="'radio'.*telephone"):
        C.degrade(np.zeros(SR, np.float32), "radio", SR, seed=0)
