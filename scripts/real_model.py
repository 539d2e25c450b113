"""Build vgd's built-in real-voice model from LibriSpeech, and measure it on fresh folds.

    python scripts/real_model.py [--root ../shared/data/LibriSpeech]
        [--recipe vgd/pretrained/recipe.yaml] [--seeds 1 2] [--folds 5] [--compare]
        [--device cpu] [--conditions telephone reverb mulaw mp3 noise] [--extra-train MANIFEST]
        [--train-fractions 0.25 0.5 0.75] [--refit] [--out results/real_model]

1. Cross-validates the recipe (the configuration the search chose) over ``seeds × folds``
   speaker-disjoint outer folds (test = fold k, val = fold k+1, train = the rest). The fold seeds
   are not the search's (seed 0), so these folds are fresh data for the comparison.
2. With ``--compare``, trains the baseline (vgd's default configuration, or ``--baseline``) on
   the same folds and prints the paired table (per fold: baseline, recipe, difference) with the
   mean difference and its spread. A recipe equal to the baseline has nothing to compare.
   With ``--conditions``, each fold's test clips are also heard through fixed degradations
   (``vgd.conditions.degrade``: telephone, room, μ-law, MP3, noise at 10 dB SNR) and scored
   (``balanced_accuracy@<condition>``), paired as well: what recording-condition augmentation
   is for, which clean folds cannot show.
   With ``--extra-train MANIFEST`` (the built-in corpus, say), those clips join every fold's
   training speakers, never its validation or test speakers.
   With ``--train-fractions 0.25 0.5``, the recipe is also trained on a seeded share of each
   fold's training speakers per label (nested: the quarter is inside the half), same validation
   and test speakers: a learning curve, which says whether more readers would help.
   With ``--refit``, each fold's model is trained again on its training and validation speakers
   together for the epochs its validation chose, at its fitted temperature, and that model is
   scored: the final model's procedure, so the folds estimate the model that ships.

It measures only: the built-in model is built from LibriSpeech and speechocean762 by the DVC
pipeline vgd/pretrained/dvc.yaml (scripts/release_model.py writes it).

LibriSpeech (c) 2014 Vassil Panayotov, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vgd.checkpoint import LoadedModel
from vgd.conditions import TEST_CONDITIONS, degrade
from vgd.config import RunConfig, TrainConfig, load_config, to_dict
from vgd.corpora import build
from vgd.crossval import fold_summary, test_fold_clips, without_validation
from vgd.dataset import make_reader
from vgd.evaluate import compute_metrics, evaluate, score_clips
from vgd.inference import Reader
from vgd.io import atomic_write_json
from vgd.manifest import Clip, ManifestError, read_manifest
from vgd.pretrained import MODEL_DIR
from vgd.progress import format_duration
from vgd.splits import speaker_folds, speaker_key, speakers_by_label
from vgd.train import Trainer, TrainResult

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = PROJECT.parent / "shared/data/LibriSpeech"
SCORES = ("balanced_accuracy", "accuracy", "ece", "ece_uncalibrated")
CONDITION = "balanced_accuracy@"  # + a test condition's name


def run_fold(
    config: TrainConfig,
    run: RunConfig,
    clips: list[Clip],
    conditions: Sequence[str] = (),
    refit: bool = False,
) -> dict[str, Any]:
    """Train on the fold's train/val speakers, score its test speakers (calibrated and not, and
    through each test condition)."""
    trainer = Trainer(config, run, clips, progress=False)
    result = trainer.fit()
    trained_on = ("train", "val") if refit else ("train",)
    if refit:
        result = refit_fold(config, run, trainer.clips, result)
    test = [c for c in trainer.clips if c.split == "test"]
    loaded = LoadedModel(result.model, result.config.spec, result.config)
    m = evaluate(loaded, test, cache_dir=run.cache_dir).metrics
    temperature, result.model.temperature = result.model.temperature, 1.0
    uncalibrated = evaluate(loaded, test, cache_dir=run.cache_dir).metrics
    result.model.temperature = temperature
    reader = make_reader(config.audio, run.cache_dir)
    row = {key: m[key] for key in ("balanced_accuracy", "accuracy", "ece")}
    row["ece_uncalibrated"] = uncalibrated["ece"]
    row.update({f"recall_{label}": v["recall"] for label, v in m["per_class"].items()})
    row.update(condition_scores(loaded, test, reader, conditions))
    row.update(
        temperature=temperature,
        best_epoch=result.best_epoch,
        epochs=len(result.history),
        train_seconds=result.seconds,
        train_speakers=len({speaker_key(c) for c in clips if c.split in trained_on}),
        n_test=len(test),
    )
    return row


def refit_fold(
    config: TrainConfig, run: RunConfig, clips: list[Clip], result: TrainResult
) -> TrainResult:
    """The fold's recipe again on its training and validation speakers together, for the epochs
    its validation chose, at its fitted temperature: what ``train_final`` does with every
    speaker, so the fold scores the procedure that ships. The test speakers stay out."""
    refit = without_validation(config, result.best_epoch)
    pooled = [c.with_split("train") if c.split == "val" else c for c in clips]
    again = Trainer(refit, run, pooled, progress=False).fit()
    again.model.temperature = result.model.temperature
    again.best_epoch, again.seconds = result.best_epoch, result.seconds + again.seconds
    return again


def thin_training(clips: Sequence[Clip], fraction: float, seed: int) -> list[Clip]:
    """The fold with a seeded share of each label's training speakers, for a learning curve.

    Nested: for one seed the speakers a smaller share keeps are among those a larger one keeps.
    Validation and test speakers are untouched, so the shares are scored on the same readers.
    """
    if fraction >= 1.0:
        return list(clips)
    keep = set()
    for label, speakers in speakers_by_label([c for c in clips if c.split == "train"]).items():
        order = list(speakers)
        random.Random(f"thin:{seed}:{label}").shuffle(order)
        keep.update(order[: max(1, round(fraction * len(order)))])
    return [c for c in clips if c.split != "train" or speaker_key(c) in keep]


def condition_scores(
    loaded: LoadedModel, test: list[Clip], reader: Reader, conditions: Sequence[str]
) -> dict[str, float]:
    """Balanced accuracy on the test clips heard through each fixed test condition."""
    rate, out = loaded.spec.audio.sample_rate, {}
    for name in conditions:

        def degraded(path: str, name: str = name) -> np.ndarray:
            return degrade(reader(path), name, rate, zlib.crc32(Path(path).name.encode()))

        probs, targets = score_clips(loaded.model, loaded.spec, test, reader=degraded)
        out[f"{CONDITION}{name}"] = compute_metrics(targets, probs, loaded.labels)[
            "balanced_accuracy"
        ]
    return out


def cross_validate_outer(
    configs: dict[str, TrainConfig],
    run: RunConfig,
    clips: list[Clip],
    extra: list[Clip],
    args,
    report: dict,
) -> None:
    """Every (seed, fold) for every config, fold-major so that a cut-short run stays paired;
    the ``extra`` clips join every fold's training speakers; a config named ``name@F`` trains on
    the share F of them."""
    runs = report["runs"] = {name: [] for name in configs}
    t0, total, done = time.perf_counter(), len(args.seeds) * args.folds * len(configs), 0
    for seed in args.seeds:
        folds = speaker_folds(clips, args.folds, seed)
        for k in range(args.folds):
            fold = test_fold_clips(clips, folds, k, seed) + extra
            for name, config in configs.items():
                mine = thin_training(fold, _share(name), seed * 1000 + k)
                row = {
                    "seed": seed,
                    "fold": k,
                    **run_fold(config, run, mine, args.conditions, args.refit),
                }
                runs[name].append(row)
                done += 1
                eta = (time.perf_counter() - t0) / done * (total - done)
                print(
                    f"[{name}] seed {seed} fold {k + 1}/{args.folds}: {fold_text(row)} | "
                    f"{done}/{total} ETA {format_duration(eta)}",
                    flush=True,
                )
                report["summary"][name] = summarize(runs[name])
                atomic_write_json(args.out / "results.json", report)


def fold_text(row: dict[str, Any]) -> str:
    recalls = "  ".join(f"{k[7:]} {v:.4f}" for k, v in row.items() if k.startswith("recall_"))
    heard = "".join(
        f"  {k[len(CONDITION) :]} {v:.4f}" for k, v in row.items() if k.startswith(CONDITION)
    )
    return (
        f"balanced accuracy {row['balanced_accuracy']:.4f}  recall {recalls}  "
        f"ECE {row['ece_uncalibrated']:.4f} → {row['ece']:.4f}{heard}  "
        f"({row['epochs']} epochs, {row['train_seconds']:.0f} s)"
    )


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, sample std, min and max over folds of every score."""
    keys = [k for k in rows[0] if k in SCORES or k.startswith(("recall_", CONDITION))]
    return fold_summary(rows, keys)


