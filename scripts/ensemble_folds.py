"""Would averaging models trained from different initial seeds help? Measured on saved folds.

    python scripts/ensemble_folds.py RESULTS.json RESULTS.json [...] [--run recipe]
        [--labels female male] [--out results/real_model/init_seeds/ensemble.json]

Each RESULTS.json is a ``scripts/real_model.py`` report of the same outer folds (same fold
seeds, same test speakers) trained from a different ``seed:`` in the recipe. Their saved
out-of-fold window logits (T = 1) are averaged member by member, pooled per clip the way
``vgd evaluate`` pools windows, and scored fold by fold with vgd's own metrics: every single
model, and every ensemble of two or more. Nothing is trained, so it runs in a second.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vgd.calibration import pooled_probs
from vgd.crossval import fold_summary
from vgd.evaluate import compute_metrics
from vgd.io import atomic_write_json


def load_runs(paths: list[Path], run: str) -> list[list[dict[str, Any]]]:
    """The named run's fold rows of each report; raises ValueError unless they share folds."""
    runs = []
    for path in paths:
        report = json.loads(path.read_text())
        if run not in report.get("runs", {}):
            raise ValueError(f"{path}: no run {run!r} (has {', '.join(report.get('runs', {}))})")
        runs.append(report["runs"][run])
    first = [(r["seed"], r["fold"], r["oof_targets"]) for r in runs[0]]
    for path, rows in zip(paths[1:], runs[1:]):
        if [(r["seed"], r["fold"], r["oof_targets"]) for r in rows] != first:
            raise ValueError(f"{path}: not the same folds and test clips as {paths[0]}")
    return runs


def fold_scores(members: list[list[dict[str, Any]]], labels: list[str]) -> list[dict[str, float]]:
    """Balanced accuracy and per-label recall per fold of the members' averaged window logits."""
    scores = []
    for rows in zip(*members):
        logits = [
            np.mean([np.asarray(r["oof_logits"][i], dtype=np.float64) for r in rows], axis=0)
            for i in range(len(rows[0]["oof_targets"]))
        ]
        m = compute_metrics(np.array(rows[0]["oof_targets"]), pooled_probs(logits, 1.0), labels)
        recalls = {f"recall_{k}": v["recall"] for k, v in m["per_class"].items()}
        scores.append({"balanced_accuracy": m["balanced_accuracy"], **recalls})
    return scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, nargs="+", help="real_model.py results.json files")
    p.add_argument("--run", default="recipe", help="which run of each report")
    p.add_argument("--labels", nargs="+", default=["female", "male"])
    p.add_argument("--out", type=Path, help="write the table as JSON here")
    args = p.parse_args(argv)
    try:
        runs = load_runs(args.results, args.run)
    except (OSError, KeyError, ValueError) as e:
        print(f"ensemble_folds: error: {e}", file=sys.stderr)
        return 2
    table = []
    for k in range(1, len(runs) + 1):
        for combo in itertools.combinations(range(len(runs)), k):
            scores = fold_scores([runs[i] for i in combo], args.labels)
            s = fold_summary(scores, list(scores[0]))
            table.append({"members": [str(args.results[i]) for i in combo], **s})
            ba = s["balanced_accuracy"]
            recalls = "  ".join(
                f"{key[7:]} {v['mean']:.4f}" for key, v in s.items() if key != "balanced_accuracy"
            )
            print(
                f"{'+'.join(str(i + 1) for i in combo):>8}  balanced accuracy {ba['mean']:.4f} ± "
                f"{ba['std']:.4f} (min {ba['min']:.4f})  recall {recalls}"
            )
    if args.out:
        atomic_write_json(args.out, {"folds": len(runs[0]), "table": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())
