"""AudioDataset: training crops, augmentation, workers, balancing, and the shared cache."""

import logging
import multiprocessing as mp
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import voice
from vgd.audio import AudioError, save_audio
from vgd.cache import AudioCache, prefill
from vgd.config import AudioConfig, AugmentConfig
from vgd.dataset import (
    IGNORE,
    AudioDataset,
    augment_wave,
    balanced_sampler,
    class_weights,
    make_reader,
    random_eq,
)
from vgd.manifest import Clip, read_manifest

LABELS = ("female", "male")


def dataset(manifest, **kw):
    clips = read_manifest(manifest)
    return AudioDataset(clips, LABELS, make_reader(AudioConfig()), 16000, 1.0, **kw)


def test_training_crops_have_fixed_length_and_change_per_epoch(toy_manifest):
    ds = dataset(toy_manifest)
    a, label = ds[0]
    assert a.shape == (16000,) and label in (0, 1)
    ds.set_epoch(1)
    b, _ = ds[0]
    assert not torch.equal(a, b)
    ds.set_epoch(0)
    assert torch.equal(a, ds[0][0])


def test_long_clips_give_one_training_crop_per_crop_length(tmp_path):
    clips = [
        Clip(str(tmp_path / "a.wav"), "female", "s1", 3.5),  # 3 one-second crops
        Clip(str(tmp_path / "b.wav"), "male", "s2", 0.6),  # shorter than a crop: still one
    ]
    by_duration = AudioDataset(clips, LABELS, None, 16000, 1.0, crops_per_clip=0)
    assert by_duration.items == [0, 0, 0, 1] and by_duration.targets == [0, 0, 0, 1]
    fixed = AudioDataset(clips, LABELS, None, 16000, 1.0, crops_per_clip=2)
    assert len(fixed) == 4 and fixed.targets == [0, 0, 1, 1]


def test_crops_of_one_clip_differ_within_an_epoch(toy_manifest):
    ds = dataset(toy_manifest, crops_per_clip=2)
    assert len(ds) == 2 * len(ds.clips) and ds.items[:2] == [0, 0]
    (a, la), (b, lb) = ds[0], ds[1]
    assert la == lb and not torch.equal(a, b)


def test_random_eq_is_a_smooth_gain_within_its_bound():
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    out = random_eq(wave, 6.0, np.random.default_rng(1))
    gain_db = random_eq_gain(wave, 6.0, 1)
    assert out.shape == wave.shape and out.dtype == np.float32
    assert np.abs(gain_db).max() <= 6.0 + 1e-3 and np.ptp(gain_db) > 1.0
    assert np.abs(np.diff(gain_db[100:])).max() < 0.05  # smooth: no comb, no notch
    assert not np.allclose(gain_db, random_eq_gain(wave, 6.0, 2), atol=0.5)


def random_eq_gain(wave, max_db, seed):
    out = random_eq(wave, max_db, np.random.default_rng(seed))
    return 20 * np.log10(np.abs(np.fft.rfft(out)) / np.abs(np.fft.rfft(wave)))


def test_augmentation_changes_level_and_adds_noise():
    rng = np.random.default_rng(0)
    wave = voice(150, 1.0)
    cfg = AugmentConfig(gain_db=12, noise_prob=1.0, noise_snr_db=(5.0, 5.0), shift_s=0.1)
    out = augment_wave(wave.copy(), cfg, rng, 16000)
    assert out.shape == wave.shape and out.dtype == np.float32 and not np.allclose(out, wave)
    off = augment_wave(wave.copy(), AugmentConfig(0, 0, (10.0, 10.0), 0, 0, 0, 0, 0), rng, 16000)
    assert np.array_equal(off, wave)


def test_works_with_dataloader_workers(toy_manifest):
    ds = dataset(toy_manifest, augment=AugmentConfig())
    serial = torch.cat([w for w, _ in DataLoader(ds, batch_size=8)])
    parallel = torch.cat([w for w, _ in DataLoader(ds, batch_size=8, num_workers=2)])
    assert torch.equal(serial, parallel)  # randomness from (seed, epoch, index), not the worker


def test_unreadable_clip_becomes_an_ignored_item(tmp_path):
    clip = Clip(str(tmp_path / "gone.wav"), "male", "s", 1.0, "c")
    ds = AudioDataset([clip], LABELS, make_reader(AudioConfig()), 16000, 1.0)
    wave, label = ds[0]
    assert label == IGNORE and wave.abs().sum() == 0


