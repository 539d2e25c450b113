"""Device-resident training batches: the corpus in one tensor, crops cut by index arithmetic.

``AudioDataset`` builds every training item in Python (a numpy crop, then augmentation), which
holds training to a few hundred clips/s on two CPU cores. Here the decoded corpus lives in one
flat tensor on the training device and each epoch's randomness is drawn up front as vectors, so a
batch is a handful of batched tensor ops: a strided gather of the crops, gain, optional EQ (in the
rFFT domain) and circular shift, and white noise at a random SNR, with the recording conditions of
:mod:`vgd.conditions` (speed and room before them, telephone band and codec after) when they are
on. The same ops run on the CPU and on CUDA, and ``(seed, epoch)`` fixes every batch on a device.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vgd.conditions import Conditions, Draws
from vgd.config import AugmentConfig

log = logging.getLogger(__name__)

INT16_SCALE = 32767.0
STORAGE = {"float32": (torch.float32, np.float32, 4), "int16": (torch.int16, np.int16, 2)}
BALANCE = ("sampler", "speaker", "loss", "none")
# White noise is cut from a fixed bank (262 s at 16 kHz, plus a batch's worth): a batch's noisy
# rows take consecutive, disjoint crop-length chunks from a random offset, so each row's noise is
# white and independent of the others', at a fraction of torch.randn's cost per crop on the CPU.
NOISE_BANK = 1 << 22
EQ_KNOTS = torch.linspace(0.0, 1.0, 65, dtype=torch.float64)  # as vgd.dataset.EQ_KNOTS
NO_AUGMENT = AugmentConfig(gain_db=0.0, noise_prob=0.0, shift_s=0.0, eq_db=0.0)


def choose_storage(total_samples: int, budget_bytes: int) -> str | None:
    """``"int16"`` if the samples fit the budget at 2 bytes each, else None.

    Never float32, even where it would fit: the two round a sample differently, so choosing by
    free memory made the same seed train a different model on a machine with more of it.
    """
    size = total_samples * STORAGE["int16"][2]
    if size <= budget_bytes:
        log.info(
            "packing %d samples as int16: %.2f of %.2f GiB",
            total_samples,
            size / 2**30,
            budget_bytes / 2**30,
        )
        return "int16"
    log.warning(
        "%d samples do not fit %.2f GiB even as int16 (%.2f GiB needed)",
        total_samples,
        budget_bytes / 2**30,
        total_samples * 2 / 2**30,
    )
    return None


@dataclass(frozen=True, eq=False)
class PackedCorpus:
    """Clips end to end in one 1-D tensor: clip i is ``data[offsets[i]:][: lengths[i]]``."""

    data: Tensor  # (N,) int16 (32767 × the waveform) or float32
    offsets: Tensor  # (n_clips,) int64
    lengths: Tensor  # (n_clips,) int64

    def __len__(self) -> int:
        return self.offsets.shape[0]

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def scale(self) -> float:
        """What a stored sample is multiplied by to give the waveform's value."""
        return 1.0 / INT16_SCALE if self.data.dtype == torch.int16 else 1.0

    def clip(self, index: int) -> Tensor:
        """Clip ``index`` as a float32 waveform (a copy)."""
        start, n = int(self.offsets[index]), int(self.lengths[index])
        return self.data[start : start + n].float() * self.scale

    def to(self, device: str | torch.device) -> PackedCorpus:
        """The corpus on ``device``; through pinned memory when that is CUDA, for a faster copy."""
        device = torch.device(device)

        def move(t: Tensor) -> Tensor:
            if device.type == "cuda" and t.device.type == "cpu":
                return t.pin_memory().to(device, non_blocking=True)
            return t.to(device)

        return PackedCorpus(move(self.data), move(self.offsets), move(self.lengths))


