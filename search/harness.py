"""Run a search: prepare the data once, build Tune's Tuner (Optuna sampler + ASHA), run or resume
it, and write the results. Everything Ray-specific about running lives here."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import tune

from search.progress import SearchProgress
from search.results import (
    TrialRow,
    collect_rows,
    rank,
    slot_usage,
    top_k_table,
    write_results,
)
from search.shipping import Shipped, ship
from search.space import SearchSpace, load_space
from search.storage import TrialStorage, driver_filesystem, trial_storage
from search.trainable import run_trial
from vgd.cache import PrefillReport
from vgd.config import ConfigError, RunConfig, TrainConfig, from_dict, load_config, load_yaml
from vgd.dataset import make_reader
from vgd.io import atomic_write_text
from vgd.manifest import write_manifest
from vgd.params import SearchConfig
from vgd.train import check_validation_schedule, load_clips, usable_clips

log = logging.getLogger(__name__)
EXPERIMENT = "tune"
SETTINGS_FILE = "search.yaml"


@dataclass
class SearchOutcome:
    """What a search did and where it put the results."""

    rows: list[TrialRow]
    space: SearchSpace
    paths: dict[str, Path]
    seconds: float
    interrupted: bool
    data: PrefillReport
    tensorboard: str
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> TrialRow | None:
        ranked = rank(self.rows, self.space)
        return ranked[0] if ranked else None


@dataclass
class PreparedData:
    run: RunConfig  # the trials' run settings: the prepared manifest and the filled cache
    report: PrefillReport
    unreadable: list[str]
    audio: Shipped | None = None  # the decoded clips in Ray's object store (--trial-data)


def search_manifest(cfg: SearchConfig) -> str:
    """The manifest the search trains on: the flag's, or the built-in corpus's."""
    return cfg.manifest or RunConfig.manifest


def prepare_data(base: TrainConfig, cfg: SearchConfig) -> PreparedData:
    """Splits and decoded audio, made once per search; trials only read them.

    With ``--trial-data object-store`` (the default) the decoded clips go into Ray's object
    store (Ray must be running) and trials read nothing from disk; with ``paths`` trials read
    the written manifest and the filled cache.
    """
    clips = load_clips(base, search_manifest(cfg))
    cache_dir = str(Path(cfg.cache_dir).resolve()) if cfg.cache_dir else ""
    start = time.perf_counter()
    usable, unreadable = usable_clips(clips, base.audio, cache_dir, progress=True)
    audio = None
    if cfg.trial_data == "object-store":
        audio, failed = ship(usable, make_reader(base.audio, cache_dir))
        unreadable += failed
    report = PrefillReport(seconds=time.perf_counter() - start)
    manifest = write_manifest(usable, cfg.out_dir / "data" / "manifest.csv")
    # The device and the torch threads are each trial's: they follow what Ray gave it.
    run = RunConfig(
        manifest=str(manifest),
        cache_dir="" if audio else cache_dir,
        precision=cfg.precision,
        memory_format=cfg.memory_format,
        validate_every=cfg.validate_every,
    )
    return PreparedData(run, report, unreadable, audio)


def base_config(cfg: SearchConfig, space_name: str) -> tuple[SearchSpace, TrainConfig]:
    """The space and the base TrainConfig (the config file, then the space's fixed overrides)."""
    config = load_config(cfg.config or None)
    space = load_space(space_name, config)
    return space, space.base_config(config)


def make_sampler(cfg: SearchConfig):
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=cfg.seed)
    if cfg.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(
            seed=cfg.seed,
            warn_independent_sampling=False,
            independent_sampler=optuna.samplers.RandomSampler(seed=cfg.seed),
        )
    # group=True lets the multivariate TPE handle conditional parameters.
    return optuna.samplers.TPESampler(
        seed=cfg.seed,
        multivariate=True,
        group=True,
        constant_liar=True,
        n_startup_trials=5,
    )


def make_searcher(space: SearchSpace, base: TrainConfig, cfg: SearchConfig):
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(
        space=space.sample,
        metric=space.metric,
        mode=space.mode,
        points_to_evaluate=[space.default_point(base)],
        sampler=make_sampler(cfg),
    )


