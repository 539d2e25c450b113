"""Do the cross-corpus runs fail to rank voices, or rank them well at a shifted threshold?
Measured on a comparison's saved out-of-fold logits; nothing is trained.

    python scripts/corpus_shift.py RESULTS.json [--recipe default]
        [--out results/cross_corpus/corpus_shift]

RESULTS.json is a ``scripts/cross_corpus.py`` report. A test clip's score is the log-odds of the
second label (male) against the first, from its windows' mean probability at the run's
temperature, as ``vgd predict`` pools them (so the model answers male above 0). For each
leave-one-corpus-out run, and for contrast each pooled fold's corpora, the balanced accuracy:

- at the model's threshold, 0 (what the run reported);
- at the best single threshold for that test set, chosen with its labels: how much a shift of
  the threshold alone could recover (an upper bound, not a method);
- at a threshold found without labels: where the two components of a Gaussian mixture fitted to
  the test set's scores cross, between their means (a method, when the set holds both genders);

and the ROC AUC, which no threshold changes. Prints a table, writes JSON and a plot of the
leave-one-corpus-out runs' scores per gender with the three thresholds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

from vgd.calibration import pooled_probs
from vgd.io import atomic_write_json, atomic_write_text
from vgd.plots import pyplot, save_figure

LOCO = "loco"  # a run's kind: leave one corpus out


def clip_scores(logits: list[list[list[float]]], temperature: float) -> np.ndarray:
    """Each clip's log-odds of the second label, from its windows' mean probability at T."""
    probs = np.clip(pooled_probs([np.asarray(z) for z in logits], temperature), 1e-12, 1.0)
    return np.log(probs[:, 1]) - np.log(probs[:, 0])


def balanced_accuracy(scores: np.ndarray, targets: np.ndarray, threshold: float) -> float:
    """Mean of the two labels' recalls when scores above ``threshold`` are the second label."""
    said = scores > threshold
    return float((np.mean(~said[targets == 0]) + np.mean(said[targets == 1])) / 2)


def best_threshold(scores: np.ndarray, targets: np.ndarray) -> float:
    """The threshold (a midpoint between sorted scores) with the best balanced accuracy."""
    s = np.unique(scores)
    candidates = np.concatenate([[s[0] - 1.0], (s[:-1] + s[1:]) / 2, [s[-1] + 1.0]])
    return float(max(candidates, key=lambda t: balanced_accuracy(scores, targets, t)))


def mixture_threshold(scores: np.ndarray, seed: int = 0) -> float:
    """Where a two-component Gaussian mixture's posteriors cross between its means: a threshold
    found without labels (0 when they do not cross there)."""
    gm = GaussianMixture(2, random_state=seed).fit(scores[:, None])
    lo, hi = np.sort(gm.means_.ravel())
    grid = np.linspace(lo, hi, 2001)
    upper = int(np.argmax(gm.means_.ravel()))
    p = gm.predict_proba(grid[:, None])[:, upper]
    crossing = np.flatnonzero(np.diff(np.sign(p - 0.5)))
    return float(grid[crossing[0]]) if crossing.size else 0.0


def measure(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """The three balanced accuracies, their thresholds and the ROC AUC of one test set."""
    best, found = best_threshold(scores, targets), mixture_threshold(scores)
    return {
        "clips": int(targets.size),
        "auc": float(roc_auc_score(targets, scores)),
        "at_model": balanced_accuracy(scores, targets, 0.0),
        "at_best": balanced_accuracy(scores, targets, best),
        "best_threshold": best,
        "at_mixture": balanced_accuracy(scores, targets, found),
        "mixture_threshold": found,
    }


def test_sets(report: dict[str, Any], recipe: str) -> list[dict[str, Any]]:
    """Every test set of ``recipe``'s runs: each run's corpora, with its scores and measures."""
    out = []
    for run in report["runs"]:
        if run["recipe"] != recipe or "oof" not in run:
            continue
        for corpus, oof in run["oof"].items():
            scores = clip_scores(oof["logits"], run.get("temperature", 1.0))
            targets = np.asarray(oof["targets"], dtype=int)
            out.append(
                {
                    "kind": run["kind"],
                    "train": run["train"],
                    "test": corpus,
                    "seed": run["seed"],
                    "fold": run["fold"],
                    **measure(scores, targets),
                    "scores": scores.round(4).tolist(),
                    "targets": targets.tolist(),
                }
            )
    return out


def table(sets: list[dict[str, Any]]) -> str:
    """Per kind and train → test, the means over runs (min over runs of the gain at the
    mixture's threshold, which can be a loss)."""
    groups: dict[tuple, list[dict]] = {}
    for s in sets:
        groups.setdefault((s["kind"], s["train"], s["test"]), []).append(s)
    lines = [
        f"{'train → test':34s} {'runs':>4} {'ROC AUC':>8} {'at 0':>7} {'best':>7} "
        f"{'mixture':>8} {'min gain':>9}"
    ]
    for (_, train, test), rows in sorted(groups.items(), key=lambda g: g[0][0] != LOCO):
        mean = {k: float(np.mean([r[k] for r in rows])) for k in ("auc", "at_model", "at_best")}
        mixture = float(np.mean([r["at_mixture"] for r in rows]))
        gain = min(r["at_mixture"] - r["at_model"] for r in rows)
        lines.append(
            f"{f'{train} → {test}':34s} {len(rows):>4} {mean['auc']:>8.4f} "
            f"{mean['at_model']:>7.4f} {mean['at_best']:>7.4f} {mixture:>8.4f} {gain:>+9.4f}"
        )
    return "\n".join(lines)


def plot(sets: list[dict[str, Any]], path: Path) -> None:
    """The leave-one-corpus-out runs' clip scores, women and men, with the three thresholds."""
    loco = [s for s in sets if s["kind"] == LOCO]
    plt = pyplot()
    fig, axes = plt.subplots(1, max(len(loco), 1), figsize=(4 * max(len(loco), 1), 3.4))
    for ax, s in zip(np.atleast_1d(axes), loco):
        scores, targets = np.asarray(s["scores"]), np.asarray(s["targets"])
        bins = np.linspace(scores.min(), scores.max(), 40)
        ax.hist(scores[targets == 0], bins=bins, alpha=0.6, label="women", color="C3")
        ax.hist(scores[targets == 1], bins=bins, alpha=0.6, label="men", color="C0")
        for t, style, name in (
            (0.0, "-", f"model {s['at_model']:.3f}"),
            (s["best_threshold"], ":", f"best {s['at_best']:.3f}"),
            (s["mixture_threshold"], "--", f"mixture {s['at_mixture']:.3f}"),
        ):
            ax.axvline(t, color="k", linestyle=style, lw=1, label=name)
        ax.set(
            title=f"{s['train']} → {s['test']}, seed {s['seed']}",
            xlabel="log-odds male : female",
        )
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="a scripts/cross_corpus.py results.json")
    p.add_argument("--recipe", default="default", help="whose runs (default: default)")
    p.add_argument("--out", type=Path, default=Path("results/cross_corpus/corpus_shift"))
    args = p.parse_args(argv)
    try:
        report = json.loads(args.results.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"corpus_shift: error: {args.results}: {e}") from None
    sets = test_sets(report, args.recipe)
    if not sets:
        raise SystemExit(f"corpus_shift: error: {args.results}: no runs of {args.recipe!r}")
    text = table(sets)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "table.txt", text + "\n")
    atomic_write_json(args.out / "results.json", {"source": str(args.results), "sets": sets})
    plot(sets, args.out / "scores.png")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
