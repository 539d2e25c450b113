"""Can one threshold of "unknown" meet both of issue 19's targets on every corpus? Measured on
saved out-of-fold logits at the shipped model's temperature; nothing is trained.

    python scripts/unknown_threshold.py RESULTS.json [...] [--names A ...] [--recipe default]
        [--model-dir vgd/pretrained | --temperature T] [--max-unknown 0.03] [--min-gain 0.005]
        [--out results/cross_corpus/unknown_threshold]

Each RESULTS.json is a ``scripts/cross_corpus.py`` report whose pooled runs kept their test
clips' window logits (T = 1), as the release's comparison does. Per report, and over all of them
together, each corpus's clips are pooled as ``vgd predict`` pools a clip's windows (mean
probability at the temperature) and, for every threshold from 0.50 to 0.95, scored: the share
answered "unknown" and the accuracy on the answered clips minus the forced-choice accuracy on
all of them. The targets: "unknown" at most ``--max-unknown`` of the clips on each corpus, and
the answered clips at least ``--min-gain`` more accurate than forced choice. Prints the table at
a few thresholds and the thresholds that meet both targets on every corpus (or none); writes
JSON and a plot of the two figures against the threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vgd.calibration import pooled_probs
from vgd.io import atomic_write_json
from vgd.plots import pyplot, save_figure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from release_model import coverage, out_of_fold  # noqa: E402  (the release's own readers)

THRESHOLDS = np.round(np.arange(0.50, 0.951, 0.01), 2)
SHOWN = (0.6, 0.65, 0.7, 0.75, 0.8, 0.9)


def pooled_runs(report: dict[str, Any], recipe: str) -> list[dict[str, Any]]:
    """The report's pooled cross-validation runs of ``recipe`` that kept their logits."""
    return [
        r
        for r in report["runs"]
        if r.get("kind") == "pooled" and r.get("recipe") == recipe and "oof" in r
    ]


def sweep(probs: np.ndarray, targets: np.ndarray) -> list[dict[str, float]]:
    """Per threshold: the share answered "unknown", and accuracy answered minus forced choice."""
    forced = float((probs.argmax(axis=1) == targets).mean())
    return [
        {
            "threshold": r["threshold"],
            "unknown": r["unknown"],
            "accuracy_answered": r["accuracy"],
            "gain": r["accuracy"] - forced,
        }
        for r in coverage(probs, targets, THRESHOLDS)
    ]


def measure(runs: list[dict[str, Any]], temperature: float) -> dict[str, dict[str, Any]]:
    """Per corpus: its clips, forced-choice accuracy and the sweep."""
    out = {}
    for name, (logits, targets) in sorted(out_of_fold(runs).items()):
        probs = pooled_probs(logits, temperature)
        out[name] = {
            "clips": int(targets.size),
            "forced_accuracy": float((probs.argmax(axis=1) == targets).mean()),
            "sweep": sweep(probs, targets),
        }
    return out


def meets(corpus: dict[str, Any], max_unknown: float, min_gain: float) -> np.ndarray:
    """Per threshold: whether the corpus meets both targets there."""
    return np.array(
        [r["unknown"] <= max_unknown and r["gain"] >= min_gain for r in corpus["sweep"]]
    )


def meeting(corpora: dict[str, dict[str, Any]], max_unknown: float, min_gain: float) -> list:
    """The thresholds at which every corpus meets both targets."""
    ok = np.logical_and.reduce([meets(c, max_unknown, min_gain) for c in corpora.values()])
    return [float(t) for t in THRESHOLDS[ok]]


def span(thresholds: list[float]) -> str:
    """'0.64-0.70 (4 of 46)', or 'none'."""
    if not thresholds:
        return "none"
    return f"{min(thresholds):.2f}-{max(thresholds):.2f} ({len(thresholds)} of {len(THRESHOLDS)})"


def table(name: str, runs: int, corpora: dict[str, dict[str, Any]], args) -> str:
    """The set's lines: per corpus, "unknown" and the gain (points) at the shown thresholds, and
    where it meets both targets; then where every corpus does."""
    lines = [f"{name} ({runs} pooled runs)"]
    for corpus, c in corpora.items():
        at = {r["threshold"]: r for r in c["sweep"]}
        cells = [
            f"{t:.2f}: {at[t]['unknown']:.3f} {100 * at[t]['gain']:+.2f}" for t in SHOWN if t in at
        ]
        own = [float(t) for t in THRESHOLDS[meets(c, args.max_unknown, args.min_gain)]]
        lines.append(
            f"  {corpus:15s} {c['clips']:5d} clips  forced {c['forced_accuracy']:.4f} | "
            + " | ".join(cells)
            + f" | meets both at {span(own)}"
        )
    every = span(meeting(corpora, args.max_unknown, args.min_gain))
    lines.append(f"  thresholds meeting both targets on every corpus: {every}")
    return "\n".join(lines)