def paired(
    baseline: list[dict], recipe: list[dict], key: str = "balanced_accuracy"
) -> dict[str, Any]:
    """Recipe minus baseline ``key``, fold by fold, and what it adds up to."""
    diffs = [r[key] - d[key] for d, r in zip(baseline, recipe)]
    return {
        "folds": [
            {
                "seed": d["seed"],
                "fold": d["fold"],
                "baseline": d[key],
                "recipe": r[key],
                "difference": x,
            }
            for d, r, x in zip(baseline, recipe, diffs)
        ],
        "mean_difference": statistics.fmean(diffs),
        "std_difference": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
        "recipe_better": sum(x > 0 for x in diffs),
        "equal": sum(x == 0 for x in diffs),
        "baseline_better": sum(x < 0 for x in diffs),
    }


def paired_lines(p: dict[str, Any]) -> list[str]:
    lines = [f"{'seed':>4} {'fold':>4} {'baseline':>8} {'recipe':>8} {'diff':>8}"]
    for f in p["folds"]:
        lines.append(
            f"{f['seed']:>4} {f['fold'] + 1:>4} {f['baseline']:>8.4f} {f['recipe']:>8.4f} "
            f"{f['difference']:>+8.4f}"
        )
    lines.append(
        f"mean difference {p['mean_difference']:+.4f} ± {p['std_difference']:.4f} (sample std over "
        f"{len(p['folds'])} folds); recipe better on {p['recipe_better']}, equal on {p['equal']}, "
        f"baseline better on {p['baseline_better']}"
    )
    return lines


