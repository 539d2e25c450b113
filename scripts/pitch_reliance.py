"""How much a model trained on one corpus decides by pitch alone, on the corpus it never heard.

    python scripts/pitch_reliance.py results/release/compare/results.json \
        --manifest results/release/pooled.csv [--recipe default] [--out pitch.json]

For each leave-one-corpus-out run of a scripts/cross_corpus.py report, it reads the run's saved
window logits (T = 1, pooled per clip as ``vgd evaluate`` pools them), fits the one F0 threshold
(the clips' median F0, YIN) that best reproduces the model's own answers, and prints how often
the model agrees with it, beside the F0 of the clips it got wrong. The pitch-only baseline, its
threshold fitted on one corpus and scored on the other, is printed for comparison: a model that
agrees with a threshold on nearly every clip fails across corpora where their pitches differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vgd.calibration import pooled_probs
from vgd.config import AudioConfig
from vgd.evaluate import compute_metrics
from vgd.io import atomic_write_json
from vgd.manifest import read_manifest
from vgd.pitch import FEMALE, MALE, clip_f0s, fit_threshold

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_corpus import LOCO  # noqa: E402


def recalls(female_pred: np.ndarray, female: np.ndarray) -> dict[str, float]:
    """Balanced accuracy and per-gender recall of female-or-not answers, by vgd's own metrics."""
    labels = (FEMALE, MALE)
    answers = np.eye(2)[np.where(female_pred, 0, 1)]
    m = compute_metrics(np.where(female, 0, 1), answers, labels)
    return {
        "balanced_accuracy": m["balanced_accuracy"],
        "recall_female": m["per_class"][FEMALE]["recall"],
        "recall_male": m["per_class"][MALE]["recall"],
    }


def pitch_baseline(f0: np.ndarray, female: np.ndarray, corpus: np.ndarray) -> list[dict]:
    """The F0 threshold fitted on each corpus, scored on every other one."""
    out = []
    for train in sorted(set(corpus)):
        fit = (corpus == train) & np.isfinite(f0)
        labels = np.where(female[fit], FEMALE, MALE)
        threshold = fit_threshold(f0[fit], labels).threshold_hz
        for test in sorted(set(corpus) - {train}):
            m = (corpus == test) & np.isfinite(f0)
            scores = recalls(f0[m] > threshold, female[m])
            out.append({"train": train, "test": test, "threshold_hz": threshold, **scores})
    return out


def reliance(run: dict[str, Any], f0: np.ndarray, female: np.ndarray, corpus: np.ndarray) -> dict:
    """One leave-one-corpus-out run's answers against the best F0 threshold and the clips' F0."""
    ((test, saved),) = run["oof"].items()
    mine = corpus == test
    f, truth = f0[mine], female[mine]
    targets = np.asarray(saved["targets"])
    if targets.shape != truth.shape or not np.array_equal(targets == 0, truth):
        raise ValueError(f"{test}: the run's saved clips are not the manifest's clips of {test}")
    said_female = pooled_probs([np.asarray(z) for z in saved["logits"]], 1.0)[:, 0] > 0.5
    voiced = np.isfinite(f)
    answers = np.where(said_female[voiced], FEMALE, MALE)
    threshold = agreement = None  # a model that gives one answer to all follows no threshold
    if len(set(answers)) == 2:
        threshold = fit_threshold(f[voiced], answers).threshold_hz
        agreement = float(np.mean((f[voiced] > threshold) == said_female[voiced]))
    wrong = said_female != truth

    def median_f0(m: np.ndarray) -> float | None:
        m = m & voiced
        return float(np.median(f[m])) if m.any() else None

    return {
        "train": run["train"],
        "test": test,
        "seed": run["seed"],
        **recalls(said_female, truth),
        "threshold_hz": threshold,
        "agreement": agreement,
        "wrong": {
            FEMALE: {"n": int((wrong & truth).sum()), "median_f0": median_f0(wrong & truth)},
            MALE: {"n": int((wrong & ~truth).sum()), "median_f0": median_f0(wrong & ~truth)},
        },
        "right_median_f0": {FEMALE: median_f0(~wrong & truth), MALE: median_f0(~wrong & ~truth)},
    }


def lines(report: dict[str, Any]) -> list[str]:
    """The two tables, as printed."""
    out = ["pitch-only baseline (median F0 > threshold = female), fitted on one corpus:"]
    for b in report["baseline"]:
        out.append(
            f"  {b['train'] + ' → ' + b['test']:<34} threshold {b['threshold_hz']:5.1f} Hz  "
            f"bal acc {b['balanced_accuracy']:.3f}  rec F {b['recall_female']:.3f}  "
            f"rec M {b['recall_male']:.3f}"
        )
    out.append("the model, trained on one corpus, on the other:")
    for r in report["runs"]:
        fw, mw = r["wrong"][FEMALE], r["wrong"][MALE]
        follows = (
            f"agrees with F0 > {r['threshold_hz']:.0f} Hz on {r['agreement']:.1%} of clips"
            if r["agreement"] is not None
            else "gives one answer to every clip"
        )
        out.append(
            f"  seed {r['seed']} {r['train'] + ' → ' + r['test']:<34} bal acc "
            f"{r['balanced_accuracy']:.3f}  {follows}; wrong: {fw['n']} women "
            f"(F0 {_hz(fw['median_f0'])}, right ones {_hz(r['right_median_f0'][FEMALE])}), "
            f"{mw['n']} men (F0 {_hz(mw['median_f0'])}, right ones "
            f"{_hz(r['right_median_f0'][MALE])})"
        )
    return out


def _hz(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} Hz"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="scripts/cross_corpus.py's results.json")
    p.add_argument("--manifest", type=Path, required=True, help="the pooled manifest it ran on")
    p.add_argument("--recipe", default="default")
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    try:
        clips = read_manifest(args.manifest)
        runs = [
            r
            for r in json.loads(args.results.read_text())["runs"]
            if r["recipe"] == args.recipe and r["kind"] == LOCO and "oof" in r
        ]
        if not runs:
            raise ValueError(f"{args.results}: no leave-one-corpus-out run of {args.recipe!r}")
        f0, _ = clip_f0s(clips, AudioConfig(), progress=True)
        female = np.array([c.label == FEMALE for c in clips])
        corpus = np.array([c.corpus for c in clips], dtype=object)
        report = {
            "baseline": pitch_baseline(f0, female, corpus),
            "runs": [reliance(r, f0, female, corpus) for r in runs],
        }
    except (OSError, ValueError, KeyError) as e:  # ManifestError is a ValueError
        print(f"pitch_reliance: error: {e}", file=sys.stderr)
        return 2
    print("\n".join(lines(report)))
    if args.out:
        atomic_write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
