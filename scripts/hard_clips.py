"""Which clips does every recipe answer wrongly? Read from saved out-of-fold logits, so it trains
nothing: the errors no measured change moves are a floor under each corpus's balanced accuracy.

    python scripts/hard_clips.py RESULTS.json [...] --manifest results/release/pooled.csv
        [--kind pooled] [--min-share 0.5] [--out results/cross_corpus/hard_clips]

Each RESULTS.json is a ``scripts/cross_corpus.py`` report whose runs kept their test clips'
window logits. Its folds are drawn again from the manifest (the same function, seed and fold
count), so every saved logit is matched to its clip; a run whose saved labels differ from the
manifest's is an error, not a guess. A recipe the report marks ``same_as`` another is skipped:
its runs are copies. Per clip: how many runs tested it and how many answered it wrongly (forced
choice, each run's own temperature, windows pooled as ``vgd predict`` pools them), beside its
median F0 (YIN) and its F0's percentile among its corpus's voices of each gender. Printed: the
clips answered wrongly in at least ``--min-share`` of their runs, and per corpus the balanced
accuracy a model would score if exactly those clips stayed wrong. Writes ``clips.json`` and a
plot of every clip's F0 against its share of wrong answers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from vgd.calibration import pooled_probs
from vgd.config import LABELS, AudioConfig
from vgd.crossval import test_fold_clips
from vgd.io import atomic_write_json
from vgd.manifest import Clip, read_manifest
from vgd.pitch import clip_f0s
from vgd.splits import speaker_folds

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_corpus import LOCO, POOLED, clips_digest  # noqa: E402


def tested_clips(clips: list[Clip], report: dict[str, Any], run: dict[str, Any]) -> dict:
    """Per test corpus, the run's test clips in the order it saved their logits."""
    if run["kind"] == POOLED:
        folds = speaker_folds(clips, report["folds"], run["seed"])
        split = test_fold_clips(clips, folds, run["fold"], run["seed"])
        test = [c for c in split if c.split == "test"]
    else:  # a left-out corpus is tested whole, in manifest order
        test = clips
    return {name: [c for c in test if c.corpus == name] for name in run["oof"]}


def wrong_answers(run: dict[str, Any], saved: dict[str, Any], clips: list[Clip]) -> np.ndarray:
    """Whether the run answered each of ``clips`` wrongly (forced choice)."""
    targets = np.asarray(saved["targets"])
    truth = np.array([LABELS.index(c.label) for c in clips])
    if not np.array_equal(targets, truth):
        raise ValueError(
            f"{run['kind']} seed {run['seed']} fold {run['fold']}: its saved clips are not the "
            "manifest's (another manifest, fold count or fold function)"
        )
    probs = pooled_probs([np.asarray(z) for z in saved["logits"]], run.get("temperature", 1.0))
    return probs.argmax(axis=1) != truth


def tally(paths: list[Path], clips: list[Clip], kind: str) -> tuple[dict, int]:
    """Per clip path, [runs that tested it, runs that answered it wrongly]; and the run count."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    digest, n_runs = clips_digest(clips), 0
    for path in paths:
        report = json.loads(path.read_text())
        if report.get("clips_sha1", digest) != digest:
            raise ValueError(f"{path}: ran on other clips than the manifest's")
        copies = set(report.get("same_as", {}))
        for run in report["runs"]:
            if run["kind"] != kind or "oof" not in run or run["recipe"] in copies:
                continue
            n_runs += 1
            for name, test in tested_clips(clips, report, run).items():
                try:
                    wrong_ones = wrong_answers(run, run["oof"][name], test)
                except ValueError as e:
                    raise ValueError(f"{path}: {e}") from None
                for clip, wrong in zip(test, wrong_ones):
                    counts[clip.path][0] += 1
                    counts[clip.path][1] += int(wrong)
    return counts, n_runs


def percentile(value: float, sample: np.ndarray) -> float | None:
    """Share of ``sample`` below ``value`` (None when either is unknown)."""
    sample = sample[np.isfinite(sample)]
    if not np.isfinite(value) or not len(sample):
        return None
    return float(np.mean(sample < value))


def clip_rows(tested: list[Clip], counts: dict, f0: np.ndarray) -> list[dict[str, Any]]:
    """One row per tested clip: who, how often wrong, its F0 among its corpus's tested voices."""
    corpus = np.array([c.corpus for c in tested], dtype=object)
    label = np.array([c.label for c in tested], dtype=object)
    rows = []
    for i, c in enumerate(tested):
        runs, wrong = counts[c.path]
        same = corpus == c.corpus
        rows.append(
            {
                "path": c.path,
                "corpus": c.corpus,
                "speaker": c.speaker,
                "label": c.label,
                "runs": runs,
                "wrong": wrong,
                "share_wrong": wrong / runs,
                "f0_hz": None if not np.isfinite(f0[i]) else float(f0[i]),
                "f0_pct": {g: percentile(f0[i], f0[same & (label == g)]) for g in LABELS},
            }
        )
    return rows


