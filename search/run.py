"""Hyperparameter search over vgd's trainable: ``python search/run.py --space wide``.

Ray Tune schedules trials on every CPU/GPU of this machine (or of a Ray cluster with
``--address``), Optuna proposes configurations, ASHA stops poor trials early. Results go to
results/search/<name>/; ``--resume`` continues an interrupted search.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from search.config import SAMPLERS, SCHEDULERS, SearchConfig
from vgd.checkpoint import CheckpointError
from vgd.config import ConfigError, from_dict
from vgd.manifest import ManifestError


def build_parser() -> argparse.ArgumentParser:
    d = SearchConfig()
    p = argparse.ArgumentParser(prog="search/run.py", description=__doc__.splitlines()[0])
    p.add_argument("--space", default=d.space, help="search_spaces/<name>.yaml, or a path")
    p.add_argument("--name", default="", help="results/search/<name> (default: the space name)")
    p.add_argument("--config", default="", help="base training config YAML")
    p.add_argument("--manifest", default="", help="manifest CSV (default: the config's)")
    p.add_argument("--results-dir", default=d.results_dir)
    p.add_argument("--cache-dir", default=d.cache_dir, help="decoded-audio cache ('' for none)")
    p.add_argument("--sampler", choices=SAMPLERS, default=d.sampler)
    p.add_argument("--scheduler", choices=SCHEDULERS, default=d.scheduler)
    p.add_argument("--num-samples", type=int, default=0, help="trials (default: the space's)")
    p.add_argument("--time-budget", type=float, default=0.0, help="seconds (default: space's)")
    p.add_argument("--max-concurrent", type=int, default=0, help="0: as resources allow")
    p.add_argument("--cpus-per-trial", type=float, default=d.cpus_per_trial)
    p.add_argument(
        "--gpus-per-trial",
        type=float,
        default=d.gpus_per_trial,
        help="fractions share a GPU: 0.25 puts four trials on one",
    )
    p.add_argument("--address", default="", help="join a Ray cluster (e.g. auto, host:6379)")
    p.add_argument("--storage-path", default="", help="trial folders; shared storage on clusters")
    p.add_argument("--max-failures", type=int, default=d.max_failures, help="retries per trial")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--top-k", type=int, default=d.top_k)
    p.add_argument("--resume", action="store_true", help="continue the interrupted search --name")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier search --name")
    p.add_argument(
        "--params",
        default="",
        help="take every setting from this YAML's `search` section (DVC's params.yaml)",
    )
    return p


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    if args.params:
        return params_search_config(args.params)
    return SearchConfig(
        space=args.space,
        name=args.name,
        config=args.config,
        manifest=args.manifest,
        results_dir=args.results_dir,
        cache_dir=args.cache_dir,
        sampler=args.sampler,
        scheduler=args.scheduler,
        num_samples=args.num_samples,
        time_budget_s=args.time_budget,
        max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        address=args.address,
        storage_path=args.storage_path,
        max_failures=args.max_failures,
        seed=args.seed,
        top_k=args.top_k,
    )


def params_search_config(path: str) -> SearchConfig:
    """The ``search`` section of params.yaml; the manifest defaults to the data stage's."""
    from vgd.pipeline import load_params

    params = load_params(path)
    section = {"manifest": str(params.data.manifest), **params.search}
    return from_dict(SearchConfig, section, "search.")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, run or resume the search, print the report; the exit status says how it went."""
    from search.harness import describe, ensure_default_corpus, run_search

    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
        if not args.resume:
            ensure_default_corpus(cfg)
        outcome = run_search(cfg, resume=args.resume, overwrite=args.overwrite)
    except (ConfigError, ManifestError, CheckpointError) as e:
        print(f"search: error: {e}", file=sys.stderr)
        return 2
    except ConnectionError as e:
        print(
            f"search: error: cannot join the Ray cluster at {args.address} ({e}); a cluster "
            "started by `ray start` uses token authentication: run with RAY_AUTH_MODE=token "
            "and the cluster's ~/.ray/auth_token (see scripts/ray_cluster.sh)",
            file=sys.stderr,
        )
        return 2
    print(describe(outcome, cfg.top_k))
    if outcome.interrupted:
        resume = f"python search/run.py --name {cfg.run_name} --resume"
        print(f"search interrupted: {len(outcome.rows)} trial(s) recorded. Resume with: {resume}")
        return 130
    return 0 if outcome.best else 1


if __name__ == "__main__":
    sys.exit(main())
