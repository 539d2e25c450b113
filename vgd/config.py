"""Typed, frozen configuration: one dataclass per concern, built from YAML and validated once.

The training config lives here (``TrainConfig`` and the dataclasses it is made of), with the one
loader every config class goes through. Configs of other concerns live beside their code: the
pipeline's and the search's in ``vgd.params``, prediction's, segmentation's, the VAD's and the
synthetic corpus's in ``vgd.predict``, ``vgd.segment``, ``vgd.vad`` and ``vgd.synth``. Loaders
reject unknown keys (naming them), derived values are properties, and overrides are addressed by
dotted path (``optim.lr``), the same paths the search spaces and ``params.yaml`` use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

T = TypeVar("T")

LABELS = ("female", "male")


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the key."""


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


@dataclass(frozen=True)
class AudioConfig:
    """How files become waveforms: target rate and what counts as unusable audio."""

    sample_rate: int = 16000
    min_duration_s: float = 0.5
    silence_dbfs: float = -60.0  # a clip whose RMS level is below this is "silent"

    def __post_init__(self) -> None:
        _check(8000 <= self.sample_rate <= 48000, "audio.sample_rate", "must be in [8000, 48000]")
        _check(self.min_duration_s >= 0, "audio.min_duration_s", "must be >= 0")
        _check(self.silence_dbfs < 0, "audio.silence_dbfs", "must be negative (dBFS)")


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel front end; window and hop in milliseconds so they mean the same at any rate."""

    n_mels: int = 48
    win_ms: float = 25.0
    hop_ms: float = 16.0  # 16 ms rather than 10: a third of the frames, the same accuracy
    f_min: float = 50.0
    f_max: float = 7600.0
    # utterance: one mean/var per clip, keeping the spectral envelope (formants) that per-band
    # ("channel") normalisation would subtract; none: raw log-mels
    normalize: str = "utterance"
    # power spectra averaged over this band before the mel bands (0: off). Wider than a voice's
    # F0 (~300 Hz), it blurs the pitch's harmonics and keeps the formants: a model that cannot
    # hear the pitch has to learn the vocal tract
    smooth_hz: float = 0.0

    def __post_init__(self) -> None:
        _check(8 <= self.n_mels <= 256, "features.n_mels", "must be in [8, 256]")
        _check(0 <= self.smooth_hz <= 2000, "features.smooth_hz", "must be in [0, 2000]")
        _check(5 <= self.win_ms <= 100, "features.win_ms", "must be in [5, 100]")
        _check(1 <= self.hop_ms <= self.win_ms, "features.hop_ms", "must be in [1, win_ms]")
        _check(0 <= self.f_min < self.f_max, "features.f_min", "must be >= 0 and < f_max")
        _check(
            self.normalize in ("channel", "utterance", "none"),
            "features.normalize",
            f"must be channel, utterance or none, not {self.normalize!r}",
        )

    def win_length(self, sample_rate: int) -> int:
        return round(sample_rate * self.win_ms / 1000)

    def hop_length(self, sample_rate: int) -> int:
        return round(sample_rate * self.hop_ms / 1000)

    def n_fft(self, sample_rate: int) -> int:
        return 1 << (self.win_length(sample_rate) - 1).bit_length()


@dataclass(frozen=True)
class ModelConfig:
    """The CNN: ``n_blocks`` × (conv → BN → ReLU → max-pool → dropout), global pool, linear."""

    n_blocks: int = 4
    width: int = 16  # channels of the first block; doubles per block up to 8 × width
    kernel_size: int = 3
    dropout: float = 0.1
    pooling: str = "avgmax"  # avg, max, or avgmax (both, concatenated)
    encoder: str = "none"  # none, or ge2e: a pretrained speaker encoder beside the CNN
    encoder_c: float = 1.0  # its probe's inverse L2 strength (logistic regression's C)

    def __post_init__(self) -> None:
        _check(1 <= self.n_blocks <= 6, "model.n_blocks", "must be in [1, 6]")
        _check(2 <= self.width <= 256, "model.width", "must be in [2, 256]")
        _check(self.kernel_size in (3, 5, 7), "model.kernel_size", "must be 3, 5 or 7")
        _check(0 <= self.dropout < 1, "model.dropout", "must be in [0, 1)")
        _check(
            self.pooling in ("avg", "max", "avgmax"),
            "model.pooling",
            f"must be avg, max or avgmax, not {self.pooling!r}",
        )
        _check(
            self.encoder in ("none", "ge2e"),
            "model.encoder",
            f"must be none or ge2e, not {self.encoder!r}",
        )
        _check(self.encoder_c > 0, "model.encoder_c", "must be > 0")

    def channels(self) -> list[int]:
        return [self.width * 2 ** min(i, 3) for i in range(self.n_blocks)]


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation; zero turns each one off."""

    CODECS: ClassVar[tuple[str, ...]] = ("mulaw", "ogg", "mp3")  # the choices of ``codecs``
    gain_db: float = 6.0  # uniform gain in ±gain_db
    noise_prob: float = 0.5
    noise_snr_db: tuple[float, float] = (10.0, 40.0)
    shift_s: float = 0.0  # circular time shift in ±shift_s
    eq_db: float = 0.0  # random smooth EQ (a microphone/room colouring) of up to ±eq_db
    freq_masks: int = 1
    freq_mask_width: int = 8
    time_masks: int = 1
    time_mask_width: int = 20
    # Recording conditions (vgd.conditions), each off at zero.
    speed_pct: float = 0.0  # speed (tempo and pitch) changed by a factor in ±speed_pct percent
    reverb_prob: float = 0.0  # share of crops played in a synthetic room
    reverb_rt60_s: tuple[float, float] = (0.2, 0.8)
    reverb_drr_db: tuple[float, float] = (0.0, 12.0)  # direct-to-reverberant energy ratio
    telephone_prob: float = 0.0  # share of crops through an 8 kHz, 300-3400 Hz channel
    codec_prob: float = 0.0  # share of crops through one of ``codecs``
    codecs: str = "mulaw"  # "+"-joined choices of mulaw, ogg, mp3 (a string: searchable)
    # The pitch's harmonics moved by a factor in ±pitch_pct percent, the formants kept
    # (vgd.features.PitchShift), on a pitch_prob share of crops.
    pitch_pct: float = 0.0
    pitch_prob: float = 0.5

    def __post_init__(self) -> None:
        _check(self.gain_db >= 0, "augment.gain_db", "must be >= 0")
        _check(0 <= self.noise_prob <= 1, "augment.noise_prob", "must be in [0, 1]")
        lo, hi = self.noise_snr_db
        _check(lo <= hi, "augment.noise_snr_db", "must be [low, high] with low <= high")
        _check(self.shift_s >= 0, "augment.shift_s", "must be >= 0")
        _check(0 <= self.eq_db <= 24, "augment.eq_db", "must be in [0, 24]")
        for name in ("freq_masks", "freq_mask_width", "time_masks", "time_mask_width"):
            _check(getattr(self, name) >= 0, f"augment.{name}", "must be >= 0")
        self._check_conditions()

    def _check_conditions(self) -> None:
        """Validate the recording-condition fields."""
        _check(0 <= self.speed_pct <= 20, "augment.speed_pct", "must be in [0, 20] percent")
        _check(0 <= self.pitch_pct <= 40, "augment.pitch_pct", "must be in [0, 40] percent")
        _check(0 <= self.pitch_prob <= 1, "augment.pitch_prob", "must be in [0, 1]")
        for name in ("reverb_prob", "telephone_prob", "codec_prob"):
            _check(0 <= getattr(self, name) <= 1, f"augment.{name}", "must be in [0, 1]")
        lo, hi = self.reverb_rt60_s
        _check(
            0.05 <= lo <= hi <= 3, "augment.reverb_rt60_s", "must be [low, high] within [0.05, 3] s"
        )
        lo, hi = self.reverb_drr_db
        _check(lo <= hi, "augment.reverb_drr_db", "must be [low, high] with low <= high")
        names = self.codec_names
        _check(
            bool(names) and set(names) <= set(self.CODECS) and len(set(names)) == len(names),
            "augment.codecs",
            f"must be distinct {'/'.join(self.CODECS)} joined by '+', not {self.codecs!r}",
        )

    @property
    def pitch_active(self) -> bool:
        """Whether training shifts any crop's pitch."""
        return self.pitch_pct > 0 and self.pitch_prob > 0

    @property
    def codec_names(self) -> tuple[str, ...]:
        """The codecs a coded crop is drawn from, e.g. ``("mulaw", "ogg")``."""
        return tuple(self.codecs.split("+"))


