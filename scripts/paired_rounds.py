"""One recipe of two comparisons (scripts/cross_corpus.py's results.json), paired fold by fold.

Two rounds of the release pipeline train the same recipe, changed, on the same fold seeds: this
prints the later round against the earlier per corpus and for the macro, on the pooled folds
both ran (cross_corpus's paired table), and their leave-one-corpus-out lines side by side.

    python scripts/paired_rounds.py results/release/round3/compare/results.json \
        results/release/compare/results.json --names round3 round4
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


def relabelled(path: Path, recipe: str, name: str) -> list[dict[str, Any]]:
    """The runs of ``recipe`` in one results.json, renamed ``name`` so two rounds can be paired."""
    report = json.loads(path.read_text())
    runs = [dict(r, recipe=name) for r in report["runs"] if r["recipe"] == recipe]
    if not runs:
        raise ValueError(f"{path}: no runs of recipe {recipe!r}")
    return runs


def loco_lines(rows: list[dict[str, Any]], names: list[str]) -> list[str]:
    """Each round's leave-one-corpus-out score per direction: mean (min) over the fold seeds."""
    lines = [f"{'leave one corpus out':<36}" + "".join(f"{n:>18}" for n in names)]
    directions = sorted(
        {(r["train"], next(iter(r["per_corpus"]))) for r in rows if r["kind"] == LOCO}
    )
    for train, test in directions:
        cells = []
        for name in names:
            scores = [
                r["per_corpus"][test]["balanced_accuracy"]
                for r in rows
                if r["recipe"] == name and r["kind"] == LOCO and r["train"] == train
            ]
            cells.append(f"{statistics.fmean(scores):.4f} ({min(scores):.4f})" if scores else "-")
        lines.append(f"{train + ' → ' + test:<36}" + "".join(f"{c:>18}" for c in cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=Path, help="the earlier round's results.json")
    p.add_argument("after", type=Path, help="the later round's results.json")
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
