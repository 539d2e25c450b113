"""``AudioDataset``: manifest clips → random fixed-length training crops with labels.

Each epoch draws new crops with waveform augmentation (evaluation windows are
:mod:`vgd.inference`'s business). Randomness comes from ``(seed, epoch, index)``, so results do not
depend on how many DataLoader workers there are or on a resumed run's history.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from vgd.audio import AudioError, audio_info, load_audio
from vgd.cache import AudioCache
from vgd.config import AUDIO_CACHE_GB, AudioConfig, AugmentConfig
from vgd.inference import Reader, crop
from vgd.manifest import Clip

log = logging.getLogger(__name__)

IGNORE = -100  # label of an unreadable clip's placeholder; the loss skips it


def make_reader(
    audio: AudioConfig, cache_dir: str = "", cache_gb: float = AUDIO_CACHE_GB
) -> Reader:
    """A function path → waveform: through the on-disk cache when one is configured."""
    if cache_dir:
        return AudioCache(cache_dir, audio, cache_gb).get
    return lambda path: load_audio(path, audio)


EQ_KNOTS = np.linspace(0.0, 1.0, 65)  # the EQ curve is smooth: 65 knots, interpolated per bin


@functools.cache
def _log_positions(n_bins: int) -> np.ndarray:
    """Each FFT bin's place on a 0..1 log-frequency axis (every crop has the same length)."""
    return np.log(np.arange(1, n_bins + 1)) / np.log(n_bins)


def random_eq(wave: np.ndarray, max_db: float, rng: np.random.Generator) -> np.ndarray:
    """Colour ``wave`` with a random smooth gain curve over log frequency, within ±``max_db``.

    Three cosines over log frequency move broad spectral tilt and bumps, the way microphones
    and rooms differ, while leaving the narrower formant peaks and the harmonics in place.
    """
    spectrum = np.fft.rfft(wave)
    amps = rng.uniform(-1.0, 1.0, 3) / np.arange(1, 4)
    curve = sum(a * np.cos(np.pi * (k + 1) * EQ_KNOTS) for k, a in enumerate(amps))
    gain = 10 ** (max_db * curve / max(float(np.abs(curve).max()), 1.0) / 20)
    per_bin = np.interp(_log_positions(spectrum.shape[0]), EQ_KNOTS, gain)
    return np.fft.irfft(spectrum * per_bin, n=wave.shape[0]).astype(np.float32)


def augment_wave(
    wave: np.ndarray, config: AugmentConfig, rng: np.random.Generator, sample_rate: int
) -> np.ndarray:
    """Random time shift, EQ, gain, and additive white noise at a random SNR."""
    if config.shift_s > 0:
        limit = int(config.shift_s * sample_rate)
        wave = np.roll(wave, int(rng.integers(-limit, limit + 1)))
    if config.eq_db > 0:
        wave = random_eq(wave, config.eq_db, rng)
    if config.gain_db > 0:
        wave = wave * np.float32(10 ** (rng.uniform(-config.gain_db, config.gain_db) / 20))
    if rng.random() < config.noise_prob:
        snr = rng.uniform(*config.noise_snr_db)
        power = float(np.mean(np.square(wave))) + 1e-10
        noise = rng.standard_normal(wave.shape[0]).astype(np.float32)
        wave = wave + noise * np.float32(math.sqrt(power / 10 ** (snr / 10)))
    return wave.astype(np.float32, copy=False)