@dataclass(frozen=True)
class SplitConfig:
    """Speaker-disjoint, gender-stratified split fractions and the seed that fixes them."""

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        _check(0 <= self.val_fraction < 1, "split.val_fraction", "must be in [0, 1)")
        _check(0 <= self.test_fraction < 1, "split.test_fraction", "must be in [0, 1)")
        _check(
            self.val_fraction + self.test_fraction < 1,
            "split.test_fraction",
            "val_fraction + test_fraction must be < 1",
        )


@dataclass(frozen=True)
class WindowConfig:
    """How a recording becomes model inputs: fixed-length windows whose probabilities are pooled.

    Training crops have the same length, so the model sees at inference what it learnt on.
    """

    seconds: float = 3.0
    # 0: every window needed to cover the recording; N: at most N of them, evenly spaced
    max_windows: int = 0

    def __post_init__(self) -> None:
        _check(0.25 <= self.seconds <= 30, "window.seconds", "must be in [0.25, 30] seconds")
        _check(self.max_windows >= 0, "window.max_windows", "must be >= 0 (0: all windows)")

    def samples(self, sample_rate: int) -> int:
        return round(self.seconds * sample_rate)


@dataclass(frozen=True)
class DataConfig:
    """Which clips feed training and validation, how many crops each gives, how classes balance."""

    labels: tuple[str, ...] = LABELS
    train_splits: tuple[str, ...] = ("train",)
    val_split: str = "val"  # empty: no validation, train for the full schedule
    crops_per_clip: int = 0  # training crops per clip per epoch; 0: one per window of audio
    # sampler: class-balanced sampling; speaker: every speaker equal, labels equal within each
    # corpus (vgd.dataset.speaker_weights); loss: class weights; none
    balance: str = "sampler"

    def __post_init__(self) -> None:
        _check(len(set(self.labels)) == len(self.labels) >= 2, "data.labels", "need 2+ distinct")
        _check(len(self.train_splits) >= 1, "data.train_splits", "need at least one split")
        _check(self.crops_per_clip >= 0, "data.crops_per_clip", "must be >= 0 (0: by duration)")
        _check(
            self.balance in ("sampler", "speaker", "loss", "none"),
            "data.balance",
            f"must be sampler, speaker, loss or none, not {self.balance!r}",
        )


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a one-cycle or cosine schedule, early stopping on validation balanced accuracy."""

    lr: float = 3e-3
    weight_decay: float = 1e-2
    batch_size: int = 32
    epochs: int = 40
    patience: int = 0  # epochs without improvement before stopping; 0: no early stopping
    schedule: str = "onecycle"  # onecycle, cosine, constant
    label_smoothing: float = 0.0
    grad_clip: float = 5.0
    # > 0: validate, pick and ship an exponential moving average of the weights (per step)
    ema_decay: float = 0.0
    # which epoch's weights a run keeps: best (on validation) or last (validation only reported)
    select: str = "best"

    def __post_init__(self) -> None:
        _check(0 < self.lr < 1, "optim.lr", "must be in (0, 1)")
        _check(self.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
        _check(1 <= self.batch_size <= 4096, "optim.batch_size", "must be in [1, 4096]")
        _check(1 <= self.epochs <= 1000, "optim.epochs", "must be in [1, 1000]")
        _check(self.patience >= 0, "optim.patience", "must be >= 0")
        _check(
            self.schedule in ("onecycle", "cosine", "constant"),
            "optim.schedule",
            f"must be onecycle, cosine or constant, not {self.schedule!r}",
        )
        _check(0 <= self.label_smoothing < 0.5, "optim.label_smoothing", "must be in [0, 0.5)")
        _check(self.grad_clip >= 0, "optim.grad_clip", "must be >= 0 (0: no clipping)")
        _check(0 <= self.ema_decay < 1, "optim.ema_decay", "must be in [0, 1) (0: no average)")
        _check(
            self.select in ("best", "last"),
            "optim.select",
            f"must be best or last, not {self.select!r}",
        )
        _check(
            self.select == "best" or self.patience == 0,
            "optim.patience",
            "must be 0 with optim.select=last (nothing to stop early for)",
        )


@dataclass(frozen=True)
class ModelSpec:
    """What a checkpoint must hold to turn a waveform into an answer: front end, network, labels
    and the window/pool policy. Nothing about the machine it was trained on."""

    labels: tuple[str, ...] = LABELS
    audio: AudioConfig = field(default_factory=AudioConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    temperature: float = 1.0  # logits are divided by it: fitted on validation after training
    # added to each label's logit after the temperature: fitted on a user's own labelled
    # recordings by vgd adapt; () when none was
    bias: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        _check(len(set(self.labels)) == len(self.labels) >= 2, "labels", "need 2+ distinct")
        _check(self.temperature > 0, "temperature", "must be > 0")
        _check(
            len(self.bias) in (0, len(self.labels)), "bias", "needs one value per label, or none"
        )
        _check(
            self.features.f_max <= self.audio.sample_rate / 2,
            "features.f_max",
            f"must be <= sample_rate / 2 = {self.audio.sample_rate / 2:g}",
        )
        _check(
            self.features.win_length(self.audio.sample_rate)
            <= self.window.samples(self.audio.sample_rate),
            "window.seconds",
            "must be longer than one analysis window",
        )
        _check(
            self.model.encoder == "none" or self.audio.sample_rate == 16000,
            "model.encoder",
            "ge2e hears 16 kHz audio: it needs audio.sample_rate 16000",
        )

    @property
    def window_samples(self) -> int:
        return self.window.samples(self.audio.sample_rate)


@dataclass(frozen=True)
class TrainConfig:
    """The recipe of one training run: what a search varies and best_config.yaml records.

    Where the run happens (device, threads, the manifest's path, caches) is a
    :class:`RunConfig`, so a recipe means the same on every machine.
    """

    seed: int = 0
    audio: AudioConfig = field(default_factory=AudioConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        self.spec  # noqa: B018 -- validates the model spec this recipe implies

    @property
    def spec(self) -> ModelSpec:
        """The part of the recipe that a checkpoint needs to run the model."""
        return ModelSpec(self.data.labels, self.audio, self.features, self.model, self.window)


MEMORY_FORMATS = ("contiguous", "channels_last", "auto")  # RunConfig.memory_format's choices
PRECISIONS = ("auto", "fp32", "fp16", "bf16")  # RunConfig.precision's choices
AUDIO_CACHE_GB = 20.0  # the decoded-audio cache's default bound: ~90 h of 16-kHz float32 speech


@dataclass(frozen=True)
class RunConfig:
    """Where and how a run executes; never stored in a checkpoint or a best_config.yaml."""

    manifest: str = field(
        default="data/synth/manifest.csv", metadata={"help": "manifest CSV of the clips"}
    )
    device: str = field(default="auto", metadata={"help": "auto (CUDA if present), cpu, cuda:N"})
    precision: str = field(
        default="auto", metadata={"help": "auto (bf16/fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16"}
    )
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch's default)"})
    memory_format: str = field(
        default="contiguous",
        metadata={
            "help": "layout of the network's tensors in training: contiguous (vgd's measured "
            "runs), channels_last (1.35x the clips/s on the CPU here, other numbers), or auto "
            "(channels_last on the CPU, contiguous on CUDA)"
        },
    )
    validate_every: int = field(
        default=1,
        metadata={
            "help": "validate epoch 1, every Nth epoch and the last (the weights are the same "
            "for any N; needs optim.select=last)"
        },
    )
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes"})
    cache_dir: str = field(
        default="", metadata={"help": "decoded-audio cache folder ('': decode on every read)"}
    )
    audio_cache_gb: float = field(
        default=AUDIO_CACHE_GB,
        metadata={
            "help": "decoded audio kept in the cache folder, least recently used removed beyond "
            "this many GB (0: no limit)"
        },
    )
    packed_cache_gb: float = field(
        default=8.0,
        metadata={
            "help": "packed corpora kept in the cache folder, least recently used removed beyond "
            "this many GB (0: no limit)"
        },
    )
    train_input: str = field(
        default="auto",
        metadata={
            "help": "auto: the decoded corpus packed on the training device when it fits, else "
            "the DataLoader; device; loader"
        },
    )

    def __post_init__(self) -> None:
        _check(
            self.precision in PRECISIONS,
            "precision",
            f"must be auto, fp32, fp16 or bf16, not {self.precision!r}",
        )
        _check(
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
            "device",
            f"must be auto, cpu, cuda or cuda:N, not {self.device!r}",
        )
        _check(self.threads >= 0, "threads", "must be >= 0")
        _check(
            self.memory_format in MEMORY_FORMATS,
            "memory_format",
            f"must be auto, channels_last or contiguous, not {self.memory_format!r}",
        )
        _check(self.validate_every >= 1, "validate_every", "must be >= 1")
        _check(self.num_workers >= 0, "num_workers", "must be >= 0")
        _check(self.audio_cache_gb >= 0, "audio_cache_gb", "must be >= 0")
        _check(self.packed_cache_gb >= 0, "packed_cache_gb", "must be >= 0")
        _check(
            self.train_input in ("auto", "device", "loader"),
            "train_input",
            f"must be auto, device or loader, not {self.train_input!r}",
        )


# ----------------------------------------------------------------------------- loading


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Turn a YAML/CLI value into the annotated type, or raise naming the key."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, found {type(value).__name__}")
        return from_dict(hint, value, prefix=f"{key}.")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, found {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, found {len(value)}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if origin in (typing.Union, types.UnionType):
        last: ConfigError | None = None
        for arg in typing.get_args(hint):
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                last = e
        raise last or ConfigError(f"{key}: bad value {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, found {value!r}")
    if hint is int:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ):
            raise ConfigError(f"{key}: expected an integer, found {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, found {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, found {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r} at {key}")


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build a config dataclass from a (nested) mapping; unknown keys are an error."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {e}") from e


def to_dict(config: Any) -> dict[str, Any]:
    """A plain nested dict (lists for tuples) that YAML, JSON and checkpoints can hold."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return v

    return plain(config)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: no such file") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """Load a TrainConfig from YAML (defaults when no path) and apply dotted-path overrides."""
    base = load_yaml(path) if path else {}
    try:
        config = from_dict(TrainConfig, base)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from e
    return apply_overrides(config, overrides or {})


def apply_overrides(config: T, overrides: Mapping[str, Any]) -> T:
    """Return a copy of ``config`` with dotted-path values replaced, e.g. ``{"optim.lr": 1e-3}``."""
    tree = to_dict(config)
    for path, value in overrides.items():
        check_path(type(config), path)
        node = tree
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = list(value) if isinstance(value, tuple) else value
    return from_dict(type(config), tree)


def field_paths(cls: type = TrainConfig, prefix: str = "") -> Iterator[str]:
    """Every leaf path of a config class, e.g. ``optim.lr``."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from field_paths(hint, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}"


def check_path(cls: type, path: str) -> None:
    """Raise ConfigError unless ``path`` names a leaf field of ``cls``."""
    if path not in set(field_paths(cls)):
        raise ConfigError(f"{path}: names no config field")


def parse_override(text: str) -> tuple[str, Any]:
    """Parse a command-line ``key=value`` (value in YAML syntax) into a path and a value."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"{text!r}: expected key=value")
    return key.strip(), yaml.safe_load(raw)


def save_config(config: Any, path: str | Path) -> None:
    """Write a config as YAML, atomically."""
    from vgd.io import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(to_dict(config), sort_keys=False))