def check_validation(space: SearchSpace, base: TrainConfig, cfg: SearchConfig) -> None:
    """Refuse a validation cadence under which a rung or an epoch choice would read an epoch
    that was never validated (its metric would be an older epoch's)."""
    every = cfg.validate_every
    check_validation_schedule(base, every)
    if every == 1:
        return
    if not space.metric.startswith(("last_", "last3_")):
        # Ray refuses a report without the metric; only these carry over an unvalidated epoch.
        raise ConfigError(
            f"search.validate_every: {every} needs a space ranked by a last_ or last3_ metric, "
            f"not {space.metric}: an epoch it does not validate has no {space.metric}"
        )
    if cfg.scheduler == "none":
        return
    max_t = space.max_epochs(base)
    rung = min(space.grace_period, max_t)  # Ray's rungs: grace_period * reduction_factor**k
    while rung < max_t:
        if rung != 1 and rung % every:
            raise ConfigError(
                f"search.validate_every: {every} leaves ASHA's rung at epoch {rung} "
                "unvalidated: use a divisor of the rungs or --scheduler none"
            )
        rung *= space.reduction_factor


def make_scheduler(space: SearchSpace, base: TrainConfig, cfg: SearchConfig):
    from ray.tune.schedulers import FIFOScheduler

    from search.asha import MarginASHAScheduler

    if cfg.scheduler == "none":
        return FIFOScheduler()
    max_t = space.max_epochs(base)
    return MarginASHAScheduler(
        time_attr="epoch",
        max_t=max_t,
        grace_period=min(space.grace_period, max_t),
        reduction_factor=space.reduction_factor,
        margin=space.margin,
    )


def concurrency(cfg: SearchConfig, space: SearchSpace) -> int:
    """Trials at once: the flag, the space's budget, or what the cluster's resources allow."""
    res = ray.cluster_resources()
    for kind, need in (("CPU", cfg.cpus_per_trial), ("GPU", cfg.gpus_per_trial)):
        if need > res.get(kind, 0):
            raise ConfigError(
                f"a trial needs {need:g} {kind}(s) but Ray has {res.get(kind, 0):g}; lower "
                f"--{kind.lower()}s-per-trial, or give Ray more (--num-{kind.lower()}s here, "
                f"`ray start --num-{kind.lower()}s` on a cluster; GPUs may be logical)"
            )
    if cfg.max_concurrent or space.max_concurrent:
        return cfg.max_concurrent or space.max_concurrent
    # The epsilon absorbs float rounding (1.0 // 0.1 is 9.0).
    n = int(res.get("CPU", 1) / cfg.cpus_per_trial + 1e-9)
    if cfg.gpus_per_trial:
        n = min(n, int(res.get("GPU", 0) / cfg.gpus_per_trial + 1e-9))
    return max(n, 1)


def trainable(space: SearchSpace, base: TrainConfig, data: PreparedData, cfg: SearchConfig):
    fn = tune.with_parameters(
        run_trial,
        base=base,
        space=space,
        run=data.run,
        cv=cfg.cv,
        cv_seeds=cfg.cv_seeds,
        audio=data.audio,
    )
    return tune.with_resources(fn, {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial})


def init_ray(cfg: SearchConfig) -> None:
    """Join the cluster at ``--address`` or start Ray on this machine; quiet either way.

    Started here, Ray offers ``--num-cpus`` CPUs and ``--num-gpus`` GPUs (all it finds by
    default). Ray's GPUs are logical: ``--num-gpus 1`` on a CPU-only machine schedules trials
    onto one pretend GPU, each trial then falling back to the CPU (search/trainable.py).
    """
    # Tune snapshots the experiment after every trial checkpoint (CheckpointConfig's
    # num_to_keep=1 forces it), so a search killed with SIGKILL resumes with every reported
    # epoch recorded. Between checkpoints a snapshot every few seconds is enough: at 0 Tune
    # writes one on every 0.1-s step (~8% of a core here, growing with the trial count), and a
    # trial started after the last snapshot only leaves an empty folder (_drop_orphan_trials).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if ray.is_initialized():
        return
    if cfg.address and (cfg.num_cpus or cfg.num_gpus >= 0):
        raise ConfigError(
            "--num-cpus/--num-gpus size the Ray started here; a cluster's come from `ray start` "
            "(scripts/ray_cluster.sh: CPUS_PER_NODE, GPUS_PER_NODE)"
        )
    if cfg.num_cpus < 0 or cfg.num_gpus < -1:
        raise ConfigError("--num-cpus must be >= 0 (0: all) and --num-gpus >= -1 (-1: detect)")
    local = {} if cfg.address else {"num_cpus": cfg.num_cpus or None}
    if not cfg.address and cfg.num_gpus >= 0:
        local["num_gpus"] = cfg.num_gpus
    # "local", not None: ray.init(None) joins the newest cluster `ray start` left on this machine
    # (/tmp/ray/ray_current_cluster) or $RAY_ADDRESS, with that cluster's size and token.
    ray.init(
        address=cfg.address or "local",
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        configure_logging=True,
        **local,
    )


