"""params.yaml, the DVC pipeline's knobs: one frozen config per section, one closed loader.

Sections: ``data`` (:class:`SourceConfig`), ``split`` (:class:`~vgd.config.SplitConfig`),
``search`` (:class:`SearchConfig`, also the flags of ``search/run.py``), ``retrain``
(:class:`RetrainConfig`) and ``evaluate`` (:class:`EvaluateConfig`). An unknown section or key is an
error that names it. ``dvc.yaml`` reads its paths from the same file (``${data.out}``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from vgd.config import MEMORY_FORMATS, PRECISIONS, ConfigError, SplitConfig, from_dict, load_yaml

DEFAULT_PARAMS = "params.yaml"
SOURCES = ("synth", "folder", "csv", "librispeech", "vctk", "common_voice")
SAMPLERS = ("tpe", "random", "cmaes")
SCHEDULERS = ("asha", "none")
TRIAL_DATA = ("object-store", "paths")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class SourceConfig:
    """Where the pipeline's speech comes from and where its manifest goes (params: ``data``)."""

    source: str = "synth"
    root: str = ""  # corpus root for every source but synth
    validate: str = "header"  # header | decode | none: how hard to check each file
    synth_speakers: int = 200
    synth_utterances: int = 10
    synth_seed: int = 0
    out: str = "data/pipeline"  # manifest.csv (and the synthetic audio) go here

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"data.source: must be one of {', '.join(SOURCES)}")
        if self.source != "synth" and not self.root:
            raise ConfigError(f"data.root: required for source {self.source!r}")
        if self.validate not in ("header", "decode", "none"):
            raise ConfigError("data.validate: must be header, decode or none")

    @property
    def manifest(self) -> Path:
        return Path(self.out) / "manifest.csv"


# The one default search space: `python search/run.py`, params.yaml (the main job) and `make search`
# take it unless told another (`--space wide`, `dvc exp run -S ++search.space=wide`, `SPACE=wide`).
DEFAULT_SPACE = "quick"


@dataclass(frozen=True)
class SearchConfig:
    """One search: what to search, with what budget and resources, and where results go.

    The fields are ``search/run.py``'s flags (``cache_dir`` → ``--cache-dir``) and the keys of
    params.yaml's ``search`` section.
    """

    space: str = field(
        default=DEFAULT_SPACE, metadata=_help("search_spaces/<name>.yaml, or a path")
    )
    name: str = field(default="", metadata=_help("results go to <results-dir>/<name>; '': space"))
    config: str = field(default="", metadata=_help("base training config YAML ('': defaults)"))
    manifest: str = field(default="", metadata=_help("manifest CSV ('': the built-in corpus)"))
    results_dir: str = "results/search"
    cache_dir: str = field(
        default="cache/audio", metadata=_help("decoded audio shared by all trials ('': none)")
    )
    sampler: str = field(default="tpe", metadata=_help("Optuna sampler: tpe, random, cmaes"))
    scheduler: str = field(default="asha", metadata=_help("asha, or none (every trial runs out)"))
    num_samples: int = field(default=0, metadata=_help("trials (0: the space's budget)"))
    time_budget_s: float = field(default=0.0, metadata=_help("seconds (0: the space's budget)"))
    max_concurrent: int = field(default=0, metadata=_help("trials at once (0: as resources allow)"))
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = field(
        default=0.0, metadata=_help("fractions share a GPU: 0.25 puts four trials on one")
    )
    num_cpus: int = field(
        default=0, metadata=_help("CPUs the Ray started here offers (0: all; not with --address)")
    )
    num_gpus: int = field(
        default=-1,
        metadata=_help(
            "GPUs the Ray started here offers (-1: those it finds); logical, so --num-gpus 1 "
            "on a CPU-only machine tests GPU packing (trials fall back to the CPU)"
        ),
    )
    address: str = field(default="", metadata=_help("join a Ray cluster (auto, host:6379)"))
    storage_path: str = field(
        default="",
        metadata=_help(
            "Ray's trial folders: a URI every node reaches (s3://, gs://, file://) or a folder on "
            "the driver ('': <results-dir>/<name>/ray)"
        ),
    )
    trial_data: str = field(
        default="object-store",
        metadata=_help(
            "how trials get the audio: object-store (decoded once, shipped by Ray; no node but "
            "the driver's needs the files) or paths (every node reads the manifest's files)"
        ),
    )
    max_failures: int = field(default=1, metadata=_help("retries of a trial that raises"))
    cv: int = field(
        default=0,
        metadata=_help(
            "K >= 2: each trial trains K speaker folds of train+val in step and reports their "
            "mean (0: the manifest's val split)"
        ),
    )
    cv_seeds: tuple[int, ...] = field(
        default=(),
        metadata=_help(
            "fold seeds of --cv: each trial trains K folds per seed and reports the mean over "
            "all, which moves less with how speakers fall into folds (none: the config's "
            "split.seed). Keep them apart from the seeds of a later paired comparison"
        ),
    )
    memory_format: str = field(
        default="contiguous",
        metadata=_help(
            "tensor layout in training: contiguous, channels_last or auto (channels-last on the "
            "CPU: 1.35x the clips a second here, other numbers than contiguous)"
        ),
    )
    precision: str = field(
        default="auto",
        metadata=_help(
            "trials' arithmetic: auto (bf16 or fp16 autocast on CUDA, fp32 on the CPU), fp32, "
            "fp16 or bf16 (autocast on the CPU too: faster where the CPU has bf16, other numbers)"
        ),
    )
    validate_every: int = field(
        default=1,
        metadata=_help(
            "trials validate epoch 1, every Nth epoch and the last: less time on validation, "
            "the same weights and last-epoch scores (needs optim.select=last and "
            "ASHA's rungs at multiples of N)"
        ),
    )
    seed: int = 0
    top_k: int = 5

    def __post_init__(self) -> None:
        if self.validate_every < 1:
            raise ConfigError("search.validate_every: must be >= 1")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"search.sampler: must be one of {', '.join(SAMPLERS)}")
        if self.trial_data not in TRIAL_DATA:
            raise ConfigError(f"search.trial_data: must be one of {', '.join(TRIAL_DATA)}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"search.scheduler: must be one of {', '.join(SCHEDULERS)}")
        if self.cpus_per_trial <= 0:
            raise ConfigError("search.cpus_per_trial: must be > 0")
        if self.gpus_per_trial < 0:
            raise ConfigError("search.gpus_per_trial: must be >= 0 (fractions share a GPU)")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"search.precision: must be one of {', '.join(PRECISIONS)}")
        if self.memory_format not in MEMORY_FORMATS:
            raise ConfigError(f"search.memory_format: must be one of {', '.join(MEMORY_FORMATS)}")
        if self.cv == 1 or self.cv < 0:
            raise ConfigError("search.cv: must be 0 (no folds) or >= 2")
        if self.cv_seeds and not self.cv:
            raise ConfigError("search.cv_seeds: needs search.cv >= 2 (fold seeds of what?)")
        if len(set(self.cv_seeds)) < len(self.cv_seeds):
            raise ConfigError(f"search.cv_seeds: a seed repeats ({list(self.cv_seeds)})")
        if self.num_samples < 0 or self.max_concurrent < 0 or self.max_failures < 0:
            raise ConfigError("search: num_samples, max_concurrent, max_failures must be >= 0")

    @property
    def run_name(self) -> str:
        return self.name or Path(self.space).stem

    @property
    def results(self) -> Path:
        """results/search/<name>, as given (relative paths stay relative)."""
        return Path(self.results_dir) / self.run_name

    @property
    def out_dir(self) -> Path:
        return self.results.resolve()

    @property
    def ray_dir(self) -> Path:
        """The driver's folder of Tune's trials (its copy, when ``storage_path`` is a URI)."""
        if self.storage_path and "://" not in self.storage_path:
            return Path(self.storage_path).resolve()
        return self.out_dir / "ray"