class AudioDataset(Dataset):
    """Random training crops of manifest clips, augmented, as ``(wave, label)`` items."""

    def __init__(
        self,
        clips: Sequence[Clip],
        labels: Sequence[str],
        reader: Reader,
        sample_rate: int,
        crop_s: float,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        crops_per_clip: int = 1,
    ):
        self.clips = list(clips)
        self.label_index = {label: i for i, label in enumerate(labels)}
        self.clip_targets = [self.label_index[c.label] for c in self.clips]
        self.reader = reader
        self.sample_rate = sample_rate
        self.crop = round(crop_s * sample_rate)
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.items = self._crops(crops_per_clip)
        self.targets = [self.clip_targets[i] for i in self.items]

    def _crops(self, per_clip: int) -> list[int]:
        """Clip index of every training item: ``per_clip`` each, or one per crop of audio (0)."""
        counts = [per_clip or max(1, self._samples(c) // self.crop) for c in self.clips]
        return [i for i, k in enumerate(counts) for _ in range(k)]

    def _samples(self, clip: Clip) -> int:
        """The clip's length in samples: the manifest's duration, or the file header's."""
        if clip.duration_s:
            return round(clip.duration_s * self.sample_rate)
        try:
            return round(audio_info(clip.path).duration_s * self.sample_rate)
        except AudioError:
            return 0

    def set_epoch(self, epoch: int) -> None:
        """Draw different training crops each epoch (call before iterating a DataLoader)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        rng = np.random.default_rng((self.seed, self.epoch, index))
        wave, ok = self._read(self.items[index])
        start = int(rng.integers(0, max(wave.shape[0] - self.crop, 0) + 1))
        out = crop(wave, start, self.crop)
        if self.augment is not None and ok:
            out = augment_wave(out, self.augment, rng, self.sample_rate)
        return torch.from_numpy(out), self.clip_targets[self.items[index]] if ok else IGNORE

    def _read(self, index: int) -> tuple[np.ndarray, bool]:
        try:
            return self.reader(self.clips[index].path), True
        except AudioError as e:
            log.warning("skipping unreadable clip: %s", e)
            return np.zeros(self.crop, dtype=np.float32), False


def balanced_sampler(targets: Sequence[int], seed: int, epoch: int) -> WeightedRandomSampler:
    """Sample each class equally often (with replacement), reproducibly per epoch."""
    counts = np.bincount(targets)
    return weighted_sampler([1.0 / counts[t] for t in targets], seed, epoch)


def weighted_sampler(weights: Sequence[float], seed: int, epoch: int) -> WeightedRandomSampler:
    """Draw items in proportion to ``weights`` (with replacement), reproducibly per epoch."""
    w = torch.tensor(list(weights), dtype=torch.double)
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return WeightedRandomSampler(w, num_samples=len(w), replacement=True, generator=gen)


def speaker_weights(clips: Sequence[Clip]) -> list[float]:
    """Each clip's sampling weight for speaker-balanced training over one or more corpora.

    Every speaker weighs the same, so a corpus of 20 clips a speaker does not outweigh one of a
    single clip a speaker (a speaker's clips share its weight); within each corpus the labels
    weigh the same (its speakers of a label share half of the corpus's weight, with two labels),
    and each corpus weighs as much as its share of the speakers. The weights sum to 1.
    """
    clips_of: dict[tuple[str, str], int] = defaultdict(int)
    for c in clips:
        clips_of[(c.corpus, c.speaker)] += 1
    speakers_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for c in clips:
        speakers_of[(c.corpus, c.label)].add(c.speaker)
    labels_in: dict[str, int] = defaultdict(int)
    for corpus, _ in speakers_of:
        labels_in[corpus] += 1
    in_corpus = {
        corpus: sum(len(s) for (c, _), s in speakers_of.items() if c == corpus)
        for corpus in labels_in
    }
    n = sum(in_corpus.values())
    return [
        in_corpus[c.corpus]
        / n
        / labels_in[c.corpus]
        / len(speakers_of[(c.corpus, c.label)])
        / clips_of[(c.corpus, c.speaker)]
        for c in clips
    ]


def item_weights(clip_weights: Sequence[float], item_clips: Sequence[int]) -> list[float]:
    """Clip weights spread over the clip's items (crops): each crop gets an equal share."""
    counts = np.bincount(np.asarray(item_clips, dtype=np.int64), minlength=len(clip_weights))
    return [clip_weights[i] / counts[i] for i in item_clips]


def class_weights(targets: Sequence[int], n_classes: int) -> torch.Tensor:
    """Inverse-frequency loss weights that give each class the same total weight."""
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)
