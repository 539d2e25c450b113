"""``SearchConfig``: the settings of one search (CLI flags, params.yaml's ``search`` section)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vgd.config import ConfigError

SAMPLERS = ("tpe", "random", "cmaes")
SCHEDULERS = ("asha", "none")


@dataclass(frozen=True)
class SearchConfig:
    """What to search, with what budget and resources, and where results go."""

    space: str = "smoke"
    name: str = ""  # results/search/<name>; default: the space's name
    config: str = ""  # base TrainConfig YAML; default: vgd's defaults
    manifest: str = ""  # default: the base config's data.manifest
    results_dir: str = "results/search"
    cache_dir: str = "cache/audio"  # decoded audio shared by all trials (and later searches)
    sampler: str = "tpe"
    scheduler: str = "asha"
    num_samples: int = 0  # 0: the space's budget
    time_budget_s: float = 0.0  # 0: the space's budget (or none)
    max_concurrent: int = 0  # 0: as many as the resources allow
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str = ""  # existing Ray cluster ("auto" or host:port); empty: start one here
    storage_path: str = ""  # Ray's trial folders; default results/search/<name>/ray
    max_failures: int = 1  # retries of a trial that raises
    seed: int = 0
    top_k: int = 5

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"search.sampler: must be one of {', '.join(SAMPLERS)}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"search.scheduler: must be one of {', '.join(SCHEDULERS)}")
        if self.cpus_per_trial <= 0:
            raise ConfigError("search.cpus_per_trial: must be > 0")
        if self.gpus_per_trial < 0:
            raise ConfigError("search.gpus_per_trial: must be >= 0 (fractions share a GPU)")
        if self.num_samples < 0 or self.max_concurrent < 0 or self.max_failures < 0:
            raise ConfigError("search: num_samples, max_concurrent, max_failures must be >= 0")

    @property
    def run_name(self) -> str:
        return self.name or Path(self.space).stem

    @property
    def out_dir(self) -> Path:
        return Path(self.results_dir).resolve() / self.run_name

    @property
    def ray_dir(self) -> Path:
        return Path(self.storage_path).resolve() if self.storage_path else self.out_dir / "ray"