def plot(sets: dict[str, dict[str, Any]], args: argparse.Namespace, path: Path) -> None:
    """'Unknown' and the gain against the threshold, per corpus, one line style per set."""
    plt = pyplot()
    fig, (ax_u, ax_g) = plt.subplots(1, 2, figsize=(11, 4))
    styles = ["-", "--", ":", "-."]
    for (name, s), style in zip(sets.items(), styles * len(sets)):
        for k, (corpus, c) in enumerate(s["corpora"].items()):
            t = [r["threshold"] for r in c["sweep"]]
            kw = {"color": f"C{k}", "linestyle": style, "label": f"{corpus}, {name}"}
            ax_u.plot(t, [100 * r["unknown"] for r in c["sweep"]], **kw)
            ax_g.plot(t, [100 * r["gain"] for r in c["sweep"]], **kw)
    ax_u.axhline(100 * args.max_unknown, color="k", lw=0.8)
    ax_g.axhline(100 * args.min_gain, color="k", lw=0.8)
    ax_u.set(
        xlabel="threshold",
        ylabel='"unknown" (% of clips)',
        title=f"target: at most {100 * args.max_unknown:g}%",
    )
    ax_g.set(
        xlabel="threshold",
        ylabel="accuracy answered − forced choice (points)",
        title=f"target: at least {100 * args.min_gain:g} point",
    )
    for ax in (ax_u, ax_g):
        ax.axvline(0.7, color="grey", lw=0.8, linestyle=":")
        ax.grid(alpha=0.3)
    ax_g.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def add_report_args(p: argparse.ArgumentParser) -> None:
    """The arguments that name the reports, their recipe and the temperature to score them at."""
    p.add_argument("reports", type=Path, nargs="+", help="cross_corpus.py results.json")
    p.add_argument("--names", nargs="+", help="one per report (default: their folders' names)")
    p.add_argument("--recipe", default="default", help="the runs of this recipe")
    p.add_argument("--model-dir", type=Path, default=Path("vgd/pretrained"))
    p.add_argument("--temperature", type=float, help="instead of the model's metrics.json")


def read_sets(args: argparse.Namespace) -> tuple[float, dict[str, list[dict[str, Any]]]]:
    """The temperature, and per named report its pooled runs (with "all" of them when there
    are several); raises ValueError (or OSError, KeyError) naming what is wrong."""
    t = args.temperature or json.loads((args.model_dir / "metrics.json").read_text())["temperature"]
    names = args.names or [r.parent.name for r in args.reports]
    if len(names) != len(args.reports) or len(set(names)) != len(names):
        raise ValueError(f"--names: one distinct name per report, got {names}")
    runs = {
        n: pooled_runs(json.loads(r.read_text()), args.recipe) for n, r in zip(names, args.reports)
    }
    empty = [name for name, rs in runs.items() if not rs]
    if empty:
        raise ValueError(f"{empty[0]}: no pooled runs of {args.recipe!r} with logits")
    if len(runs) > 1:
        runs["all"] = [r for rs in runs.values() for r in rs]
    return t, runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_report_args(p)
    p.add_argument("--max-unknown", type=float, default=0.03)
    p.add_argument("--min-gain", type=float, default=0.005)
    p.add_argument("--out", type=Path, default=Path("results/cross_corpus/unknown_threshold"))
    args = p.parse_args(argv)
    try:
        t, runs = read_sets(args)
    except (OSError, ValueError, KeyError) as e:
        print(f"unknown_threshold: error: {e}", file=sys.stderr)
        return 2
    sets = {}
    print(f"temperature {t:.4f}; per corpus at each threshold: unknown, gain in points")
    for name, rs in runs.items():
        corpora = measure(rs, t)
        met = meeting(corpora, args.max_unknown, args.min_gain)
        sets[name] = {"runs": len(rs), "corpora": corpora, "meeting": met}
        print(table(name, len(rs), corpora, args))
    atomic_write_json(
        args.out / "sweep.json",
        {
            "command": " ".join(["python scripts/unknown_threshold.py", *(argv or sys.argv[1:])]),
            "temperature": t,
            "max_unknown": args.max_unknown,
            "min_gain": args.min_gain,
            "sets": sets,
        },
    )
    plot(sets, args, args.out / "sweep.png")
    print(f"wrote {args.out}/sweep.json and sweep.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
