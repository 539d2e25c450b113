"""Search spaces as data: YAML keyed by config path, checked against vgd's config, run by Optuna.

A space file::

    metric: val_balanced_accuracy      # what the trainable reports each epoch
    mode: max
    budget: {num_samples: 24, time_budget_s: 3600}
    scheduler: {grace_period: 2, reduction_factor: 3, margin: 0.0}   # margin: see search.asha
    base: {optim.epochs: 12}           # fixed overrides for every trial
    parameters:
      optim.lr: {loguniform: [1.0e-4, 1.0e-2]}
      model.n_blocks: {int: [2, 5]}
      model.pooling: {categorical: [avg, max, avgmax]}
      augment.freq_mask_width: {int: [4, 16], when: {augment.freq_masks: [1, 2]}}

``when`` makes a parameter conditional: it is sampled only while an earlier parameter takes
one of the listed values, and otherwise keeps the base config's value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vgd.config import ConfigError, TrainConfig, apply_overrides, check_path, load_yaml, to_dict


def _spaces_dir() -> Path:
    """The checkout's search_spaces/ when this code runs from one, else the copy installed with it.

    A checkout (run in place with PYTHONPATH, or installed editable) reads the top-level folder, so
    an edited space takes effect at once; a wheel carries the files as package data beside this
    module (pyproject maps search_spaces/ to the package ``search.search_spaces``).
    """
    here = Path(__file__).resolve().parent
    checkout = here.parent / "search_spaces"
    return checkout if checkout.is_dir() else here / "search_spaces"


SPACES_DIR = _spaces_dir()
KINDS = ("uniform", "loguniform", "int", "logint", "categorical")
TOP_KEYS = {"description", "metric", "mode", "budget", "scheduler", "base", "parameters"}
BUDGET_KEYS = {"num_samples", "time_budget_s", "max_concurrent"}
SCHEDULER_KEYS = {"grace_period", "reduction_factor", "margin"}
METRICS = {
    "val_balanced_accuracy": "max",
    "val_macro_balanced_accuracy": "max",  # the mean over corpora (= the above with one)
    "val_accuracy": "max",
    "val_f1_macro": "max",
    "val_roc_auc": "max",
    "val_speaker_accuracy": "max",
    "val_loss": "min",
    # the best epoch's so far (vgd.train.best_so_far): a rung ranks trials by where they got
    "best_val_balanced_accuracy": "max",
    "best_val_macro_balanced_accuracy": "max",
    # the mean of the last 3 epochs (vgd.train.recent_means): a lucky epoch cannot win a rung
    "last3_val_balanced_accuracy": "max",
    "last3_val_macro_balanced_accuracy": "max",
    # the last epoch's: what ships with optim.select=last, and with a speaker encoder
    # (model.encoder) the only epoch validated with its probe fitted
    "last_val_balanced_accuracy": "max",
    "last_val_macro_balanced_accuracy": "max",
}


@dataclass(frozen=True)
class Param:
    """One searched config field: its distribution and, optionally, when it applies."""

    path: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    step: float | None = None
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def active(self, values: Mapping[str, Any]) -> bool:
        """True when every condition holds for the values sampled so far."""
        return all(path in values and values[path] in allowed for path, allowed in self.when)

    def suggest(self, trial: Any) -> Any:
        """Sample this parameter from an Optuna trial."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.path, list(self.choices))
        if self.kind in ("int", "logint"):
            step = int(self.step or 1)
            log = self.kind == "logint"
            return trial.suggest_int(self.path, int(self.low), int(self.high), step=step, log=log)
        log = self.kind == "loguniform"
        return trial.suggest_float(self.path, self.low, self.high, step=self.step, log=log)

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        return isinstance(value, (int, float)) and self.low <= value <= self.high


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space with its metric, budget and scheduler settings."""

    name: str
    source: str
    metric: str = "val_balanced_accuracy"
    mode: str = "max"
    num_samples: int = 16
    time_budget_s: float | None = None
    max_concurrent: int = 0
    grace_period: int = 2
    reduction_factor: float = 3.0
    margin: float = 0.0
    base: dict[str, Any] = field(default_factory=dict)
    params: tuple[Param, ...] = ()
    description: str = ""

    def sample(self, trial: Any) -> None:
        """Optuna define-by-run function: suggest each active parameter in file order."""
        values: dict[str, Any] = {}
        for p in self.params:
            if p.active(values):
                values[p.path] = p.suggest(trial)

    def base_config(self, config: TrainConfig) -> TrainConfig:
        """``config`` with the space's fixed overrides applied."""
        return apply_overrides(config, self.base)

    def default_point(self, config: TrainConfig) -> dict[str, Any]:
        """The base config's own values for the searched (and active) parameters."""
        point: dict[str, Any] = {}
        for p in self.params:
            if p.active(point):
                point[p.path] = _get(config, p.path)
        return point

    @property
    def ranks_last_epoch(self) -> bool:
        """True when the metric is judged where a trial ended (a mean of its last epochs), not
        at its best epoch."""
        return self.metric.startswith("last")

    def max_epochs(self, config: TrainConfig) -> int:
        """The most epochs any trial can run (the scheduler's horizon)."""
        for p in self.params:
            if p.path == "optim.epochs":
                return int(max(p.choices) if p.choices else p.high)
        return config.optim.epochs


def _get(config: TrainConfig, path: str) -> Any:
    node: Any = to_dict(config)
    for part in path.split("."):
        node = node[part]
    return node


