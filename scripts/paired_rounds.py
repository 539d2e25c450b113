"""One recipe of two comparisons (scripts/cross_corpus.py's results.json), paired fold by fold.

Two rounds of the release pipeline train the same recipe, changed, on the same fold seeds: this
prints the later round against the earlier per corpus and for the macro, on the pooled folds
both ran (cross_corpus's paired table), and their leave-one-corpus-out lines side by side.

    python scripts/paired_rounds.py results/release/round3/compare/results.json \
        results/release/compare/results.json --names round3 round4

A round whose runs are in several reports (more fold seeds, run later) is named by their paths
joined with commas. Leave-one-corpus-out runs are paired by fold seed: the last columns are the
mean difference and the wins/losses over the seeds both rounds ran.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_corpus import LOCO, paired, paired_lines  # noqa: E402


def relabelled(paths: list[Path], recipe: str, name: str) -> list[dict[str, Any]]:
    """The runs of ``recipe`` in one round's results.json files, renamed ``name`` so two rounds
    can be paired."""
    runs = []
    for path in paths:
        report = json.loads(path.read_text())
        mine = [dict(r, recipe=name) for r in report["runs"] if r["recipe"] == recipe]
        if not mine:
            raise ValueError(f"{path}: no runs of recipe {recipe!r}")
        runs += mine
    return runs


def reports(text: str) -> list[Path]:
    """One round's reports: paths joined with commas."""
    return [Path(p) for p in text.split(",") if p]


def loco_lines(rows: list[dict[str, Any]], names: list[str]) -> list[str]:
    """Each round's leave-one-corpus-out score per direction: mean (min) over the fold seeds,
    then the later round's mean difference and wins/losses, paired by seed."""
    lines = [
        f"{'leave one corpus out':<36}"
        + "".join(f"{n:>18}" for n in names)
        + f"{'diff':>10}{'wins/losses':>13}"
    ]
    directions = sorted(
        {(r["train"], next(iter(r["per_corpus"]))) for r in rows if r["kind"] == LOCO}
    )
    for train, test in directions:
        by_seed = [
            {
                r["seed"]: r["per_corpus"][test]["balanced_accuracy"]
                for r in rows
                if r["recipe"] == name and r["kind"] == LOCO and r["train"] == train
            }
            for name in names
        ]
        cells = [
            f"{statistics.fmean(s.values()):.4f} ({min(s.values()):.4f})" if s else "-"
            for s in by_seed
        ]
        diff = [by_seed[1][k] - by_seed[0][k] for k in sorted(by_seed[0].keys() & by_seed[1])]
        paired_cells = (
            f"{statistics.fmean(diff):+10.4f}"
            f"{sum(d > 0 for d in diff):>9d}/{sum(d < 0 for d in diff)}"
            if diff
            else ""
        )
        lines.append(
            f"{train + ' → ' + test:<36}" + "".join(f"{c:>18}" for c in cells) + paired_cells
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=reports, help="the earlier round's results.json (A,B,...)")
    p.add_argument("after", type=reports, help="the later round's results.json (A,B,...)")
    p.add_argument("--recipe", default="default", help="the recipe to pair (default: default)")
    p.add_argument("--names", nargs=2, default=["before", "after"], metavar=("BEFORE", "AFTER"))
    args = p.parse_args(argv)
    try:
        rows = [
            *relabelled(args.before, args.recipe, args.names[0]),
            *relabelled(args.after, args.recipe, args.names[1]),
        ]
    except (OSError, ValueError, KeyError) as e:
        print(f"paired_rounds: error: {e}", file=sys.stderr)
        return 2
    report = {"paired": {"after": paired(rows, *args.names)}}
    print("\n".join([*paired_lines(report), "", *loco_lines(rows, args.names)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
