"""Would averaging models help? Measured on saved folds; nothing is trained.

    python scripts/ensemble_folds.py RESULTS.json RESULTS.json [...] [--run NAME]
        [--names A B ...] [--labels female male] [--out ensemble.json]

Each RESULTS.json holds out-of-fold window logits (T = 1) of the same outer folds (same fold
seeds, same test clips), trained by another recipe or from another initial seed: a
``scripts/real_model.py`` report (its run ``--run``, default ``recipe``) or a
``scripts/cross_corpus.py`` report (its pooled runs of recipe ``--run``, default ``default``,
scored per corpus and as the macro over corpora). The members' logits are averaged window by
window, pooled per clip the way ``vgd evaluate`` pools windows, and scored fold by fold with
vgd's own metrics: every single model and every ensemble of two or more, each paired by fold
with the first report alone (mean difference ± its spread, folds won and lost). ``--out`` writes
the table as JSON and a plot of each corpus's score against the number of models averaged.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vgd.calibration import pooled_probs
from vgd.crossval import fold_summary
from vgd.evaluate import compute_metrics
from vgd.io import atomic_write_json
from vgd.plots import pyplot, save_figure

Clips = tuple[list, list]  # per test clip: its window logits, and its label index
Folds = dict[tuple[int, int], dict[str, Clips]]  # (fold seed, fold) → corpus → clips
ALL = "all"  # the one "corpus" of a single-corpus report


def load_report(path: Path, run: str | None) -> Folds:
    """One report's folds: per (fold seed, fold), each corpus's test clips and their logits."""
    report = json.loads(path.read_text())
    runs = report.get("runs")
    if isinstance(runs, list):  # scripts/cross_corpus.py
        name = run or "default"
        rows = [
            r for r in runs if r.get("kind") == "pooled" and r.get("recipe") == name and "oof" in r
        ]
        if not rows:
            raise ValueError(f"{path}: no pooled runs of recipe {name!r} with saved logits")
        return {
            (r["seed"], r["fold"]): {c: (o["logits"], o["targets"]) for c, o in r["oof"].items()}
            for r in rows
        }
    name = run or "recipe"
    if name not in (runs or {}):
        raise ValueError(f"{path}: no run {name!r} (has {', '.join(runs or {}) or 'none'})")
    return {(r["seed"], r["fold"]): {ALL: (r["oof_logits"], r["oof_targets"])} for r in runs[name]}


def load_runs(paths: list[Path], run: str | None) -> list[Folds]:
    """Every report's folds; raises ValueError unless they share folds, test clips and windows."""
    runs = [load_report(path, run) for path in paths]

    def shape(folds: Folds) -> dict:
        return {
            key: {c: (t, [len(z) for z in logits]) for c, (logits, t) in corpora.items()}
            for key, corpora in folds.items()
        }

    first = shape(runs[0])
    for path, folds in zip(paths[1:], runs[1:]):
        if shape(folds) != first:
            raise ValueError(f"{path}: not the same folds, test clips and windows as {paths[0]}")
    return runs


def clip_scores(logits: list[list], targets: list[int], labels: list[str]) -> dict[str, float]:
    """Balanced accuracy and per-label recall of one fold's clips, windows pooled as evaluate."""
    m = compute_metrics(np.array(targets), pooled_probs(logits, 1.0), labels)
    recalls = {f"recall_{k}": v["recall"] for k, v in m["per_class"].items()}
    return {"balanced_accuracy": m["balanced_accuracy"], **recalls}


def fold_scores(members: list[Folds], labels: list[str]) -> list[dict[str, dict[str, float]]]:
    """Per fold, per corpus, the scores of the members' averaged window logits; with more than
    one corpus, also their macro balanced accuracy."""
    scores = []
    for key in sorted(members[0]):
        per_corpus = {}
        for corpus, (_, targets) in sorted(members[0][key].items()):
            clips = [m[key][corpus][0] for m in members]
            mean = [
                np.mean([np.asarray(c[i], dtype=np.float64) for c in clips], axis=0)
                for i in range(len(targets))
            ]
            per_corpus[corpus] = clip_scores(mean, targets, labels)
        if len(per_corpus) > 1:
            ba = statistics.fmean(s["balanced_accuracy"] for s in per_corpus.values())
            per_corpus["macro"] = {"balanced_accuracy": ba}
        scores.append(per_corpus)
    return scores