def build_tuner(
    space: SearchSpace,
    base: TrainConfig,
    data: PreparedData,
    cfg: SearchConfig,
    num_samples: int,
    slots: int,
    progress: SearchProgress,
):
    budget = cfg.time_budget_s or space.time_budget_s or None
    return tune.Tuner(
        trainable(space, base, data, cfg),
        tune_config=tune.TuneConfig(
            metric=space.metric,
            mode=space.mode,
            search_alg=make_searcher(space, base, cfg),
            scheduler=make_scheduler(space, base, cfg),
            num_samples=num_samples,
            max_concurrent_trials=slots,
            time_budget_s=budget,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=EXPERIMENT,
            **_storage(cfg).tune_kwargs(cluster=bool(cfg.address)),
            verbose=0,
            callbacks=[progress],
            # Keeping one checkpoint also makes Tune snapshot the experiment after each (init_ray).
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
        ),
    )


def save_settings(cfg: SearchConfig) -> None:
    import yaml

    atomic_write_text(cfg.out_dir / SETTINGS_FILE, yaml.safe_dump(asdict(cfg), sort_keys=False))


def load_settings(cfg: SearchConfig) -> SearchConfig:
    """The settings a search was started with, for ``--resume``."""
    path = cfg.out_dir / SETTINGS_FILE
    if not path.exists():
        raise ConfigError(f"{path}: no search to resume here (start one without --resume)")
    return from_dict(SearchConfig, load_yaml(path))


def ensure_default_corpus(cfg: SearchConfig) -> None:
    """Generate the built-in synthetic corpus when the search uses it and it is not there yet."""
    manifest = search_manifest(cfg)
    if manifest == RunConfig.manifest and not Path(manifest).exists():
        from vgd.synth import SynthConfig, generate_corpus

        log.warning("generating the built-in synthetic corpus in %s", Path(manifest).parent)
        generate_corpus(Path(manifest).parent, SynthConfig())


def run_search(cfg: SearchConfig, resume: bool = False, overwrite: bool = False) -> SearchOutcome:
    """Run (or resume) a search end to end and write its results under ``cfg.out_dir``.

    A new search refuses to start over an earlier one of the same name (whose trials would mix
    with its own) unless ``overwrite``, which deletes the earlier Ray experiment first.
    """
    if resume:
        cfg = load_settings(cfg)
    else:
        _clear_previous(cfg, overwrite)
    space, base = base_config(cfg, cfg.space)
    check_validation(space, base, cfg)
    num_samples = cfg.num_samples or space.num_samples
    save_settings(cfg)
    init_ray(cfg)
    data = prepare_data(base, cfg)
    slots = concurrency(cfg, space)
    storage = _storage(cfg)
    exp_dir = storage.local / EXPERIMENT
    start = time.time()
    tuner, progress = _tuner(space, base, data, cfg, num_samples, slots, resume)
    tuner.fit()
    seconds = time.time() - start
    storage.fetch(EXPERIMENT)
    analysis = tune.ExperimentAnalysis(str(exp_dir))
    _drop_orphan_trials(exp_dir, analysis.trials)
    rows = collect_rows(analysis, space, base.optim.epochs)
    _warn_cpu_fallback(rows)
    interrupted = len(rows) < num_samples or any(r.status in ("running", "pending") for r in rows)
    summary = _summary(rows, space, cfg, seconds, data, interrupted, num_samples)
    summary.update(_timing(rows, slots, seconds, progress))
    paths = write_results(rows, space, base, cfg.out_dir, summary)
    return SearchOutcome(
        rows,
        space,
        paths,
        seconds,
        interrupted,
        data.report,
        f"tensorboard --logdir {exp_dir}",
        summary,
    )