def floors(rows: list[dict[str, Any]], min_share: float) -> list[dict[str, Any]]:
    """Per corpus: balanced accuracy if exactly the clips wrong in ``min_share`` of runs stay
    wrong, beside the mean share of runs that answered each gender's clips wrongly."""
    out = []
    for name in sorted({r["corpus"] for r in rows}):
        line: dict[str, Any] = {"corpus": name}
        recalls, mean_recalls = [], []
        for g in LABELS:
            mine = [r for r in rows if r["corpus"] == name and r["label"] == g]
            if not mine:  # a corpus of one gender: balanced accuracy over the labels it has
                continue
            hard = sum(r["share_wrong"] >= min_share for r in mine)
            recalls.append(1 - hard / len(mine))
            mean_recalls.append(1 - float(np.mean([r["share_wrong"] for r in mine])))
            line[g] = {"clips": len(mine), "hard": hard}
        line["floor_balanced_accuracy"] = float(np.mean(recalls))
        line["mean_balanced_accuracy"] = float(np.mean(mean_recalls))
        out.append(line)
    return out


def lines(rows: list[dict[str, Any]], report: dict[str, Any]) -> list[str]:
    """The hard clips and the per-corpus floors, as printed."""
    share = report["min_share"]
    out = [
        f"{report['runs']} {report['kind']} runs from {len(report['reports'])} reports; "
        f"clips answered wrongly in >= {share:.0%} of the runs that tested them:",
        f"{'corpus':16s} {'speaker':>10s} {'clip':>18s} {'label':6s} {'wrong/runs':>10s} "
        f"{'F0 Hz':>6s} {'F0 pct among F':>14s} {'among M':>8s}",
    ]
    hard = sorted(
        (r for r in rows if r["share_wrong"] >= share),
        key=lambda r: (r["corpus"], r["label"], -r["share_wrong"]),
    )
    for r in hard:
        pct = {g: "-" if p is None else f"{p:.0%}" for g, p in r["f0_pct"].items()}
        f0 = "-" if r["f0_hz"] is None else f"{r['f0_hz']:.0f}"
        out.append(
            f"{r['corpus']:16s} {r['speaker']:>10s} {Path(r['path']).stem:>18s} {r['label']:6s} "
            f"{r['wrong']:>4d}/{r['runs']:<5d} {f0:>6s} {pct['female']:>14s} {pct['male']:>8s}"
        )
    out.append("per corpus: hard clips, and balanced accuracy if exactly they stay wrong")
    for f in report["floors"]:
        counts = "  ".join(f"{g} {f[g]['hard']}/{f[g]['clips']}" for g in LABELS if g in f)
        out.append(
            f"  {f['corpus']:16s} {counts}  floor {f['floor_balanced_accuracy']:.4f}  "
            f"(mean over runs {f['mean_balanced_accuracy']:.4f})"
        )
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Each clip's F0 against the share of runs that answered it wrongly, per corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = sorted({r["corpus"] for r in rows})
    fig, axes = plt.subplots(1, len(corpora), figsize=(5 * len(corpora), 3.6), squeeze=False)
    for ax, name in zip(axes[0], corpora):
        for g, colour in zip(LABELS, ("tab:red", "tab:blue")):
            mine = [r for r in rows if r["corpus"] == name and r["label"] == g and r["f0_hz"]]
            ax.scatter(
                [r["f0_hz"] for r in mine],
                [r["share_wrong"] for r in mine],
                s=12,
                alpha=0.6,
                c=colour,
                label=g,
            )
        ax.set_title(name)
        ax.set_xlabel("median F0 of the clip (Hz)")
        ax.set_ylabel("share of runs answering it wrongly")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, nargs="+", help="scripts/cross_corpus.py reports")
    p.add_argument("--manifest", type=Path, required=True, help="the pooled manifest they ran on")
    p.add_argument("--kind", choices=(POOLED, LOCO), default=POOLED)
    p.add_argument("--min-share", type=float, default=0.5, help="a clip this often wrong is hard")
    p.add_argument("--out", type=Path, help="write clips.json and clips.png here")
    args = p.parse_args(argv)
    try:
        clips = read_manifest(args.manifest)
        counts, n_runs = tally(args.results, clips, args.kind)
        if not n_runs:
            raise ValueError(f"no {args.kind} run with saved logits in {args.results}")
        tested = [c for c in clips if c.path in counts]
        f0, _ = clip_f0s(tested, AudioConfig(), progress=True)
        rows = clip_rows(tested, counts, f0)
    except (OSError, ValueError, KeyError) as e:  # ManifestError is a ValueError
        print(f"hard_clips: error: {e}", file=sys.stderr)
        return 2
    report = {
        "reports": [str(p) for p in args.results],
        "kind": args.kind,
        "runs": n_runs,
        "min_share": args.min_share,
        "floors": floors(rows, args.min_share),
    }
    print("\n".join(lines(rows, report)))
    if args.out:
        atomic_write_json(args.out / "clips.json", {**report, "clips": rows})
        print(f"wrote {args.out / 'clips.json'} and {plot(rows, args.out / 'clips.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
