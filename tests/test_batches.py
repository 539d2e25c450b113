"""DeviceBatcher and pack_corpus: packing, crops, sampling, reproducibility and augmentation."""

import dataclasses
import logging

import numpy as np
import pytest
import torch

from vgd.batches import DeviceBatcher, choose_storage, pack_corpus, roll_rows
from vgd.conditions import Conditions, telephone
from vgd.config import AugmentConfig
from vgd.dataset import random_eq

CROP = 800
QUIET = AugmentConfig(gain_db=0.0, noise_prob=0.0, shift_s=0.0, eq_db=0.0)


def ramps(lengths: list[int]) -> list[np.ndarray]:
    """Clip i holds i * 10_000 + 0, 1, 2, ...: every sample names its clip and its position."""
    return [(i * 10_000 + np.arange(n)).astype(np.float32) for i, n in enumerate(lengths)]


def batches(batcher: DeviceBatcher, epochs: range) -> tuple[torch.Tensor, torch.Tensor]:
    """All rows and labels of the given epochs, stacked."""
    pairs = [pair for e in epochs for pair in batcher.epoch(e)]
    return torch.cat([w for w, _ in pairs]), torch.cat([y for _, y in pairs])


def db(ratio: torch.Tensor) -> torch.Tensor:
    return 20 * torch.log10(ratio)


@pytest.mark.parametrize("dtype, tol", [("float32", 0.0), ("int16", 0.5 / 32767 + 1e-7)])
def test_pack_round_trips_each_clip(tmp_path, dtype, tol):
    rng = np.random.default_rng(0)
    waves = [rng.uniform(-1, 1, n).astype(np.float32) for n in (5, 1, 300)]
    np.save(tmp_path / "w.npy", waves[2])
    waves[2] = np.load(tmp_path / "w.npy", mmap_mode="r")  # read-only, as AudioCache returns
    corpus = pack_corpus(waves, dtype)
    assert corpus.data.shape == (306,) and corpus.offsets.tolist() == [0, 5, 6]
    for i, wave in enumerate(waves):
        assert np.abs(corpus.clip(i).numpy() - wave).max() <= tol


def test_int16_packing_clips_out_of_range_samples():
    corpus = pack_corpus([np.array([2.0, -2.0, 0.5], np.float32)], torch.int16)
    assert corpus.data.tolist() == [32767, -32767, 16384]


def test_pack_tiles_a_short_clip_to_the_minimum_length():
    wave = np.arange(1, 4, dtype=np.float32)
    corpus = pack_corpus([wave, np.ones(9, np.float32)], "float32", min_length=8)
    assert corpus.lengths.tolist() == [8, 9]
    assert corpus.clip(0).tolist() == [1, 2, 3, 1, 2, 3, 1, 2]


def test_pack_rejects_empty_and_multichannel_waves():
    with pytest.raises(ValueError, match="clip 1"):
        pack_corpus([np.ones(4, np.float32), np.zeros(0, np.float32)])
    with pytest.raises(ValueError, match="clip 0"):
        pack_corpus([np.ones((4, 2), np.float32)])


def test_choose_storage_is_int16_whenever_it_fits(caplog):
    with caplog.at_level(logging.INFO, logger="vgd.batches"):
        assert choose_storage(1000, 10**9) == "int16"  # never float32, however much room
        assert choose_storage(1000, 2000) == "int16"
        assert choose_storage(1000, 1999) is None
    assert "int16" in caplog.text and "do not fit" in caplog.text