def condition_line(name: str, p: dict[str, Any]) -> str:
    """One test condition's paired result in a line."""
    mean = {k: statistics.fmean(f[k] for f in p["folds"]) for k in ("baseline", "recipe")}
    return (
        f"{name}: baseline {mean['baseline']:.4f}, recipe {mean['recipe']:.4f}, difference "
        f"{p['mean_difference']:+.4f} ± {p['std_difference']:.4f}; recipe better on "
        f"{p['recipe_better']}, equal on {p['equal']}, baseline better on {p['baseline_better']}"
    )


def summary_line(name: str, s: dict[str, dict[str, float]]) -> str:
    def fmt(key: str) -> str:
        return f"{s[key]['mean']:.4f} ± {s[key]['std']:.4f} (min {s[key]['min']:.4f})"

    recalls = "  ".join(f"{k[7:]} {fmt(k)}" for k in s if k.startswith("recall_"))
    return (
        f"{name}: balanced accuracy {fmt('balanced_accuracy')}; recall {recalls}; "
        f"ECE {s['ece_uncalibrated']['mean']:.4f} → {s['ece']['mean']:.4f} calibrated"
    )


def plot(report: dict[str, Any], path: Path) -> Path:
    """Balanced accuracy per fold, baseline against recipe, paired by fold."""
    from vgd.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    for name, rows in report["runs"].items():
        values = [r["balanced_accuracy"] for r in rows]
        ax.plot(
            range(1, len(values) + 1), values, "o-", label=f"{name} (mean {np.mean(values):.4f})"
        )
    ax.set_xlabel("fold (seed-major)")
    ax.set_ylabel("test balanced accuracy")
    return _finish(fig, ax, report, path)


def _finish(fig, ax, report: dict[str, Any], path: Path) -> Path:
    """The folds' caption and the legend, then the figure saved to ``path``."""
    from vgd.plots import save_figure

    ax.set_title(
        f"{len(report['seeds'])} seeds × {report['folds']} folds, LibriSpeech (CC BY 4.0)",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="LibriSpeech folder")
    p.add_argument("--recipe", default=str(MODEL_DIR / "recipe.yaml"), help="training config YAML")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="fold seeds (search: 0)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--compare", action="store_true", help="also the baseline config, paired")
    p.add_argument("--baseline", help="baseline config YAML for --compare (default: vgd's)")
    p.add_argument(
        "--conditions",
        nargs="*",
        default=[],
        choices=TEST_CONDITIONS,
        help="also score each fold's test clips through these fixed degradations",
    )
    p.add_argument(
        "--extra-train",
        type=Path,
        help="a manifest whose clips join every fold's training speakers",
    )
    p.add_argument(
        "--train-fractions",
        type=float,
        nargs="+",
        default=[],
        help="also the recipe on these shares of each fold's training speakers",
    )
    p.add_argument(
        "--refit",
        action="store_true",
        help="score each fold's model retrained on its train+val speakers, as the final model is",
    )
    p.add_argument("--out", type=Path, default=Path("results/real_model"))
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--cache-dir", default="cache/audio", help="decoded-audio cache ('': none)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", force=True)
    if not args.root.is_dir():
        print(
            f"real_model: error: {args.root}: no such folder (LibriSpeech layout)", file=sys.stderr
        )
        return 2
    start = time.perf_counter()
    recipe = load_config(args.recipe)
    clips = build("librispeech", args.root, validate="header", progress=False).clips
    print(f"{len(clips)} clips, {len({speaker_key(c) for c in clips})} speakers", flush=True)
    results = args.out / "results.json"
    if any(not 0.0 < f < 1.0 for f in args.train_fractions):
        print("real_model: error: --train-fractions must lie in (0, 1)", file=sys.stderr)
        return 2
    try:
        extra = (
            [c.with_split("train") for c in read_manifest(args.extra_train)]
            if args.extra_train
            else []
        )
    except ManifestError as e:
        print(f"real_model: error: {e}", file=sys.stderr)
        return 2
    report = measure(args, recipe, clips, extra)
    report["seconds"] = time.perf_counter() - start
    atomic_write_json(results, report)
    print(f"took {format_duration(report['seconds'])}; wrote {results}")
    return 0


