"""Could one decision bias bring both corpora's per-gender recalls within issue 19's gap? Measured
on saved out-of-fold logits at the shipped model's temperature; nothing is trained.

    python scripts/decision_bias.py RESULTS.json [...] [--names A ...] [--recipe default]
        [--model-dir vgd/pretrained | --temperature T] [--max-gap 0.02]
        [--out results/cross_corpus/decision_bias]

A bias b is added to the second label's (male's) logit of every window after the temperature,
``z / T + [0, b]``: a shift of the prior that trades one gender's recall for the other's, the
one free knob a calibrated two-class model has besides "unknown". Each RESULTS.json is a
``scripts/cross_corpus.py`` report whose pooled runs kept their test clips' window logits. For
every b from -1.5 to 1.5 in steps of 0.1, per corpus and fold (windows pooled as ``vgd predict``
pools them, mean probability), the recall of each gender, then their means over folds as the
card reports them: balanced accuracy, recalls and the gap (male − female recall). Prints the
table at a few biases and the biases at which each corpus, and every corpus, keeps its gap
within ``--max-gap``; writes JSON and a plot of the gaps and balanced accuracies against b.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vgd.calibration import pooled_probs
from vgd.evaluate import compute_metrics
from vgd.io import atomic_write_json
from vgd.plots import pyplot, save_figure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unknown_threshold import add_report_args, read_sets  # noqa: E402  (the same reports)

LABELS = ("female", "male")  # the bias is added to the second, male
BIASES = np.round(np.arange(-1.5, 1.501, 0.1), 2)
SHOWN = (-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0)


def recalls(logits: list, targets: list[int], temperature: float, bias: float) -> np.ndarray:
    """Each label's recall on one fold's clips, with ``bias`` added to the second label's logit."""
    shift = np.array([0.0, bias])
    z = [np.asarray(w, dtype=np.float64) / temperature + shift for w in logits]
    m = compute_metrics(np.asarray(targets), pooled_probs(z, 1.0), LABELS)
    return np.array([m["per_class"][label]["recall"] for label in LABELS])


def sweep(runs: list[dict[str, Any]], temperature: float) -> dict[str, list[dict[str, float]]]:
    """Per corpus, at every bias: the recalls' means over the runs, their mean and their gap."""
    out: dict[str, list[dict[str, float]]] = {}
    for corpus in sorted(runs[0]["oof"]):
        rows = []
        for b in BIASES:
            per_fold = [
                recalls(r["oof"][corpus]["logits"], r["oof"][corpus]["targets"], temperature, b)
                for r in runs
            ]
            female, male = np.mean(per_fold, axis=0)
            rows.append(
                {
                    "bias": float(b),
                    "balanced_accuracy": float((female + male) / 2),
                    "recall_female": float(female),
                    "recall_male": float(male),
                    "gap": float(male - female),
                }
            )
        out[corpus] = rows
    return out


def within(rows: list[dict[str, float]], max_gap: float) -> list[float]:
    """The biases at which the gap is at most ``max_gap`` either way (a hair of float slack)."""
    return [r["bias"] for r in rows if abs(r["gap"]) <= max_gap + 1e-9]


def meeting(corpora: dict[str, list[dict[str, float]]], max_gap: float) -> list[float]:
    """The biases at which every corpus keeps its gap within ``max_gap``."""
    return sorted(set.intersection(*(set(within(rows, max_gap)) for rows in corpora.values())))


def span(biases: list[float]) -> str:
    """'-0.30 to 0.10 (5 of 31)', or 'none'."""
    if not biases:
        return "none"
    return f"{min(biases):+.2f} to {max(biases):+.2f} ({len(biases)} of {len(BIASES)})"


def table(name: str, runs: int, corpora: dict[str, list[dict]], max_gap: float) -> str:
    """The set's lines: per corpus, balanced accuracy and gap (points) at the shown biases, and
    where the gap is within target; then where every corpus's is."""
    lines = [f"{name} ({runs} pooled runs)"]
    for corpus, rows in corpora.items():
        at = {r["bias"]: r for r in rows}
        cells = [
            f"{b:+.1f}: {at[b]['balanced_accuracy']:.4f} {100 * at[b]['gap']:+.2f}"
            for b in SHOWN
            if b in at
        ]
        lines.append(
            f"  {corpus:15s} "
            + " | ".join(cells)
            + f" | gap within {100 * max_gap:g} at {span(within(rows, max_gap))}"
        )
    lines.append(
        f"  biases keeping every corpus's gap within target: {span(meeting(corpora, max_gap))}"
    )
    return "\n".join(lines)


def plot(sets: dict[str, dict[str, Any]], max_gap: float, path: Path) -> None:
    """The gap and the balanced accuracy against the bias, per corpus, one line style per set."""
    plt = pyplot()
    fig, (ax_g, ax_b) = plt.subplots(1, 2, figsize=(11, 4))
    styles = ["-", "--", ":", "-."]
    for (name, s), style in zip(sets.items(), styles * len(sets)):
        for k, (corpus, rows) in enumerate(s["corpora"].items()):
            b = [r["bias"] for r in rows]
            kw = {"color": f"C{k}", "linestyle": style, "label": f"{corpus}, {name}"}
            ax_g.plot(b, [100 * r["gap"] for r in rows], **kw)
            ax_b.plot(b, [r["balanced_accuracy"] for r in rows], **kw)
    ax_g.axhspan(-100 * max_gap, 100 * max_gap, color="k", alpha=0.08)
    ax_g.set(
        xlabel="bias added to the male logit",
        ylabel="recall male − female (points)",
        title=f"target: within ±{100 * max_gap:g} points (shaded)",
    )
    ax_b.set(xlabel="bias added to the male logit", ylabel="balanced accuracy (mean over folds)")
    for ax in (ax_g, ax_b):
        ax.axvline(0.0, color="grey", lw=0.8, linestyle=":")
        ax.grid(alpha=0.3)
    ax_b.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_report_args(p)
    p.add_argument("--max-gap", type=float, default=0.02, help="the target, as a share")
    p.add_argument("--out", type=Path, default=Path("results/cross_corpus/decision_bias"))
    args = p.parse_args(argv)
    try:
        t, runs = read_sets(args)
    except (OSError, ValueError, KeyError) as e:
        print(f"decision_bias: error: {e}", file=sys.stderr)
        return 2
    print(f"temperature {t:.4f}; per corpus at each bias: balanced accuracy, gap in points")
    sets = {}
    for name, rs in runs.items():
        corpora = sweep(rs, t)
        sets[name] = {
            "runs": len(rs),
            "corpora": corpora,
            "meeting": meeting(corpora, args.max_gap),
        }
        print(table(name, len(rs), corpora, args.max_gap))
    atomic_write_json(
        args.out / "sweep.json",
        {
            "command": " ".join(["python scripts/decision_bias.py", *(argv or sys.argv[1:])]),
            "temperature": t,
            "max_gap": args.max_gap,
            "sets": sets,
        },
    )
    plot(sets, args.max_gap, args.out / "sweep.png")
    print(f"wrote {args.out}/sweep.json and sweep.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