def test_crops_are_contiguous_runs_of_their_own_clip():
    lengths = [CROP, CROP + 1, 3 * CROP + 17, 5 * CROP]
    corpus = pack_corpus(ramps(lengths), "float32")
    batcher = DeviceBatcher(corpus, [0, 1, 0, 1], CROP, 4, QUIET, seed=3, balance="none")
    waves, labels = batches(batcher, range(20))
    clip = (waves[:, 0] // 10_000).long()
    start = waves[:, 0] - clip * 10_000
    assert torch.equal(waves - waves[:, :1], torch.arange(CROP).float().expand_as(waves))
    assert torch.equal(labels, clip % 2)
    assert (start + CROP <= torch.tensor(lengths)[clip]).all()
    # Starts cover each clip's whole range: both ends of the long clip are reached.
    long = start[clip == 3]
    assert long.min() < 0.1 * 4 * CROP and long.max() > 0.9 * 4 * CROP


def test_a_clip_shorter_than_the_crop_is_tiled():
    wave = np.random.default_rng(1).uniform(-1, 1, 300).astype(np.float32)
    corpus = pack_corpus([wave], "float32", min_length=CROP)
    waves, _ = batches(DeviceBatcher(corpus, [0], CROP, 1, QUIET, crops_per_clip=3), range(1))
    for row in waves:
        assert np.array_equal(row.numpy(), np.resize(wave, CROP))  # as vgd.inference.crop


def test_bad_batcher_arguments_are_refused():
    short = pack_corpus([np.ones(CROP - 1, np.float32)], "float32")
    with pytest.raises(ValueError, match="min_length=crop"):
        DeviceBatcher(short, [0], CROP, 1)
    corpus = pack_corpus([np.ones(CROP, np.float32)] * 2, "float32")
    with pytest.raises(ValueError, match="one per clip"):
        DeviceBatcher(corpus, [0], CROP, 1)
    with pytest.raises(ValueError, match=">= 0"):
        DeviceBatcher(corpus, [0, -100], CROP, 1)
    with pytest.raises(ValueError, match="balance"):
        DeviceBatcher(corpus, [0, 1], CROP, 1, balance="weights")


def test_items_per_epoch_follow_the_crops_per_clip_rule():
    lengths = [3 * CROP + 5, CROP, 2 * CROP - 1, 7 * CROP]  # 3, 1, 1, 7 crops by duration
    corpus = pack_corpus(ramps(lengths), "float32")
    by_duration = DeviceBatcher(corpus, [0, 1, 0, 1], CROP, 4, QUIET, balance="none")
    assert len(by_duration) == 12 and by_duration.num_batches == 3
    waves, _ = batches(by_duration, range(1))
    assert np.bincount(waves[:, 0].long().numpy() // 10_000, minlength=4).tolist() == [3, 1, 1, 7]
    fixed = DeviceBatcher(corpus, [0, 1, 0, 1], CROP, 3, QUIET, crops_per_clip=2)
    assert len(fixed) == 8 and [w.shape[0] for w, _ in fixed.epoch(0)] == [3, 3]  # 2 dropped
    single = DeviceBatcher(corpus, [0, 1, 0, 1], CROP, 64, QUIET, crops_per_clip=2)
    assert [w.shape[0] for w, _ in single.epoch(0)] == [8]  # one batch: nothing dropped


def test_same_seed_and_epoch_give_the_same_batches():
    rng = np.random.default_rng(2)
    corpus = pack_corpus([rng.uniform(-0.5, 0.5, 3 * CROP) for _ in range(6)], "int16")
    augment = AugmentConfig(shift_s=0.01, eq_db=6.0)

    def make(seed: int) -> DeviceBatcher:
        return DeviceBatcher(corpus, [0, 1] * 3, CROP, 4, augment, seed=seed)

    a, la = batches(make(0), range(1, 2))
    b, lb = batches(make(0), range(1, 2))
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, batches(make(0), range(2, 3))[0])
    assert not torch.equal(a, batches(make(1), range(1, 2))[0])
    assert a.dtype == torch.float32 and torch.isfinite(a).all()


def test_balanced_sampler_draws_classes_equally_from_an_imbalanced_corpus():
    corpus = pack_corpus(ramps([CROP] * 100), "float32")
    labels = [1] * 10 + [0] * 90
    sampler = DeviceBatcher(corpus, labels, CROP, 10, QUIET, balance="sampler")
    _, drawn = batches(sampler, range(20))
    # 2000 draws of a fair coin: std 0.011, so ±0.05 is 4.5 sigma, while the corpus's own 10%
    # (what sampling without balance gives) is 36 sigma away.
    assert abs(drawn.float().mean().item() - 0.5) < 0.05
    shuffled = DeviceBatcher(corpus, labels, CROP, 10, QUIET, balance="loss")
    waves, drawn = batches(shuffled, range(1))
    assert drawn.sum().item() == 10  # a permutation: every clip exactly once
    assert sorted(waves[:, 0].tolist()) == [i * 10_000.0 for i in range(100)]


def test_gain_stays_within_gain_db_and_uses_its_range():
    corpus = pack_corpus([np.full(2 * CROP, 0.1, np.float32)], "float32")
    augment = AugmentConfig(gain_db=6.0, noise_prob=0.0)
    waves, _ = batches(DeviceBatcher(corpus, [0], CROP, 50, augment, crops_per_clip=50), range(4))
    gain = db(waves.square().mean(1).sqrt() / 0.1)
    assert gain.abs().max() <= 6.0 + 1e-4
    assert gain.min() < -5.0 and gain.max() > 5.0  # 200 uniform draws reach both ends
    assert abs(gain.abs().mean().item() - 3.0) < 0.5  # uniform in dB: |gain| 3 ± 0.12 dB


def sine_batches(augment: AugmentConfig, epochs: range) -> torch.Tensor:
    """Crops of one sine clip; every draw is made whatever the config, so crops match."""
    sine = 0.3 * np.sin(np.arange(4 * CROP) * 0.05).astype(np.float32)
    corpus = pack_corpus([sine], "float32")
    return batches(DeviceBatcher(corpus, [0], CROP, 32, augment, crops_per_clip=32), epochs)[0]


def test_noise_is_white_and_at_the_requested_snr():
    clean = sine_batches(QUIET, range(1))
    noise = (
        sine_batches(
            AugmentConfig(gain_db=0.0, noise_prob=1.0, noise_snr_db=(20.0, 20.0)), range(1)
        )
        - clean
    )
    snr = 10 * torch.log10(clean.square().mean(1) / noise.square().mean(1))
    # 800 samples estimate a row's noise power within ±5% (0.2 dB) at 1 sigma.
    assert (snr - 20).abs().max() < 1.0 and abs(snr.mean().item() - 20) < 0.15
    lag1 = (noise[:, 1:] * noise[:, :-1]).mean(1) / noise.square().mean(1)
    assert lag1.abs().max() < 0.15  # white: 0 ± 0.035 at 1 sigma
    assert torch.corrcoef(noise).fill_diagonal_(0).abs().max() < 0.2  # each row its own noise


def test_noise_is_added_with_noise_prob():
    clean = sine_batches(QUIET, range(20))
    noisy = sine_batches(AugmentConfig(gain_db=0.0, noise_prob=0.5), range(20))
    rate = ((noisy - clean).abs().amax(1) > 0).float().mean().item()
    assert abs(rate - 0.5) < 0.08  # 640 rows: ±0.02 at 1 sigma


def test_eq_response_stays_within_eq_db_and_varies():
    rng = np.random.default_rng(3)
    corpus = pack_corpus([rng.standard_normal(CROP).astype(np.float32)], "float32")
    augment = AugmentConfig(gain_db=0.0, noise_prob=0.0, eq_db=6.0)
    batcher = DeviceBatcher(corpus, [0], CROP, 64, augment, crops_per_clip=64)
    waves, _ = batches(batcher, range(1))
    # The clip is exactly one crop long, so every row is that clip through its own EQ and the
    # per-bin response is exact (no averaging needed).
    source = torch.fft.rfft(corpus.clip(0))
    response = db(torch.fft.rfft(waves, dim=1).abs() / source.abs())
    assert response.abs().max() <= 6.0 + 0.01
    peaks = response.abs().amax(1)  # random_eq's are 4.5 ± 1.4 dB
    assert peaks.mean() > 3.0 and peaks.max() > 5.0
    # Smooth over log frequency: above bin 40 neighbouring bins differ by < 0.25 dB at 6 dB.
    assert (response[:, 41:] - response[:, 40:-1]).abs().max() < 0.5


def test_eq_matches_random_eq_statistically():
    rng = np.random.default_rng(5)
    wave = rng.standard_normal(CROP).astype(np.float32)
    source = np.abs(np.fft.rfft(wave))
    ref = np.stack([np.abs(np.fft.rfft(random_eq(wave, 6.0, rng))) for _ in range(1000)])
    augment = AugmentConfig(gain_db=0.0, noise_prob=0.0, eq_db=6.0)
    corpus = pack_corpus([wave], "float32")
    batcher = DeviceBatcher(corpus, [0], CROP, 1000, augment, crops_per_clip=1000)
    ours = np.abs(np.fft.rfft(batches(batcher, range(1))[0].numpy(), axis=1))
    ref_db, ours_db = 20 * np.log10(ref / source), 20 * np.log10(ours / source)
    # Peak |response| per crop is 4.5 ± 1.4 dB: two 1000-crop means differ by 0.06 at 1 sigma.
    assert abs(np.abs(ref_db).max(1).mean() - np.abs(ours_db).max(1).mean()) < 0.3
    # The spread at a bin is known to ±2.2% per estimate; 12% is 4 sigma of the difference.
    bins = [1, 10, 100, 400]
    np.testing.assert_allclose(ours_db.std(0)[bins], ref_db.std(0)[bins], rtol=0.12)


def test_roll_rows_matches_np_roll():
    x = torch.arange(24.0).view(3, 8)
    shifts = torch.tensor([0, 3, -2])
    expected = [np.roll(row, s) for row, s in zip(x.numpy(), shifts.tolist())]
    assert np.array_equal(roll_rows(x, shifts).numpy(), np.stack(expected))


def test_time_shift_is_circular_and_within_shift_s():
    corpus = pack_corpus(ramps([CROP]), "float32")
    augment = AugmentConfig(gain_db=0.0, noise_prob=0.0, shift_s=0.01)  # 160 samples
    waves, _ = batches(DeviceBatcher(corpus, [0], CROP, 64, augment, crops_per_clip=64), range(2))
    shifts = (-waves[:, 0].long()) % CROP
    shifts = torch.where(shifts > CROP // 2, shifts - CROP, shifts)
    for row, s in zip(waves.numpy(), shifts.tolist()):
        assert np.array_equal(row, np.roll(np.arange(CROP, dtype=np.float32), s))
    assert shifts.abs().max() <= 160 and shifts.min() < -80 and shifts.max() > 80


@pytest.mark.gpu
def test_batches_on_cuda_are_reproducible():
    rng = np.random.default_rng(4)
    corpus = pack_corpus([rng.uniform(-0.5, 0.5, 3 * CROP) for _ in range(4)]).to("cuda")
    augment = AugmentConfig(shift_s=0.01, eq_db=6.0)
    a, la = batches(DeviceBatcher(corpus, [0, 1, 0, 1], CROP, 4, augment), range(1))
    b, _ = batches(DeviceBatcher(corpus, [0, 1, 0, 1], CROP, 4, augment), range(1))
    assert a.device.type == "cuda" and la.device.type == "cuda" and torch.equal(a, b)


def test_channel_conditions_change_the_rows_but_not_the_plan():
    rng = np.random.default_rng(6)
    corpus = pack_corpus([rng.uniform(-0.5, 0.5, 3 * CROP) for _ in range(4)], "float32")
    augment = AugmentConfig(shift_s=0.01, eq_db=6.0)
    phoned = dataclasses.replace(augment, telephone_prob=1.0)
    a, la = batches(DeviceBatcher(corpus, [0, 1, 0, 1], CROP, 4, augment), range(2))
    b, lb = batches(DeviceBatcher(corpus, [0, 1, 0, 1], CROP, 4, phoned), range(2))
    assert torch.equal(la, lb)
    assert torch.allclose(b, telephone(a, 16000), atol=1e-6)


def test_speed_crops_are_read_from_one_clip_past_the_crop():
    augment = dataclasses.replace(QUIET, speed_pct=5.0)
    reach = Conditions(augment, 16000).source_length(CROP)
    with pytest.raises(ValueError, match="min_length"):
        DeviceBatcher(pack_corpus(ramps([CROP, 3 * CROP]), "float32"), [0, 1], CROP, 4, augment)
    corpus = pack_corpus(ramps([reach, 3 * CROP, 2 * CROP]), "float32", min_length=reach)
    waves, _ = batches(DeviceBatcher(corpus, [0, 1, 0], CROP, 8, augment, seed=1), range(20))
    # Rows stay ramps of their own clip (nothing wraps or crosses into the next clip), with
    # slopes (speed factors) drawn over ±5 %.
    slope = (waves[:, -1] - waves[:, 0]) / (CROP - 1)
    assert torch.equal(waves // 10_000, (waves[:, :1] // 10_000).expand_as(waves))
    assert torch.allclose(waves, waves[:, :1] + slope[:, None] * torch.arange(CROP), atol=0.05)
    assert slope.min() > 0.95 - 1e-4 and slope.max() < 1.05 + 1e-4
    assert slope.min() < 0.96 and slope.max() > 1.04
