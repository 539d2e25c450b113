"""Would pooling a recording's windows by their mean logit, not their mean probability, answer
better? Measured on saved out-of-fold logits; nothing is trained, so it runs in seconds.

    python scripts/pooling_rules.py RESULTS.json [...] [--threshold 0.7]
        [--out results/cross_corpus/pooling]

Each RESULTS.json is a ``scripts/cross_corpus.py`` report whose runs kept their test clips'
window logits (T = 1). Two rules pool a clip's windows into one answer:

- ``mean_prob``: each window's softmax, averaged (what ``vgd predict`` and ``evaluate`` do);
- ``mean_logit``: the windows' logits averaged, then one softmax (a geometric mean of the
  windows' probabilities: windows that agree add up, one unsure window weighs less).

For pooled cross-validation runs, each rule gets one temperature fitted on all of the report's
pooled out-of-fold clips, as ``scripts/release_model.py`` fits the shipped model's. A
leave-one-corpus-out run keeps the temperature it fitted on its own validation speakers: the
corpus it never saw must not calibrate it. Per kind of run, test corpus and rule: balanced
accuracy (forced choice), the share answered "unknown" under the threshold, accuracy on the
answered clips, the share answered wrongly, the area under the risk–coverage curve (lower:
confidence ranks the errors last) and the expected calibration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from vgd.calibration import (
    TEMPERATURES,
    expected_calibration_error,
    fit_temperature,
    pooled_probs,
    smoothed_nll,
)
from vgd.inference import softmax
from vgd.io import atomic_write_json, atomic_write_text

RULES = ("mean_prob", "mean_logit")
POOLED = "pooled"


def mean_logit_probs(logits: list[np.ndarray], temperature: float) -> np.ndarray:
    """(n_clips, n_classes): the softmax at ``temperature`` of each clip's mean window logit."""
    means = np.stack([np.asarray(z, dtype=np.float64).mean(axis=0) for z in logits])
    return softmax(means / temperature)


def pool(rule: str, logits: list[np.ndarray], temperature: float) -> np.ndarray:
    """Clip probabilities of ``logits`` under ``rule``."""
    if rule == "mean_prob":
        return pooled_probs(logits, temperature)
    return mean_logit_probs(logits, temperature)