def _storage(cfg: SearchConfig) -> TrialStorage:
    """Where Tune keeps the trials: ``--storage-path`` (a URI or a path), or results/<name>/ray."""
    try:
        return trial_storage(cfg.storage_path, cfg.out_dir / "ray")
    except ValueError as e:
        raise ConfigError(str(e)) from e


def _tuner(space, base, data, cfg, num_samples, slots, resume):
    """A new Tuner with its progress callback, or the one restored from the experiment folder."""
    storage = _storage(cfg)
    if not resume:
        budget = cfg.time_budget_s or space.time_budget_s or None
        progress = SearchProgress(space.metric, space.mode, num_samples, base.optim.epochs, budget)
        return build_tuner(space, base, data, cfg, num_samples, slots, progress), progress
    path = storage.restore_path(EXPERIMENT)
    if not tune.Tuner.can_restore(path):
        raise ConfigError(f"{path}: no Ray experiment state to resume from")
    storage.fetch(EXPERIMENT)
    state = _check_saved_state(storage.local / EXPERIMENT)
    if state and not storage.uri:
        _recreate_deleted_checkpoints(storage.local / EXPERIMENT, state)
    cluster_path = cfg.address and not storage.uri
    on_driver = {"storage_filesystem": driver_filesystem()} if cluster_path else {}
    restored = tune.Tuner.restore(
        path,
        trainable(space, base, data, cfg),
        resume_unfinished=True,
        resume_errored=False,
        **on_driver,
    )
    return restored, None  # its progress callback comes back from the saved Tuner


def _check_saved_state(exp_dir: Path) -> dict | None:
    """Refuse to resume from state files cut short, which Tune would answer by starting over.

    Tune copies its snapshot into the experiment folder file by file; a SIGKILL in the middle of
    a copy leaves a truncated file, and ``Tuner.restore`` then logs a failure and silently runs
    a new search in the same folder. Returns the latest experiment state, parsed.
    """
    state = None
    for pattern in ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl"):
        latest = max(exp_dir.glob(pattern), default=None)
        if latest is None:
            continue
        try:
            data = latest.read_bytes()
            if not data:
                raise ValueError("empty")
            if pattern.startswith("experiment_state"):  # the others are pickles, whatever the name
                state = json.loads(data)
        except ValueError as e:
            raise ConfigError(
                f"{latest}: Ray's saved search state was cut short when the search was killed "
                f"({e}); the search cannot resume. Its finished trials are in {exp_dir}; start "
                "again with --overwrite"
            ) from e
    return state


def _recreate_deleted_checkpoints(exp_dir: Path, state: dict) -> None:
    """Recreate, empty, each trial checkpoint the saved state names but a kill deleted.

    Tune keeps one checkpoint per trial: it deletes the old one when a trial reports the next,
    and snapshots the experiment a moment later. A SIGKILL in between leaves a state that names
    a deleted checkpoint, and Tune then fails that trial on every retry ("Could not recover from
    checkpoint"). Restored from an empty checkpoint, the trial starts over from its first epoch.
    """
    for trial_json, runtime_json in state["trial_data"]:
        trial_id = json.loads(trial_json)["trial_id"]
        manager = json.loads(runtime_json).get("checkpoint_manager") or {}
        # Tune cloudpickles the checkpoint manager; the checkpoint's folder name is in it as text.
        try:
            pickled = bytes.fromhex(manager.get("value", ""))
        except (TypeError, ValueError):
            continue
        names = set(re.findall(rb"checkpoint_\d{6}", pickled))
        for folder in exp_dir.glob(f"*_{trial_id}_*"):
            for name in names:
                missing = folder / name.decode()
                if not missing.exists():
                    log.info("%s: deleted by the kill; trial %s starts over", missing, trial_id)
                    missing.mkdir()