def measure(
    args: argparse.Namespace, recipe: TrainConfig, clips: list[Clip], extra: list[Clip]
) -> dict[str, Any]:
    """The outer CV of the recipe (and the default, paired), printed and saved."""
    run = RunConfig(str(args.root), args.device, threads=args.threads, cache_dir=args.cache_dir)
    baseline = load_config(args.baseline) if args.baseline else TrainConfig()
    compare = args.compare and baseline != recipe
    if args.compare and not compare:
        print("the recipe is the baseline configuration: nothing to compare", flush=True)
    configs = {"recipe": recipe, **({"baseline": baseline} if compare else {})}
    configs.update({f"recipe@{f:g}": recipe for f in sorted(args.train_fractions)})
    report: dict[str, Any] = {
        "root": str(args.root),
        "seeds": args.seeds,
        "folds": args.folds,
        "device": args.device,
        "configs": {name: to_dict(c) for name, c in configs.items()},
        "extra_train": {"manifest": str(args.extra_train), "clips": len(extra)} if extra else None,
        "refit": args.refit,
        "summary": {},
    }
    cross_validate_outer(configs, run, clips, extra, args, report)
    for name, s in report["summary"].items():
        print(summary_line(name, s))
    report["baseline"] = args.baseline or "vgd defaults"
    if compare:
        report["paired"] = paired(report["runs"]["baseline"], report["runs"]["recipe"])
        print("\n".join(paired_lines(report["paired"])))
        report["paired_conditions"] = {
            name: paired(report["runs"]["baseline"], report["runs"]["recipe"], CONDITION + name)
            for name in args.conditions
        }
        for name, p in report["paired_conditions"].items():
            print(condition_line(name, p))
        plot(report, args.out / "comparison.png")
    if args.train_fractions:
        report["learning_curve"] = learning_curve(report["runs"])
        print("\n".join(learning_curve_lines(report["learning_curve"])))
        plot_learning_curve(report, args.out / "learning_curve.png")
    return report


def learning_curve(runs: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """Per share of the training speakers: how many, the folds' balanced accuracy, and its
    paired difference from the recipe on all of them (same validation and test readers)."""
    full = runs["recipe"]
    points = []
    for name in sorted((n for n in runs if n.startswith("recipe")), key=_share):
        rows = runs[name]
        scores = [r["balanced_accuracy"] for r in rows]
        points.append(
            {
                "run": name,
                "share": _share(name),
                "train_speakers": statistics.fmean(r["train_speakers"] for r in rows),
                "balanced_accuracy": statistics.fmean(scores),
                "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                "min": min(scores),
                "vs_all": paired(rows, full[: len(rows)])["mean_difference"],
            }
        )
    return points


def _share(name: str) -> float:
    return float(name.partition("@")[2] or 1.0)


def learning_curve_lines(points: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'share':>5} {'speakers':>8} {'bal acc':>8} {'std':>7} {'min':>7} {'to all':>8}"]
    for p in points:
        lines.append(
            f"{p['share']:>5.2f} {p['train_speakers']:>8.1f} {p['balanced_accuracy']:>8.4f} "
            f"{p['std']:>7.4f} {p['min']:>7.4f} {p['vs_all']:>+8.4f}"
        )
    return lines


def plot_learning_curve(report: dict[str, Any], path: Path) -> Path:
    """Test balanced accuracy against training speakers: each fold's line and the mean."""
    from vgd.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    names = [p["run"] for p in report["learning_curve"]]
    rows = [report["runs"][n] for n in names]
    for fold in zip(*rows):
        ax.plot(
            [r["train_speakers"] for r in fold],
            [r["balanced_accuracy"] for r in fold],
            color="0.8",
            lw=0.8,
        )
    x = [p["train_speakers"] for p in report["learning_curve"]]
    y = [p["balanced_accuracy"] for p in report["learning_curve"]]
    ax.plot(x, y, "o-", color="C0", lw=2, label="mean over folds")
    ax.set_xlabel("training speakers per fold")
    ax.set_ylabel("test balanced accuracy")
    return _finish(fig, ax, report, path)


if __name__ == "__main__":
    sys.exit(main())