def pack_corpus(
    waves: Sequence[np.ndarray], dtype: str | torch.dtype = "int16", min_length: int = 0
) -> PackedCorpus:
    """Concatenate mono waveforms (arrays or read-only memmaps) into one int16/float32 tensor.

    A clip shorter than ``min_length`` is stored repeated to that length (``np.resize``, as
    ``vgd.inference.crop`` tiles it); with ``min_length=crop`` every crop is one slice.
    """
    name = _storage_name(dtype)
    for i, wave in enumerate(waves):
        if wave.ndim != 1 or wave.shape[0] == 0:
            raise ValueError(f"clip {i}: expected a non-empty mono waveform, found {wave.shape}")
    lengths = np.array([max(w.shape[0], min_length) for w in waves], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    data = np.empty(int(lengths.sum()), dtype=STORAGE[name][1])
    for wave, start, n in zip(waves, offsets, lengths):
        wave = np.asarray(wave, dtype=np.float32)
        data[start : start + n] = _encode(wave if wave.shape[0] == n else np.resize(wave, n), name)
    return PackedCorpus(
        torch.from_numpy(data), torch.from_numpy(offsets), torch.from_numpy(lengths)
    )


def _storage_name(dtype: str | torch.dtype) -> str:
    for name, (torch_dtype, _, _) in STORAGE.items():
        if dtype in (name, torch_dtype):
            return name
    raise ValueError(f"storage dtype must be int16 or float32, not {dtype!r}")


def _encode(wave: np.ndarray, name: str) -> np.ndarray:
    if name == "float32":
        return wave
    return np.clip(np.rint(wave * INT16_SCALE), -INT16_SCALE, INT16_SCALE)


def roll_rows(x: Tensor, shifts: Tensor) -> Tensor:
    """Row i of (B, n) ``x`` circularly shifted by ``shifts[i]`` (as ``np.roll``), batched."""
    b, n = x.shape
    doubled = torch.cat([x, x], dim=1).view(-1)  # row i of x twice, end to end
    starts = torch.arange(b, device=x.device) * 2 * n + torch.remainder(-shifts, n)
    return doubled.unfold(0, n, 1)[starts]


def eq_bases(crop: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The three EQ cosines over log frequency at each rFFT bin (3, bins) and at the 65 knots."""
    bins = crop // 2 + 1
    positions = torch.log(torch.arange(1, bins + 1, dtype=torch.float64)) / math.log(max(bins, 2))
    k = torch.arange(1, 4, dtype=torch.float64)[:, None]
    at_bins, at_knots = torch.cos(math.pi * k * positions), torch.cos(math.pi * k * EQ_KNOTS)
    return at_bins.float().to(device), at_knots.float().to(device)


def seeded_generator(device: torch.device, *words: int) -> torch.Generator:
    """A torch generator on ``device`` seeded from a tuple of integers."""
    entropy = [w % 2**64 for w in words]  # SeedSequence takes non-negative integers only
    seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])
    return torch.Generator(device=device).manual_seed(seed)


@dataclass(frozen=True, eq=False)
class _Plan:
    """One epoch's draws, one entry per item in batch order (every batch is a slice)."""

    starts: Tensor  # (n,) int64 start of the crop in the flat corpus
    labels: Tensor  # (n,) int64
    gains: Tensor  # (n,) linear gain, the int16 scale folded in
    snr_db: Tensor  # (n,)
    shifts: Tensor  # (n,) int64 samples
    eq: Tensor  # (n, 3) cosine amplitudes
    noisy: list[int]  # rows of each batch that get noise (its first ones)
    noise_at: list[int]  # where each batch's noise starts in the noise bank


class DeviceBatcher:
    """Augmented training batches ``(waves (B, crop) float32, labels (B,) int64)`` of a corpus.

    Stands in for ``AudioDataset`` + ``DataLoader``: the same items per epoch (crops
    per clip, class-balanced sampling or a shuffle, the last partial batch dropped when there is
    more than one) and the same augmentations as ``augment_wave``, drawn from ``(seed, epoch)``.
    With speed perturbation on, a crop is resampled from a longer run of its clip (``reach``
    samples, ``Conditions.source_length(crop)``), so no clip may be shorter than that.
    """

    def __init__(
        self,
        corpus: PackedCorpus,
        labels: Sequence[int] | Tensor,
        crop: int,
        batch_size: int,
        augment: AugmentConfig | None = None,
        sample_rate: int = 16000,
        seed: int = 0,
        crops_per_clip: int = 0,
        balance: str = "sampler",
        clip_weights: Sequence[float] | None = None,
    ):
        self.augment = augment or NO_AUGMENT
        self.conditions = Conditions(self.augment, sample_rate)
        self.reach = self.conditions.source_length(crop)  # samples a crop is cut from
        _check_args(corpus, labels, crop, self.reach, batch_size, balance)
        _check_weights(corpus, clip_weights, balance)
        self.corpus, self.crop, self.batch_size = corpus, crop, batch_size
        self.seed, self.balance = seed, balance
        self.shift_limit = int(self.augment.shift_s * sample_rate)
        dev = corpus.device
        self.clip_labels = torch.as_tensor(labels, dtype=torch.int64).to(dev)
        counts = (
            torch.full_like(corpus.lengths, crops_per_clip)
            if crops_per_clip > 0
            else (corpus.lengths // crop).clamp_min(1)  # one crop per crop length of audio
        )
        self.item_clips = torch.repeat_interleave(torch.arange(len(corpus), device=dev), counts)
        self._class_items(self.item_labels)
        self._cdf = self._item_cdf(clip_weights, counts) if balance == "speaker" else None
        # Row r of this view is data[r : r + reach]: a batch of crops is one gather of rows.
        self._windows = corpus.data.unfold(0, self.reach, 1)
        bank_size = NOISE_BANK + self.batch_rows * crop
        self._noise = torch.randn(
            bank_size, generator=seeded_generator(dev, seed, 0, 1), device=dev
        )
        self._eq_bins, self._eq_knots = eq_bases(crop, dev)

    def _class_items(self, item_labels: Tensor) -> None:
        """Items grouped by class, for sampling a class uniformly and then an item of it."""
        counts = torch.bincount(item_labels)
        present = counts > 0
        self._by_class = torch.argsort(item_labels, stable=True)
        self._class_counts = counts[present]
        self._class_starts = (torch.cumsum(counts, 0) - counts)[present]

    def _item_cdf(self, clip_weights: Sequence[float], counts: Tensor) -> Tensor:
        """Cumulative item weights: a clip's weight shared equally by its items (crops)."""
        w = torch.as_tensor(clip_weights, dtype=torch.float64).to(self.device)
        per_item = (w / counts.to(torch.float64))[self.item_clips]
        return torch.cumsum(per_item, 0)

    @property
    def device(self) -> torch.device:
        return self.corpus.device

    @property
    def item_labels(self) -> Tensor:
        """The label of every item (crop) of an epoch, e.g. for ``class_weights``."""
        return self.clip_labels[self.item_clips]

    def __len__(self) -> int:
        """Items (crops) in one epoch before the last partial batch is dropped."""
        return self.item_clips.shape[0]

    @property
    def batch_rows(self) -> int:
        return min(self.batch_size, len(self))

    @property
    def num_batches(self) -> int:
        return len(self) // self.batch_rows

    def epoch(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield one epoch's batches; the same seed and epoch give the same batches on a device."""
        plan = self._plan(seeded_generator(self.device, self.seed, epoch, 0))
        rows = self.batch_rows
        for b, (noisy, noise_at) in enumerate(zip(plan.noisy, plan.noise_at)):
            part = slice(b * rows, (b + 1) * rows)
            x = self._batch(plan, part, noisy, noise_at, self._conditions_generator(epoch, b))
            yield x, plan.labels[part]

    def _conditions_generator(self, epoch: int, batch: int) -> torch.Generator | None:
        """A batch's own generator for the recording conditions, apart from the plan's draws."""
        if not self.conditions.active:
            return None
        return seeded_generator(self.device, self.seed, epoch, 2, batch)

    def _order(self, gen: torch.Generator, n: int) -> Tensor:
        """The epoch's items: class-balanced or weighted draws with replacement, or a shuffle."""
        dev = self.device
        if self._cdf is not None:  # inverse CDF: multinomial stops at 2^24 items
            u = torch.rand(n, generator=gen, device=dev, dtype=torch.float64) * self._cdf[-1]
            return torch.searchsorted(self._cdf, u, right=True).clamp_max(len(self) - 1)
        if self.balance != "sampler":
            return torch.randperm(len(self), generator=gen, device=dev)[:n]
        # A class uniformly, then an item of it uniformly: the weights 1 / count[class] that
        # balanced_sampler gives WeightedRandomSampler, without multinomial's 2^24-item limit.
        cls = torch.randint(len(self._class_counts), (n,), generator=gen, device=dev)
        u = torch.rand(n, generator=gen, device=dev, dtype=torch.float64)
        within = (u * self._class_counts[cls]).long()
        return self._by_class[self._class_starts[cls] + within]

    def _plan(self, gen: torch.Generator) -> _Plan:
        """Every random choice of an epoch, drawn in one go (each drawn even when unused, so
        switching one augmentation on does not change the others' draws)."""
        n, dev, a = self.num_batches * self.batch_rows, self.device, self.augment

        def uniform(lo: float, hi: float, *shape: int) -> Tensor:
            return lo + (hi - lo) * torch.rand(n, *shape, generator=gen, device=dev)

        clips = self.item_clips[self._order(gen, n)]
        room = self.corpus.lengths[clips] - self.reach + 1
        u = torch.rand(n, generator=gen, device=dev, dtype=torch.float64)
        starts = self.corpus.offsets[clips] + (u * room).long()
        gains = 10 ** (uniform(-a.gain_db, a.gain_db) / 20) * self.corpus.scale
        snr_db = uniform(*a.noise_snr_db)
        lim = self.shift_limit
        shifts = torch.randint(-lim, lim + 1, (n,), generator=gen, device=dev)
        eq = uniform(-1.0, 1.0, 3) / torch.arange(1, 4, device=dev)
        # Rows come in random order, so noising the first k ~ Binomial(B, p) rows of a batch is
        # the same as an independent coin per row, and the noisy rows form one slice.
        coins = torch.rand(self.num_batches, self.batch_rows, generator=gen, device=dev)
        noisy = (coins < a.noise_prob).sum(1).tolist()
        noise_at = torch.randint(NOISE_BANK + 1, (self.num_batches,), generator=gen, device=dev)
        labels = self.clip_labels[clips]
        return _Plan(starts, labels, gains, snr_db, shifts, eq, noisy, noise_at.tolist())

    def _batch(
        self, plan: _Plan, part: slice, noisy: int, noise_at: int, gen: torch.Generator | None
    ) -> Tensor:
        """One batch of crops: speed and room, then as ``augment_wave`` does shift, EQ, gain and
        noise, then telephone band and codec (the conditions only with a generator)."""
        # index_select copies whole rows at memcpy speed; [] on this view goes sample by sample.
        x = self._windows.index_select(0, plan.starts[part]).float()  # (B, reach), a copy
        x.mul_(plan.gains[part, None])
        draws = Draws.draw(x.shape[0], gen) if gen is not None else None
        if draws is not None and self.conditions.before:
            x = self.conditions.speaker_and_room(x, self.crop, draws, gen)
        # Gain, EQ and circular shift are linear and commute, so their order is free; noise
        # comes last because its level follows the crop's power after all of them.
        if self.augment.eq_db > 0:
            x = self._equalize(x, plan.eq[part])
        if self.shift_limit > 0:
            x = roll_rows(x, plan.shifts[part])
        if noisy:
            snr_db = plan.snr_db[part.start : part.start + noisy]
            self._add_noise(x[:noisy], snr_db, noise_at)
        if draws is not None and self.conditions.after:
            x = self.conditions.channel(x, draws)
        return x

    def _equalize(self, x: Tensor, amps: Tensor) -> Tensor:
        """``random_eq`` batched: a gain curve within ±eq_db over log frequency, per crop."""
        # The curve is evaluated at every bin instead of interpolated from the 65 knots (the
        # same smooth curve); its peak is still measured on the knots, as random_eq does.
        curve = amps @ self._eq_bins  # (B, bins)
        peak = (amps @ self._eq_knots).abs().amax(1, keepdim=True).clamp_min(1.0)
        gain = torch.pow(10.0, self.augment.eq_db * curve / peak / 20)
        return torch.fft.irfft(torch.fft.rfft(x, dim=1) * gain, n=self.crop, dim=1)

    def _add_noise(self, x: Tensor, snr_db: Tensor, noise_at: int) -> None:
        """Add white noise to (k, crop) ``x`` in place, at ``snr_db`` below each row's power."""
        power = torch.linalg.vector_norm(x, dim=1).square() / self.crop + 1e-10
        std = torch.sqrt(power * 10 ** (-snr_db / 10))
        noise = self._noise.narrow(0, noise_at, x.shape[0] * self.crop).view_as(x)  # no copy
        x.addcmul_(noise, std[:, None])


def _check_weights(
    corpus: PackedCorpus, clip_weights: Sequence[float] | None, balance: str
) -> None:
    """Speaker balance needs one positive weight per clip (``vgd.dataset.speaker_weights``)."""
    if balance != "speaker":
        return
    if clip_weights is None or len(clip_weights) != len(corpus):
        found = "none" if clip_weights is None else len(clip_weights)
        raise ValueError(f"balance 'speaker': expected {len(corpus)} clip weights, found {found}")
    if min(clip_weights) <= 0:
        raise ValueError("balance 'speaker': clip weights must be > 0")


def _check_args(
    corpus: PackedCorpus,
    labels: Sequence[int] | Tensor,
    crop: int,
    reach: int,
    batch_size: int,
    balance: str,
) -> None:
    """Raise ValueError naming what was expected and what was found."""
    if len(labels) != len(corpus):
        raise ValueError(f"labels: expected one per clip ({len(corpus)}), found {len(labels)}")
    if crop < 2 or batch_size < 1:
        raise ValueError(f"crop must be >= 2 and batch_size >= 1, found {crop} and {batch_size}")
    if balance not in BALANCE:
        raise ValueError(f"balance must be one of {BALANCE}, not {balance!r}")
    if len(corpus) == 0:
        raise ValueError("the corpus has no clips")
    if int(torch.as_tensor(labels).min()) < 0:
        raise ValueError("labels must be class indices >= 0 (leave unreadable clips out)")
    shortest = int(corpus.lengths.min())
    if shortest < reach:
        raise ValueError(
            f"a clip of {shortest} samples is shorter than the {reach} samples a crop is cut "
            "from (pack_corpus(..., min_length=crop) tiles short clips; with speed_pct, "
            "min_length=Conditions.source_length(crop))"
        )