def _drop_orphan_trials(exp_dir: Path, trials: list) -> None:
    """Remove trial folders the experiment does not list and that hold no result.

    A search killed (SIGKILL) after starting a trial but before Tune's next snapshot leaves that
    trial's empty folder; the resumed search, which never heard of it, runs another in its place.
    """
    known = {Path(t.path).resolve() for t in trials if t.path}
    for folder in exp_dir.iterdir():
        result = folder / "result.json"
        if folder.resolve() in known or not (folder / "params.json").exists():
            continue
        if not result.exists() or result.stat().st_size == 0:
            log.info("removing %s: a trial started just before the search was killed", folder)
            shutil.rmtree(folder, ignore_errors=True)


def _warn_cpu_fallback(rows: list[TrialRow]) -> None:
    fell_back = [r.trial_id for r in rows if r.gpu_ids and r.device == "cpu"]
    if fell_back:
        log.warning(
            "%d trial(s) were given a GPU share but found no usable CUDA device and trained on "
            "the CPU (%s); see trials.csv: device, gpu_ids, cuda_visible_devices",
            len(fell_back),
            ", ".join(fell_back),
        )


def _clear_previous(cfg: SearchConfig, overwrite: bool) -> None:
    storage = _storage(cfg)
    where = storage.restore_path(EXPERIMENT)
    if not storage.exists(EXPERIMENT):
        return
    if not overwrite:
        raise ConfigError(
            f"{where}: a search named {cfg.run_name!r} is already here; resume it with "
            f"--name {cfg.run_name} --resume, choose another --name, or pass --overwrite"
        )
    log.warning("overwriting the earlier search in %s", where)
    storage.remove(EXPERIMENT)


def _summary(rows, space, cfg, seconds, data, interrupted, num_samples) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    n = max(len(rows), 1)
    trial_time = sum(r.seconds for r in rows)
    train_time = sum(r.train_seconds for r in rows)
    default = rows[0] if rows else None  # the default configuration is evaluated first
    folds_per_k = max(len(cfg.cv_seeds), 1)
    return {
        "space": space.name,
        "sampler": cfg.sampler,
        "scheduler": cfg.scheduler,
        "num_samples": num_samples,
        "trials": len(rows),
        "cv_folds": cfg.cv,
        "cv_seeds": list(cfg.cv_seeds),
        "epochs_trained": sum(r.epochs for r in rows),
        "fold_epochs_trained": sum(r.epochs for r in rows) * max(cfg.cv, 1) * folds_per_k,
        "outcomes": counts,
        "interrupted": interrupted,
        "wall_seconds": seconds,
        "data_prep_seconds": data.report.seconds,
        "unreadable": data.unreadable,
        "trial_seconds_mean": trial_time / n,
        "train_loop_seconds_mean": train_time / n,
        "default_trial": {
            "trial_id": default.trial_id,
            space.metric: default.value,
            **{k: v for k, v in default.metrics.items() if k.startswith(f"{space.metric}_")},
        }
        if default
        else None,
    }


def _timing(rows, slots, seconds, progress: SearchProgress | None) -> dict[str, Any]:
    """How the trial slots were used; with this run's driver timeline (not after --resume)."""
    timing: dict[str, Any] = {
        "slot_usage": slot_usage(rows, slots, seconds, progress.spans if progress else None)
    }
    if progress:
        timing["peak_running_trials"] = progress.peak_running
        timing["timeline"] = {  # [started, first epoch began, ended], s since the start
            k: [None if t != t else round(t, 3) for t in v] for k, v in progress.spans.items()
        }
    return timing


def describe(outcome: SearchOutcome, top_k: int) -> str:
    """The end-of-search report: top-k table, best value against the default, where things are."""
    s = outcome.summary
    lines = [top_k_table(outcome.rows, outcome.space, top_k), ""]
    best, metric = outcome.best, outcome.space.metric
    default = s.get("default_trial") or {}
    if best:
        lines.append(
            f"best {metric}: {best.value:.4f} (trial {best.trial_id}); "
            f"default config: {_num(default.get(metric))}"
        )
    lines.append(f"trials: {s['outcomes']} in {s['wall_seconds']:.0f} s")
    for key in ("best_config", "best_model", "trials", "figure", "importances"):
        if key in outcome.paths:
            lines.append(f"{key.replace('_', ' ')}: {outcome.paths[key]}")
    lines.append(f"TensorBoard: {outcome.tensorboard}")
    return "\n".join(lines)


def _num(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "n/a"