@dataclass(frozen=True)
class RetrainConfig:
    """How the winning configuration is retrained on train+val (params: ``retrain``).

    ``epochs: 0`` trains for the epoch at which the best trial peaked on validation; there is no
    validation data left to stop on once val is folded into training, and the search already
    measured when to stop. A positive number overrides it.

    ``calibrate_fraction`` of the val speakers (per gender, seeded) stay out of training and fit
    the shipped model's temperature; the rest of val trains. A temperature measures one model's
    over-confidence, so it is fitted on the retrained model itself, on voices it never heard,
    and the test split stays untouched. The best trial's temperature would belong to another
    model, trained on less data for the same epochs. One number needs few clips: half of val
    fits it while the other half still adds voices. 1: all of val calibrates (train alone
    trains); 0: all of val trains and the model ships uncalibrated (temperature 1).
    """

    epochs: int = 0
    calibrate_fraction: float = 0.5
    out: str = "results/pipeline"

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError("retrain.epochs: must be >= 0 (0: the best trial's best epoch)")
        if not 0.0 <= self.calibrate_fraction <= 1.0:
            raise ConfigError("retrain.calibrate_fraction: must be in [0, 1]")

    @property
    def model(self) -> Path:
        return Path(self.out) / "model.pt"


@dataclass(frozen=True)
class EvaluateConfig:
    """Which split the final model is scored on and where the report goes (params: ``evaluate``)."""

    split: str = "test"
    out: str = "results/pipeline/eval"
    batch_size: int = 64


@dataclass(frozen=True)
class PipelineParams:
    """params.yaml, validated: every key must name a field of its section's config."""

    data: SourceConfig = field(default_factory=SourceConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    search: SearchConfig = field(default_factory=lambda: SearchConfig(name="pipeline"))
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def __post_init__(self) -> None:
        if not self.search.name:
            raise ConfigError("search.name: required here (dvc.yaml builds its paths from it)")

    @property
    def search_config(self) -> SearchConfig:
        """The search section, reading the data stage's manifest unless it names its own."""
        if self.search.manifest:
            return self.search
        return replace(self.search, manifest=str(self.data.manifest))


def load_params(path: str | Path = DEFAULT_PARAMS) -> PipelineParams:
    """Read params.yaml; unknown sections or keys are errors that name them."""
    try:
        return from_dict(PipelineParams, load_yaml(path))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e
