"""One recipe of two comparisons (scripts/cross_corpus.py's results.json), paired fold by fold.

Two rounds of the release pipeline train the same recipe, changed, on the same fold seeds: this
prints the later round against the earlier per corpus and for the macro, on the pooled folds
both ran (cross_corpus's paired table), and their leave-one-corpus-out lines side by side.

    python scripts/paired_rounds.py results/release/round3/compare/results.json \
        results/release/compare/results.json --names round3 round4

A round whose runs are in several reports (more fold seeds, run later) is named by their paths
joined with commas. ``--recipe BEFORE AFTER`` pairs two recipes of different names (a recipe
trained with a third corpus against the default, say). When the rounds scored different corpora,
the corpora only one of them scored are left out of the pairs and of the macro, which is then
the mean over the corpora both scored. Leave-one-corpus-out runs are paired by the corpus they
test and by fold seed: the last columns are the mean difference and the wins/losses over the
seeds both rounds ran.
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


def on_shared_corpora(rows: list[dict[str, Any]], names: list[str]) -> list[str]:
    """Keep only the corpora both rounds' pooled runs scored, the macro recomputed over them;
    return the corpora left out."""
    scored = [
        set().union(*(r["per_corpus"] for r in rows if r["recipe"] == n and r["kind"] != LOCO))
        for n in names
    ]
    if not all(scored):  # a round without pooled runs: nothing to pair
        return []
    shared = scored[0] & scored[1]
    if not shared:
        raise ValueError(
            f"no corpus scored by both rounds: {sorted(scored[0])}, {sorted(scored[1])}"
        )
    dropped = sorted((scored[0] | scored[1]) - shared)
    if not dropped:
        return []
    for r in (r for r in rows if r["kind"] != LOCO):
        r["per_corpus"] = {c: m for c, m in r["per_corpus"].items() if c in shared}
        r["macro_balanced_accuracy"] = statistics.fmean(
            m["balanced_accuracy"] for m in r["per_corpus"].values()
        )
    return dropped


def reports(text: str) -> list[Path]:
    """One round's reports: paths joined with commas."""
    return [Path(p) for p in text.split(",") if p]


def loco_lines(rows: list[dict[str, Any]], names: list[str]) -> list[str]:
    """Each round's leave-one-corpus-out score per corpus left out: mean (min) over the fold
    seeds, then the later round's mean difference and wins/losses, paired by seed."""
    tested = sorted({next(iter(r["per_corpus"])) for r in rows if r["kind"] == LOCO})
    cells, labels = [], []
    for test in tested:
        mine = [
            [r for r in rows if r["recipe"] == n and r["kind"] == LOCO and test in r["per_corpus"]]
            for n in names
        ]
        by_seed = [{r["seed"]: r["per_corpus"][test]["balanced_accuracy"] for r in m} for m in mine]
        scores = [
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
        labels.append(" | ".join(dict.fromkeys(r["train"] for m in mine for r in m)) + f" → {test}")
        cells.append("".join(f"{c:>18}" for c in scores) + paired_cells)
    width = max([36, *(len(label) + 2 for label in labels)])
    head = f"{'leave one corpus out':<{width}}" + "".join(f"{n:>18}" for n in names)
    return [
        head + f"{'diff':>10}{'wins/losses':>13}",
        *(f"{label:<{width}}{c}" for label, c in zip(labels, cells)),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=reports, help="the earlier round's results.json (A,B,...)")
    p.add_argument("after", type=reports, help="the later round's results.json (A,B,...)")
    p.add_argument(
        "--recipe",
        nargs="+",
        default=["default"],
        metavar="NAME",
        help="the recipe to pair (default: default), or BEFORE AFTER when they differ",
    )
    p.add_argument("--names", nargs=2, default=["before", "after"], metavar=("BEFORE", "AFTER"))
    args = p.parse_args(argv)
    if len(args.recipe) > 2:
        p.error("--recipe takes one name, or two (BEFORE AFTER)")
    before, after = (args.recipe * 2)[:2]  # one name serves both rounds
    try:
        rows = [
            *relabelled(args.before, before, args.names[0]),
            *relabelled(args.after, after, args.names[1]),
        ]
        dropped = on_shared_corpora(rows, args.names)
    except (OSError, ValueError, KeyError) as e:
        print(f"paired_rounds: error: {e}", file=sys.stderr)
        return 2
    report = {"paired": {"after": paired(rows, *args.names)}}
    lines = paired_lines(report)
    if dropped:
        left_out = ", ".join(dropped)
        lines.append(f"not paired (one round scored them): {left_out}; macro over the rest")
    print("\n".join([*lines, "", *loco_lines(rows, args.names)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
