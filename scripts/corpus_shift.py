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

With ``--manifest`` (the comparison's pooled manifest, to find each test clip's speaker) and
``--labelled K ...``, also what ``vgd adapt`` gains: for each test set, ``--draws`` times, K
speakers of each gender are drawn as a user's labelled clips, the bias is fitted on their
window logits (:func:`vgd.adapt.fit_bias`) and the test set's other speakers are scored with it
and without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

from vgd.adapt import fit_bias
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


def test_speakers(report: dict[str, Any], manifests: list[Path]) -> dict[tuple, list[str]]:
    """(kind, seed, fold, corpus) → the speaker of each of that run's test clips, in the order
    the runs saved them: the comparison's splits drawn again from its manifest."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import cross_corpus

    args = cross_corpus.parse_args(
        [*(f"--manifest={m}" for m in manifests), "--folds", str(report["folds"]), "--seeds"]
        + [str(s) for s in report["seeds"]]
    )
    out = {}
    for meta, fold in cross_corpus.splits(cross_corpus.load_pool(args), args):
        test = [c for c in fold if c.split == "test"]
        for corpus in {c.corpus for c in test}:
            key = (meta["kind"], meta["seed"], meta["fold"], corpus)
            out[key] = [c.speaker for c in test if c.corpus == corpus]
    return out


def labelled_gain(
    run: dict[str, Any], corpus: str, speakers: list[str], k: int, draws: int, seed: int = 0
) -> dict[str, float]:
    """Balanced accuracy on a test set's other speakers with the bias fitted on ``k`` labelled
    speakers of each gender, and without it: means and 10th percentile over ``draws``."""
    oof = run["oof"][corpus]
    logits = [np.asarray(z) for z in oof["logits"]]
    targets, who = np.asarray(oof["targets"]), np.asarray(speakers)
    temperature = run.get("temperature", 1.0)
    unbiased = clip_scores(logits, temperature)  # each clip's alone: subsets index it
    rng = np.random.default_rng(seed)
    fitted, plain = [], []
    for _ in range(draws):
        chosen = [rng.choice(np.unique(who[targets == g]), k, replace=False) for g in (0, 1)]
        known = np.isin(who, np.concatenate(chosen))
        bias = fit_bias([z for z, m in zip(logits, known) if m], targets[known], temperature)
        rest = [z + [0.0, bias * temperature] for z, m in zip(logits, known) if not m]
        fitted.append(balanced_accuracy(clip_scores(rest, temperature), targets[~known], 0.0))
        plain.append(balanced_accuracy(unbiased[~known], targets[~known], 0.0))
    return {
        "k": k,
        "at_model": float(np.mean(plain)),
        "fitted": float(np.mean(fitted)),
        "fitted_p10": float(np.percentile(fitted, 10)),
    }


def labelled_table(report: dict, recipe: str, speakers: dict, ks: list[int], draws: int) -> dict:
    """Per kind and train → test, each K's mean gain over the runs (and its worst run)."""
    rows: dict[tuple, list[dict]] = {}
    for run in report["runs"]:
        if run["recipe"] != recipe or "oof" not in run:
            continue
        for corpus in run["oof"]:
            who = speakers[(run["kind"], run["seed"], run["fold"], corpus)]
            fewest = min(len(set(np.asarray(who)[np.asarray(run["oof"][corpus]["targets"]) == g]))
                         for g in (0, 1))  # fmt: skip
            for k in ks:
                if k < fewest:  # at least one speaker of each gender left to score
                    gain = labelled_gain(run, corpus, who, k, draws)
                    rows.setdefault((run["kind"], run["train"], corpus, k), []).append(gain)
    return rows


def format_labelled(rows: dict[tuple, list[dict]]) -> str:
    """The gains as printed: per train → test and K, fitted against the model's threshold."""
    lines = [
        f"{'train → test':34s} {'K':>3} {'runs':>4} {'at 0':>7} {'fitted':>7} {'p10':>7} "
        f"{'gain':>8} {'worst':>8}"
    ]
    for (_, train, test, k), gains in sorted(rows.items(), key=lambda r: (r[0][0] != LOCO, r[0])):
        at0, fit, p10 = (_mean(gains, key) for key in ("at_model", "fitted", "fitted_p10"))
        worst = min(g["fitted"] - g["at_model"] for g in gains)
        lines.append(
            f"{f'{train} → {test}':34s} {k:>3} {len(gains):>4} {at0:>7.4f} {fit:>7.4f} "
            f"{p10:>7.4f} {fit - at0:>+8.4f} {worst:>+8.4f}"
        )
    return "\n".join(lines)


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
        auc, at0, best, mixture = (
            _mean(rows, key) for key in ("auc", "at_model", "at_best", "at_mixture")
        )
        gain = min(r["at_mixture"] - r["at_model"] for r in rows)
        lines.append(
            f"{f'{train} → {test}':34s} {len(rows):>4} {auc:>8.4f} "
            f"{at0:>7.4f} {best:>7.4f} {mixture:>8.4f} {gain:>+9.4f}"
        )
    return "\n".join(lines)


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    """``key``'s mean over the runs' rows."""
    return float(np.mean([r[key] for r in rows]))


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
    p.add_argument(
        "--manifest", type=Path, nargs="+", default=[], help="the comparison's manifest(s)"
    )
    p.add_argument(
        "--labelled", type=int, nargs="+", default=[], metavar="K",
        help="speakers of each gender a user labels (needs --manifest)",
    )  # fmt: skip
    p.add_argument("--draws", type=int, default=200, help="draws of the labelled speakers")
    args = p.parse_args(argv)
    if args.labelled and not args.manifest:
        p.error("--labelled needs --manifest")
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
    written: dict[str, Any] = {"source": str(args.results), "sets": sets}
    if args.labelled:
        speakers = test_speakers(report, args.manifest)
        rows = labelled_table(report, args.recipe, speakers, args.labelled, args.draws)
        more = format_labelled(rows)
        print(f"\nthe bias fitted on K labelled speakers of each gender ({args.draws} draws)")
        print(more)
        atomic_write_text(args.out / "labelled.txt", more + "\n")
        written["labelled"] = [
            {"kind": kind, "train": train, "test": test, "k": k, "runs": gains}
            for (kind, train, test, k), gains in rows.items()
        ]
    atomic_write_json(args.out / "results.json", written)
    plot(sets, args.out / "scores.png")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