def test_balanced_sampler_equalises_classes():
    targets = [0] * 10 + [1] * 90
    drawn = list(balanced_sampler(targets, seed=0, epoch=0))
    female = sum(targets[i] == 0 for i in drawn)
    assert 35 <= female <= 65
    assert drawn == list(balanced_sampler(targets, seed=0, epoch=0))
    w = class_weights(targets, 2)
    assert w[0] * 10 == pytest.approx(w[1] * 90)


def test_cache_hits_skip_decoding_and_invalidate_on_change(tmp_path):
    save_audio(tmp_path / "a.wav", voice(150, 1.0), 16000)
    cache = AudioCache(tmp_path / "cache")
    first = cache.get(tmp_path / "a.wav")
    assert cache.contains(tmp_path / "a.wav")
    assert isinstance(cache.get(tmp_path / "a.wav"), np.memmap)
    assert np.array_equal(first, cache.get(tmp_path / "a.wav"))
    save_audio(tmp_path / "a.wav", voice(150, 2.0), 16000)
    assert cache.get(tmp_path / "a.wav").size == 32000


def test_cache_remembers_failures(tmp_path):
    (tmp_path / "bad.wav").write_text("nope")
    report = prefill(AudioCache(tmp_path / "c"), [str(tmp_path / "bad.wav")], progress=False)
    assert list(report.failed.values())[0].startswith("not audio")
    with pytest.raises(AudioError, match="bad.wav: not audio"):
        AudioCache(tmp_path / "c").get(tmp_path / "bad.wav")


def _entries(root):
    return sorted((root).glob("??/*.npy"))


def test_the_cache_stays_within_its_limit_and_decodes_evicted_files_again(tmp_path):
    paths = []
    for i in range(5):
        save_audio(tmp_path / f"{i}.wav", voice(100 + 20 * i, 1.0), 16000)
        paths.append(str(tmp_path / f"{i}.wav"))
    entry_bytes = 16000 * 4 + 128  # 1 s of float32 and the .npy header
    limit_gb = 2.5 * entry_bytes / 1e9
    cache = AudioCache(tmp_path / "c", limit_gb=limit_gb)
    report = prefill(cache, paths, progress=False)
    assert report.decoded == 5 and not report.failed
    kept = _entries(tmp_path / "c")
    assert len(kept) == 2
    assert sum(p.stat().st_size for p in kept) <= limit_gb * 1e9
    fresh = AudioCache(tmp_path / "c", limit_gb=0)  # 0: no limit
    assert np.array_equal(fresh.get(paths[0]), AudioCache(tmp_path / "u", limit_gb=0).get(paths[0]))
    assert len(_entries(tmp_path / "c")) == 3


def test_reading_an_entry_keeps_it_over_an_unread_newer_one(tmp_path):
    for name in "abc":
        save_audio(tmp_path / f"{name}.wav", voice(150, 1.0), 16000)
    paths = [str(tmp_path / f"{n}.wav") for n in "abc"]
    cache = AudioCache(tmp_path / "c")
    for i, path in enumerate(paths):
        cache.get(path)
        entry = cache._entry(cache.key(path))
        os.utime(entry, ns=(10**18 + i, 10**18 + i))  # written in the order a, b, c
    size = entry.stat().st_size
    later = AudioCache(tmp_path / "c", limit_gb=2 * size / 1e9)
    later.get(paths[0])  # a is read again: now the most recently used
    removed = later.evict()
    assert removed == [later._entry(later.key(paths[1]))]


def test_a_limit_below_the_working_set_is_reported(tmp_path, caplog):
    for i in range(3):
        save_audio(tmp_path / f"{i}.wav", voice(150, 1.0), 16000)
    cache = AudioCache(tmp_path / "c", limit_gb=1e-9)
    with caplog.at_level(logging.WARNING, logger="vgd.cache"):
        prefill(cache, [str(tmp_path / f"{i}.wav") for i in range(3)], progress=False)
    assert "raise the limit (audio_cache_gb)" in caplog.text


def _fill(root, paths):
    cache = AudioCache(root)
    return [float(cache.get(p).sum()) for p in paths]


def test_two_processes_fill_the_cache_at_once(tmp_path):
    paths = []
    for i in range(12):
        save_audio(tmp_path / f"{i}.wav", voice(100 + 10 * i, 1.0), 16000)
        paths.append(str(tmp_path / f"{i}.wav"))
    with mp.get_context("spawn").Pool(2) as pool:
        a, b = pool.starmap(_fill, [(tmp_path / "cache", paths)] * 2)
    assert a == b
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    assert _fill(tmp_path / "cache", paths) == a