def resolve_space_path(name_or_path: str | Path) -> Path:
    """A name (``wide``) → search_spaces/wide.yaml; anything with a suffix or a slash is a path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return Path(text)
    return SPACES_DIR / f"{text}.yaml"


def available_spaces() -> list[str]:
    """Names of the shipped spaces, for ``--space`` and error messages."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def load_space(name_or_path: str | Path, config: TrainConfig | None = None) -> SearchSpace:
    """Read and validate a space file; errors name the file and the offending key."""
    path = resolve_space_path(name_or_path)
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such search space (available: {', '.join(available_spaces())})"
        )
    data = load_yaml(path)
    try:
        space = _parse(data, path)
        _validate_against_config(space, config or TrainConfig())
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e
    return space


def _keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}{unknown[0]}: unknown key (known: {', '.join(sorted(allowed))})")


def _parse(data: Mapping[str, Any], path: Path) -> SearchSpace:
    _keys(data, TOP_KEYS, "")
    metric = data.get("metric", "val_balanced_accuracy")
    if metric not in METRICS:
        raise ConfigError(f"metric: {metric!r} is not reported (choose from {sorted(METRICS)})")
    mode = data.get("mode", METRICS[metric])
    if mode != METRICS[metric]:
        raise ConfigError(f"mode: {metric} must be {METRICS[metric]}imised, not {mode!r}")
    budget = _mapping(data.get("budget", {}), "budget")
    _keys(budget, BUDGET_KEYS, "budget.")
    sched = _mapping(data.get("scheduler", {}), "scheduler")
    _keys(sched, SCHEDULER_KEYS, "scheduler.")
    params = _mapping(data.get("parameters"), "parameters")
    if not params:
        raise ConfigError("parameters: at least one parameter is needed")
    parsed: list[Param] = []
    for key, spec in params.items():
        parsed.append(_param(key, spec, [p.path for p in parsed]))
    return SearchSpace(
        name=path.stem,
        source=str(path),
        metric=metric,
        mode=mode,
        num_samples=_positive_int(budget.get("num_samples", 16), "budget.num_samples"),
        time_budget_s=budget.get("time_budget_s"),
        max_concurrent=int(budget.get("max_concurrent", 0)),
        grace_period=_positive_int(sched.get("grace_period", 2), "scheduler.grace_period"),
        reduction_factor=float(sched.get("reduction_factor", 3)),
        margin=_margin(sched.get("margin", 0.0)),
        base=dict(_mapping(data.get("base", {}), "base")),
        params=tuple(parsed),
        description=str(data.get("description", "")),
    )


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping, found {type(value).__name__}")
    return value


def _margin(value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise ConfigError(f"scheduler.margin: expected a number in [0, 1), found {value!r}")
    return float(value)


def _positive_int(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{key}: expected a positive integer, found {value!r}")
    return value


def _param(key: str, spec: Any, earlier: list[str]) -> Param:
    where = f"parameters.{key}"
    spec = _mapping(spec, where)
    kinds = [k for k in spec if k in KINDS]
    _keys(spec, set(KINDS) | {"when", "step"}, f"{where}.")
    if len(kinds) != 1:
        raise ConfigError(f"{where}: give exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    when = _conditions(spec.get("when", {}), where, earlier)
    step = spec.get("step")
    if kind == "categorical":
        choices = spec[kind]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}.categorical: expected a non-empty list")
        return Param(key, kind, choices=tuple(choices), when=when)
    bounds = spec[kind]
    if not (isinstance(bounds, list) and len(bounds) == 2) or not all(
        isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds
    ):
        raise ConfigError(f"{where}.{kind}: expected [low, high] numbers, found {bounds!r}")
    low, high = (float(b) for b in bounds)
    if not low < high:
        raise ConfigError(f"{where}.{kind}: low must be below high")
    if kind.startswith("log") and low <= 0:
        raise ConfigError(f"{where}.{kind}: a log scale needs low > 0")
    if kind in ("int", "logint") and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"{where}.{kind}: bounds must be integers")
    return Param(key, kind, low=low, high=high, step=step, when=when)


def _conditions(when: Any, where: str, earlier: list[str]) -> tuple[tuple[str, tuple], ...]:
    out = []
    for path, allowed in _mapping(when, f"{where}.when").items():
        if path not in earlier:
            raise ConfigError(f"{where}.when.{path}: must name a parameter listed before it")
        allowed = allowed if isinstance(allowed, list) else [allowed]
        out.append((path, tuple(allowed)))
    return tuple(out)


def _validate_against_config(space: SearchSpace, config: TrainConfig) -> None:
    """Every path names a config field, and each range's ends build a valid config."""
    for path in space.base:
        _named(path, "base")
    base = space.base_config(config)
    for p in space.params:
        _named(p.path, "parameters")
        probes = list(p.choices) if p.choices else [p.low, p.high]
        for value in probes:
            if p.kind in ("int", "logint"):
                value = int(value)
            try:
                apply_overrides(base, {p.path: value})
            except ConfigError as e:
                raise ConfigError(f"parameters.{p.path}: value {value!r} is invalid ({e})") from e
    for p in space.params:
        point = space.default_point(base)
        if p.path in point and not p.contains(point[p.path]):
            raise ConfigError(
                f"parameters.{p.path}: the base config's value {point[p.path]!r} lies outside "
                "the space (the default configuration is always evaluated first)"
            )


def _named(path: str, section: str) -> None:
    try:
        check_path(TrainConfig, path)
    except ConfigError as e:
        raise ConfigError(f"{section}.{e}") from e


def trial_overrides(space: SearchSpace, params: Mapping[str, Any]) -> dict[str, Any]:
    """Sampled values → config overrides (ints for integer params; NaN-free)."""
    out = {}
    for p in space.params:
        if p.path in params:
            v = params[p.path]
            if p.kind in ("int", "logint"):
                v = int(v)
            elif isinstance(v, float) and math.isnan(v):
                continue
            out[p.path] = v
    return out
