"""Where training batches come from: the packed corpus on the training device when it fits, the
DataLoader over ``AudioDataset`` when it does not.

The packed path (:class:`vgd.batches.DeviceBatcher`) builds each batch with a few tensor ops on
the device; the loader path builds it item by item in Python. With a decoded-audio cache the
packed corpus is written once into the cache and memory-mapped, so the trials of a search share
one copy through the page cache instead of each decoding and packing its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from vgd.audio import AudioError
from vgd.batches import DeviceBatcher, PackedCorpus, choose_storage, pack_corpus, seeded_generator
from vgd.cache import AudioCache, evict_oldest
from vgd.conditions import Conditions
from vgd.config import RunConfig, TrainConfig
from vgd.dataset import (
    AudioDataset,
    balanced_sampler,
    item_weights,
    speaker_weights,
    weighted_sampler,
)
from vgd.inference import Reader
from vgd.io import atomic_path
from vgd.manifest import Clip

log = logging.getLogger(__name__)

# The packed corpus may take this share of the training device's free memory (of available RAM
# on the CPU): the rest is for the model, the optimiser, activations and other trials.
MEMORY_SHARE = 0.25


class LoaderBatches:
    """``AudioDataset`` + ``DataLoader`` behind the batcher's interface, for corpora too big.

    The recording conditions come on the device, batched, after the items' own augmentation:
    here the noise goes through the speed change and the room too, and a faster crop wraps
    around (its clip's audio past the crop is not at hand).
    """

    def __init__(self, dataset: AudioDataset, config: TrainConfig, run: RunConfig, device):
        self.dataset, self.config, self.run, self.device = dataset, config, run, device
        self.conditions = Conditions(config.augment, config.audio.sample_rate)

    @property
    def item_labels(self) -> Tensor:
        return torch.tensor(self.dataset.targets)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def num_batches(self) -> int:
        bs = self.config.optim.batch_size
        return len(self.dataset) // bs if len(self.dataset) > bs else 1

    def epoch(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch's batches, moved to the training device."""
        cfg = self.config
        self.dataset.set_epoch(epoch)
        sampler = self._sampler(epoch)
        loader = DataLoader(
            self.dataset,
            batch_size=cfg.optim.batch_size,
            sampler=sampler,
            shuffle=sampler is None,
            num_workers=self.run.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=len(self.dataset) > cfg.optim.batch_size,
            generator=torch.Generator().manual_seed(cfg.seed * 7919 + epoch),
        )
        for b, (wave, label) in enumerate(loader):
            wave = wave.to(self.device, non_blocking=True)
            if self.conditions.active:
                wave = self.conditions(wave, seeded_generator(self.device, cfg.seed, epoch, 2, b))
            yield wave, label.to(self.device, non_blocking=True)

    def _sampler(self, epoch: int):
        """Class- or speaker-balanced draws per the config; None: a plain shuffle."""
        cfg, data = self.config, self.dataset
        if cfg.data.balance == "sampler":
            return balanced_sampler(data.targets, cfg.seed, epoch)
        if cfg.data.balance == "speaker":
            weights = item_weights(speaker_weights(data.clips), data.items)
            return weighted_sampler(weights, cfg.seed, epoch)
        return None


def memory_budget(device: torch.device) -> int:
    """Bytes the packed corpus may use on ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * MEMORY_SHARE)
    return int(available_memory() * MEMORY_SHARE)


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Bytes the kernel could hand out without swapping: ``MemAvailable``, page cache included.

    Free pages alone leave out the page cache, which a long-running machine fills, so they
    judged the same machine's room differently from one hour to the next.
    """
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def training_batches(
    config: TrainConfig,
    run: RunConfig,
    clips: Sequence[Clip],
    reader: Reader,
    device: torch.device,
) -> tuple[DeviceBatcher | LoaderBatches, list[str]]:
    """The epoch-batch source for ``clips`` and the clips it had to leave out (with reasons)."""
    # A crop is cut from this many samples: more than the crop when the speed changes.
    reach = Conditions(config.augment, config.audio.sample_rate).source_length(
        config.spec.window_samples
    )
    if run.train_input != "loader":
        files = _PackedFiles(run, config, clips) if run.cache_dir else None
        lengths = files.lengths() if files else None
        if lengths is None:
            waves, kept, failed = _decode(clips, reader)
            lengths = [w.shape[0] for w in waves]
            if files and failed:
                files = _PackedFiles(run, config, kept)
            elif files:
                files.save_lengths(lengths)
        else:  # an earlier run decoded every clip: the packed file may need none of them
            waves, kept, failed = None, list(clips), []
        total = sum(max(n, reach) for n in lengths)
        storage = choose_storage(total, memory_budget(device)) or (
            "int16" if run.train_input == "device" else None
        )
        if storage is not None:
            if files is None:
                corpus = pack_corpus(waves, storage, min_length=reach)
            else:
                corpus = files.packed(waves, lengths, reach, storage, reader)
            log.info("training batches: packed corpus on %s (%s)", device, corpus.data.dtype)
            return _batcher(corpus.to(device), kept, config), failed
        log.info("training batches: the decoded corpus does not fit; using the DataLoader")
    dataset = AudioDataset(
        clips,
        config.data.labels,
        reader,
        config.audio.sample_rate,
        config.window.seconds,
        augment=config.augment,
        seed=config.seed,
        crops_per_clip=config.data.crops_per_clip,
    )
    return LoaderBatches(dataset, config, run, device), []


def _batcher(corpus: PackedCorpus, clips: Sequence[Clip], config: TrainConfig) -> DeviceBatcher:
    index = {label: i for i, label in enumerate(config.data.labels)}
    return DeviceBatcher(
        corpus,
        [index[c.label] for c in clips],
        config.spec.window_samples,
        config.optim.batch_size,
        augment=config.augment,
        sample_rate=config.audio.sample_rate,
        seed=config.seed,
        crops_per_clip=config.data.crops_per_clip,
        balance=config.data.balance,
        clip_weights=speaker_weights(clips) if config.data.balance == "speaker" else None,
    )


def _decode(clips: Sequence[Clip], reader: Reader) -> tuple[list, list[Clip], list[str]]:
    """Every clip's waveform (memory-mapped when the reader is the cache); failures listed."""
    waves, kept, failed = [], [], []
    for clip in clips:
        try:
            waves.append(reader(clip.path))
            kept.append(clip)
        except AudioError as e:
            log.warning("left out unreadable clip %s", e)
            failed.append(str(e))
    return waves, kept, failed


class _PackedFiles:
    """The cache's packed-corpus files for one set of clips: the corpus once per storage type
    and crop reach, and the clips' lengths, so that later trials map the corpus without opening
    every clip's cache entry (~0.4 s a trial on the built-in corpus, measured)."""

    def __init__(self, run: RunConfig, config: TrainConfig, clips: Sequence[Clip]):
        cache = AudioCache(run.cache_dir, config.audio)
        self.folder = Path(run.cache_dir) / "packed"
        self.limit = int(run.packed_cache_gb * 1e9)
        self.clips = list(clips)
        self.entries = [cache.key(c.path) for c in self.clips]  # source, size, time and rate

    def _path(self, salt: str, suffix: str) -> Path:
        key = hashlib.sha1(salt.encode())
        for entry in self.entries:
            key.update(entry.encode())
        return self.folder / f"{key.hexdigest()}{suffix}"

    def lengths(self) -> list[int] | None:
        """Every clip's length in samples, as an earlier run that decoded them all saved it."""
        path = self._path("lengths", ".lengths.npy")
        if not path.exists():
            return None
        lengths = np.load(path)
        return lengths.tolist() if lengths.shape == (len(self.clips),) else None

    def save_lengths(self, lengths: Sequence[int]) -> None:
        with atomic_path(self._path("lengths", ".lengths.npy")) as tmp, open(tmp, "wb") as f:
            np.save(f, np.array(lengths, dtype=np.int64))

    def packed(
        self, waves: list | None, lengths: Sequence[int], min_length: int, storage: str, reader
    ) -> PackedCorpus:
        """The packed corpus, memory-mapped from its file (written first if missing; ``waves``
        None: decoded for it)."""
        path = self._path(f"{storage}|{min_length}", ".npy")
        try:
            os.utime(path)  # recently used: the last to be evicted
            data = _map(path)
        except FileNotFoundError:  # never packed, or evicted by another run
            if waves is None:
                waves = _decode(self.clips, reader)[0]
            packed = pack_corpus(waves, storage, min_length=min_length)
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, packed.data.numpy())
            if self.limit:
                evict_packed(self.folder, self.limit, keep=path)
            data = _map(path)
        sizes = np.array([max(n, min_length) for n in lengths], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return PackedCorpus(data, torch.from_numpy(offsets), torch.from_numpy(sizes))


def _map(path: Path) -> Tensor:
    with warnings.catch_warnings():  # a read-only map: the batcher only reads it
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.load(path, mmap_mode="r"))


def evict_packed(folder: Path, limit: int, keep: Path) -> list[Path]:
    """Remove the least recently used packed corpora in ``folder`` until they take at most
    ``limit`` bytes (``keep`` stays): every fold of every search packs its own training set,
    and without a bound they fill the disk."""
    corpora = [p for p in folder.glob("*.npy") if not p.name.endswith(".lengths.npy")]
    return evict_oldest(corpora, limit, keep=[keep])