def fit(rule: str, logits: list[np.ndarray], targets: np.ndarray) -> float:
    """The temperature on vgd's grid with the lowest smoothed NLL under ``rule``."""
    if rule == "mean_prob":
        return fit_temperature(logits, targets)
    losses = [smoothed_nll(mean_logit_probs(logits, t), targets) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def aurc(probs: np.ndarray, targets: np.ndarray) -> float:
    """Area under the risk–coverage curve: the error rate among the most confident k clips,
    averaged over k."""
    wrong = (probs.argmax(axis=1) != targets)[np.argsort(-probs.max(axis=1), kind="stable")]
    return float(np.mean(np.cumsum(wrong) / np.arange(1, len(wrong) + 1)))


def scores(probs: np.ndarray, targets: np.ndarray, threshold: float) -> dict[str, float]:
    """One run's scores of one test corpus under one rule."""
    pred = probs.argmax(axis=1)
    right = pred == targets
    answered = probs.max(axis=1) >= threshold
    return {
        "balanced_accuracy": float(balanced_accuracy_score(targets, pred)),
        "unknown": float(1 - answered.mean()),
        "accuracy_answered": float(right[answered].mean()) if answered.any() else float("nan"),
        "wrong_answered": float((answered & ~right).mean()),
        "aurc": aurc(probs, targets),
        "ece": expected_calibration_error(probs, targets),
    }


def runs_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's runs with saved logits, a recipe that merely repeats another left out."""
    same = report.get("same_as") or {}
    return [r for r in report.get("runs", []) if "oof" in r and r["recipe"] not in same]


def temperatures(runs: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """Per (recipe, rule): one temperature fitted on all pooled out-of-fold clips."""
    out = {}
    for recipe in sorted({r["recipe"] for r in runs if r["kind"] == POOLED}):
        logits, targets = [], []
        for r in runs:
            if r["kind"] == POOLED and r["recipe"] == recipe:
                for o in r["oof"].values():
                    logits += [np.asarray(z) for z in o["logits"]]
                    targets += o["targets"]
        for rule in RULES:
            out[recipe, rule] = fit(rule, logits, np.asarray(targets, dtype=int))
    return out


Curves = dict[tuple[str, str, str], list[np.ndarray]]


def measure(report: dict[str, Any], threshold: float, curves: Curves) -> list[dict[str, Any]]:
    """Per run, test corpus and rule: the run's identity, its temperature and its scores.
    Each clip's (confidence, right) is added to ``curves`` by (kind, test corpus, rule)."""
    runs = runs_of(report)
    fitted = temperatures(runs)
    rows = []
    for r in runs:
        for corpus, o in r["oof"].items():
            logits = [np.asarray(z) for z in o["logits"]]
            targets = np.asarray(o["targets"], dtype=int)
            for rule in RULES:
                t = fitted[r["recipe"], rule] if r["kind"] == POOLED else r["temperature"]
                probs = pool(rule, logits, t)
                right = probs.argmax(axis=1) == targets
                curves.setdefault((r["kind"], corpus, rule), []).append(
                    np.stack([probs.max(axis=1), right], axis=1)
                )
                rows.append(
                    {
                        **{k: r[k] for k in ("recipe", "kind", "train", "seed", "fold")},
                        "test": corpus,
                        "rule": rule,
                        "temperature": t,
                        **scores(probs, targets, threshold),
                    }
                )
    return rows


SCORE_KEYS = ("balanced_accuracy", "unknown", "accuracy_answered", "wrong_answered", "aurc", "ece")


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (kind, test corpus, rule): the mean of each score over runs, and for mean_logit its
    paired wins and losses in forced-choice balanced accuracy against mean_prob."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["kind"], row["test"], row["rule"]), []).append(row)
    out = []
    for (kind, test, rule), group in sorted(groups.items()):
        line = {"kind": kind, "test": test, "rule": rule, "runs": len(group)}
        line.update({k: float(np.nanmean([g[k] for g in group])) for k in SCORE_KEYS})
        if rule == "mean_logit":
            base = groups[kind, test, "mean_prob"]
            diffs = [g["balanced_accuracy"] - b["balanced_accuracy"] for g, b in zip(group, base)]
            line["wins"] = sum(d > 1e-12 for d in diffs)
            line["losses"] = sum(d < -1e-12 for d in diffs)
        out.append(line)
    return out


def table(lines: list[dict[str, Any]], threshold: float) -> str:
    """The summary as aligned text."""
    head = (
        f"{'kind':6} {'test':15} {'rule':10} {'runs':>4} {'bal acc':>8} {'unknown':>8} "
        f"{'acc ans':>8} {'wrong':>7} {'AURC':>7} {'ECE':>7} {'wins':>5} {'losses':>6}"
    )
    out = [f"threshold {threshold}; 'wrong': the share of clips answered wrongly", head]
    for x in lines:
        paired = f"{x['wins']:>5} {x['losses']:>6}" if "wins" in x else ""
        out.append(
            f"{x['kind']:6} {x['test']:15} {x['rule']:10} {x['runs']:>4} "
            f"{x['balanced_accuracy']:>8.4f} {x['unknown']:>8.3f} {x['accuracy_answered']:>8.4f} "
            f"{x['wrong_answered']:>7.3f} {x['aurc']:>7.4f} {x['ece']:>7.4f} {paired}".rstrip()
        )
    return "\n".join(out) + "\n"


def plot(curves: Curves, threshold: float, path: Path) -> None:
    """Risk–coverage curves: accuracy on the answered clips against the share answered
    "unknown", as the threshold rises from 0.5; one panel per kind of run and test corpus."""
    from vgd.plots import pyplot, save_figure

    panels = sorted({(kind, test) for kind, test, _ in curves})
    fig, axes = pyplot().subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (kind, test) in zip(axes[0], panels):
        for rule, colour in zip(RULES, ("tab:blue", "tab:orange")):
            conf, right = np.concatenate(curves[kind, test, rule]).T
            grid = np.linspace(0.5, 0.99, 50)
            unknown = [(conf < g).mean() for g in grid]
            acc = [right[conf >= g].mean() if (conf >= g).any() else np.nan for g in grid]
            ax.plot(unknown, acc, color=colour, label=rule)
            at = conf >= threshold
            ax.plot((~at).mean(), right[at].mean(), "o", color=colour)
        ax.set(title=f"{kind} → {test}", xlabel='share answered "unknown"')
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy on the answered clips")
    axes[0][0].legend(title=f"dot: threshold {threshold}", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, nargs="+", help="cross_corpus.py results.json files")
    p.add_argument("--threshold", type=float, default=0.7, help="vgd predict's min confidence")
    p.add_argument("--out", type=Path, help="write table.txt, rows.json and curves.png here")
    args = p.parse_args(argv)
    rows, curves = [], {}
    for path in args.results:
        try:
            report = json.loads(path.read_text())
            found = measure(report, args.threshold, curves)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"pooling_rules: error: {path}: {e}", file=sys.stderr)
            return 2
        if not found:
            print(f"pooling_rules: error: {path}: no run kept its logits", file=sys.stderr)
            return 2
        rows += [{"report": str(path), **row} for row in found]
    text = table(summary(rows), args.threshold)
    print(text, end="")
    if args.out:
        atomic_write_text(args.out / "table.txt", text)
        atomic_write_json(args.out / "rows.json", {"threshold": args.threshold, "rows": rows})
        plot(curves, args.threshold, args.out / "curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