def headline(fold: dict[str, dict[str, float]]) -> float:
    """The figure a fold is paired on: the macro over corpora, or the one corpus's score."""
    return fold.get("macro", fold.get(ALL, {})).get("balanced_accuracy", float("nan"))


def paired(scores: list[dict], baseline: list[dict]) -> dict[str, float]:
    """Per-fold difference from the baseline: its mean, sample spread, folds won and lost."""
    diff = [headline(s) - headline(b) for s, b in zip(scores, baseline)]
    return {
        "mean": statistics.fmean(diff),
        "std": statistics.stdev(diff) if len(diff) > 1 else 0.0,
        "wins": sum(d > 1e-12 for d in diff),
        "losses": sum(d < -1e-12 for d in diff),
    }


def summarize(scores: list[dict[str, dict[str, float]]]) -> dict[str, dict]:
    """Mean, spread, min and max over folds of every score of every corpus."""
    return {
        corpus: fold_summary([s[corpus] for s in scores], list(scores[0][corpus]))
        for corpus in scores[0]
    }


def line(combo: str, summary: dict[str, dict], vs: dict[str, float] | None) -> str:
    """One printed row: the headline score, each corpus with its recalls, the paired difference."""
    parts = [f"{combo:>12}"]
    for corpus, s in summary.items():
        ba = s["balanced_accuracy"]
        recalls = " ".join(
            f"{k[7:]} {v['mean']:.3f}" for k, v in s.items() if k.startswith("recall_")
        )
        name = "balanced accuracy" if corpus == ALL else corpus
        parts.append(
            f"{name} {ba['mean']:.4f} ± {ba['std']:.4f}" + (f" ({recalls})" if recalls else "")
        )
    if vs is not None:
        parts.append(f"vs 1: {vs['mean']:+.4f} ± {vs['std']:.4f} ({vs['wins']}/{vs['losses']})")
    return "  ".join(parts)


def plot(table: list[dict[str, Any]], path: Path) -> None:
    """Each corpus's mean balanced accuracy against the number of members averaged, one dot per
    ensemble, the first report alone as a dashed line."""
    plt = pyplot()
    corpora = list(table[0]["scores"])
    fig, axes = plt.subplots(1, len(corpora), figsize=(3.6 * len(corpora), 3.6), squeeze=False)
    for ax, corpus in zip(axes[0], corpora):
        sizes = [len(row["members"]) for row in table]
        means = [row["scores"][corpus]["balanced_accuracy"]["mean"] for row in table]
        ax.scatter(sizes, means, s=14, alpha=0.7)
        ax.axhline(means[0], color="k", lw=0.8, linestyle="--", label=f"1 alone ({means[0]:.4f})")
        ax.set(xlabel="models averaged", xticks=sorted(set(sizes)), title=corpus)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("balanced accuracy (mean over folds)")
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, nargs="+", help="real_model.py or cross_corpus.py reports")
    p.add_argument("--run", help="the run (real_model.py) or recipe (cross_corpus.py) of each")
    p.add_argument("--names", nargs="+", help="a short name per report, for the table")
    p.add_argument("--labels", nargs="+", default=["female", "male"])
    p.add_argument("--out", type=Path, help="write the table as JSON here, and its plot beside")
    args = p.parse_args(argv)
    names = args.names or [str(path) for path in args.results]
    if len(names) != len(args.results):
        p.error(f"--names gives {len(names)} names for {len(args.results)} reports")
    try:
        runs = load_runs(args.results, args.run)
    except (OSError, KeyError, ValueError) as e:
        print(f"ensemble_folds: error: {e}", file=sys.stderr)
        return 2
    for i, name in enumerate(names, 1):
        print(f"{i}: {name}")
    baseline = fold_scores(runs[:1], args.labels)
    table = []
    for k in range(1, len(runs) + 1):
        for combo in itertools.combinations(range(len(runs)), k):
            scores = (
                baseline if combo == (0,) else fold_scores([runs[i] for i in combo], args.labels)
            )
            summary = summarize(scores)
            vs = paired(scores, baseline) if combo != (0,) else None
            table.append({"members": [names[i] for i in combo], "scores": summary, "vs_first": vs})
            print(line("+".join(str(i + 1) for i in combo), summary, vs))
    if args.out:
        atomic_write_json(args.out, {"folds": len(baseline), "table": table})
        plot(table, args.out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
