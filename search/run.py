"""Hyperparameter search over vgd's trainable: ``python search/run.py --space wide``.

Ray Tune schedules trials on every CPU/GPU of this machine (or of a Ray cluster with
``--address``), Optuna proposes configurations, ASHA stops poor trials early. Results go to
results/search/<name>/; ``--resume`` continues an interrupted search.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vgd.checkpoint import CheckpointError
from vgd.cliargs import add_fields, from_args
from vgd.config import ConfigError
from vgd.manifest import ManifestError
from vgd.params import SearchConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="search/run.py", description=__doc__.splitlines()[0])
    add_fields(p, SearchConfig)
    p.add_argument("--resume", action="store_true", help="continue the interrupted search --name")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier search --name")
    p.add_argument(
        "--params",
        default="",
        help="take every setting from this YAML's `search` section (DVC's params.yaml)",
    )
    return p


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    """The search's settings: from params.yaml's ``search`` section, or from the flags."""
    if args.params:
        from vgd.params import load_params

        return load_params(args.params).search_config
    return from_args(SearchConfig, args)


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
