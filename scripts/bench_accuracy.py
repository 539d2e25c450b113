"""Accuracy on real speech: K-fold speaker-disjoint cross-validation on LibriSpeech speakers.

    python scripts/bench_accuracy.py [--root ../shared/data/LibriSpeech] [--folds 5] [--seed 0]
        [--config YAML] [--set key=value ...] [--init scratch|pretrained|both]
        [--pretrained CHECKPOINT] [--out results/bench/accuracy]

For fold k the fold's speakers are the test set, fold k+1 (mod K) is the validation set that
early stopping watches, the rest is trained on (with K = 2 the other fold is split in half by
speaker instead). ``scratch`` trains from fresh weights; ``pretrained`` starts from a checkpoint
trained on the built-in synthetic corpus (``vgd train`` → runs/train/model.pt, or the pipeline's
results/pipeline/model.pt) and uses that checkpoint's audio, feature and model config.
Each fold's temperature is fitted on its validation speakers at train time; the test expected
calibration error is reported before (the same model at T = 1) and after temperature scaling.
Prints measured numbers per fold and their mean ± std (and min) per init; writes results.json
and accuracy.png to --out. LibriSpeech (c) 2014 Vassil Panayotov, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vgd.calibration import expected_calibration_error, pooled_probs, window_logits
from vgd.checkpoint import CheckpointError, LoadedModel, load_checkpoint
from vgd.config import ConfigError, RunConfig, TrainConfig, load_config, parse_override
from vgd.config import to_dict as config_dict
from vgd.corpora import build
from vgd.crossval import fold_summary
from vgd.crossval import test_fold_clips as fold_clips
from vgd.dataset import make_reader
from vgd.evaluate import EvalResult, evaluate
from vgd.io import atomic_write_json
from vgd.manifest import Clip, ManifestError
from vgd.progress import format_duration
from vgd.splits import speaker_folds, speaker_key
from vgd.train import Trainer

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = PROJECT.parent / "shared/data/LibriSpeech"
PRETRAINED_CANDIDATES = ("runs/train/model.pt", "results/pipeline/model.pt")
INITS = ("scratch", "pretrained")
TARGET = 0.97  # the target for mean balanced accuracy; a label, never a result
METRICS = ("balanced_accuracy", "accuracy", "speaker_accuracy")
CALIBRATION = ("ece_before", "ece_after")  # test ECE at T = 1 and at the fitted temperature

# ----------------------------------------------------------------------------- training


def pretrained_config(config: TrainConfig, loaded: LoadedModel) -> TrainConfig:
    """The fold config with the checkpoint's front end, network and label order."""
    data = dataclasses.replace(config.data, labels=tuple(loaded.labels))
    c = loaded.spec
    return dataclasses.replace(config, audio=c.audio, features=c.features, model=c.model, data=data)


def run_fold(
    config: TrainConfig,
    run: RunConfig,
    clips: list[Clip],
    init: LoadedModel | None,
    progress: bool,
) -> dict[str, Any]:
    """Train on the fold's train/val clips, score its test clips; one row of measured numbers."""
    init_state = None
    if init is not None:
        config, init_state = pretrained_config(config, init), init.model.state_dict()
    trainer = Trainer(config, run, clips, progress=progress, init_state=init_state)
    result = trainer.fit()
    test = [c for c in trainer.clips if c.split == "test"]
    loaded = LoadedModel(result.model, result.config.spec, result.config)
    res = evaluate(loaded, test, cache_dir=run.cache_dir)
    m = res.metrics
    row = {key: m[key] for key in METRICS}
    row.update({f"recall_{label}": v["recall"] for label, v in m["per_class"].items()})
    row.update(
        n_train=sum(c.split == "train" for c in trainer.clips),
        n_val=sum(c.split == "val" for c in trainer.clips),
        n_test=len(test),
        test_speakers=sorted({c.speaker for c in test}),
        train_seconds=result.seconds,
        epochs=len(result.history),
        best_epoch=result.best_epoch,
        unreadable=result.unreadable,
        errors=misclassified(res),
    )
    row.update(calibration_on_test(result.model, result.config, test, run.cache_dir))
    row.update({k: v for k, v in result.calibration.items() if k.startswith("val_ece")})
    return row


def calibration_on_test(model, config: TrainConfig, test: list[Clip], cache_dir: str) -> dict:
    """Test ECE of the model at T = 1 and at the temperature it was fitted on validation."""
    reader = make_reader(config.audio, cache_dir)
    logits, targets = window_logits(model, config.spec, test, reader)
    temperature = float(model.temperature)
    return {
        "temperature": temperature,
        "ece_before": expected_calibration_error(pooled_probs(logits, 1.0), targets),
        "ece_after": expected_calibration_error(pooled_probs(logits, temperature), targets),
    }


def misclassified(res: EvalResult) -> list[dict[str, Any]]:
    """The test clips the model got wrong, with the probability it gave their true label."""
    return [
        {"speaker": c.speaker, "actual": res.labels[t], "p_actual": round(float(p[t]), 4)}
        for c, t, p in res.scored()
        if int(p.argmax()) != t
    ]


# ----------------------------------------------------------------------------- reporting


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, sample std, min and max over folds of every score."""
    return fold_summary(
        rows, [k for k in rows[0] if k in METRICS + CALIBRATION or k.startswith("recall_")]
    )


def fold_line(init: str, k: int, n_folds: int, row: dict, done: int, total: int, t0: float) -> str:
    elapsed = time.perf_counter() - t0
    eta = elapsed / done * (total - done)
    recalls = "  ".join(f"{m[7:]} {v:.4f}" for m, v in row.items() if m.startswith("recall_"))
    return (
        f"[{init}] fold {k + 1}/{n_folds}: balanced accuracy {row['balanced_accuracy']:.4f}  "
        f"recall {recalls}  speaker acc {row['speaker_accuracy']:.4f}  test ECE "
        f"{row['ece_before']:.4f} → {row['ece_after']:.4f} (T={row['temperature']:.2f})  "
        f"({row['epochs']} epochs, best {row['best_epoch']}, {row['train_seconds']:.0f} s) | "
        f"run {done}/{total} elapsed {format_duration(elapsed)} ETA {format_duration(eta)}"
    )


def summary_lines(init: str, summary: dict[str, dict[str, float]], n_folds: int) -> list[str]:
    def fmt(key: str) -> str:
        s = summary[key]
        return f"{s['mean']:.4f} ± {s['std']:.4f} (min {s['min']:.4f})"

    recalls = [k for k in summary if k.startswith("recall_")]
    return [
        f"{init}: balanced accuracy {fmt('balanced_accuracy')} over {n_folds} folds "
        f"[target ≥ {TARGET}]",
        *[f"{' ' * len(init)}  recall {k[7:]:<8} {fmt(k)}" for k in recalls],
        f"{' ' * len(init)}  speaker accuracy {fmt('speaker_accuracy')}",
        f"{' ' * len(init)}  test ECE at T = 1      {fmt('ece_before')}",
        f"{' ' * len(init)}  test ECE, temperature  {fmt('ece_after')}",
    ]


def plot(report: dict[str, Any], path: Path) -> Path:
    """Per-fold balanced accuracy and per-gender recall, one bar per init."""
    from vgd.plots import pyplot, save_figure

    plt = pyplot()
    runs = {init: r["folds"] for init, r in report["inits"].items() if r["folds"]}
    keys = ["balanced_accuracy"] + [k for k in next(iter(runs.values()))[0] if "recall_" in k]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), sharey=True)
    width = 0.8 / len(runs)
    values = [r[k] for rows in runs.values() for r in rows for k in keys]
    for ax, key in zip(axes, keys):
        for i, (init, rows) in enumerate(runs.items()):
            x = np.arange(len(rows)) + (i - (len(runs) - 1) / 2) * width
            mean = np.mean([r[key] for r in rows])
            ax.bar(x, [r[key] for r in rows], width, label=f"{init} (mean {mean:.3f})")
        ax.axhline(TARGET, ls="--", color="grey", lw=1, label=f"target {TARGET}")
        ax.set_xticks(range(report["folds"]), [str(k + 1) for k in range(report["folds"])])
        ax.set_xlabel("fold")
        ax.set_title(key.replace("_", " "), fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylim(max(0.0, min(values) - 0.05), 1.005)
    fig.suptitle(
        f"{report['folds']}-fold speaker-disjoint CV, {report['n_speakers']} LibriSpeech "
        "speakers (CC BY 4.0)",
        fontsize=10,
    )
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- driver


def find_pretrained(path: str | None) -> Path:
    candidates = [Path(path)] if path else [PROJECT / p for p in PRETRAINED_CANDIDATES]
    for p in candidates:
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"no pretrained checkpoint at {', '.join(map(str, candidates))}; train one on the "
        "built-in corpus (vgd data synth && vgd train) or pass --pretrained, or use --init scratch"
    )


def run_cv(
    args: argparse.Namespace, config: TrainConfig, run: RunConfig, clips: list[Clip]
) -> dict[str, Any]:
    """Every init × fold; results.json is rewritten after each so a long run leaves partials."""
    inits = INITS if args.init == "both" else (args.init,)
    pretrained = (
        load_checkpoint(find_pretrained(args.pretrained)) if "pretrained" in inits else None
    )
    folds = speaker_folds(clips, args.folds, args.seed)
    report = {
        "root": str(args.root),
        "folds": args.folds,
        "fold_seed": args.seed,
        "n_clips": len(clips),
        "n_speakers": len({speaker_key(c) for c in clips}),
        "config": config_dict(config),
        "pretrained": pretrained.path if pretrained else None,
        "pretrained_config": config_dict(pretrained_config(config, pretrained))
        if pretrained
        else None,
        "target_balanced_accuracy": TARGET,
        "inits": {init: {"folds": [], "summary": {}} for init in inits},
    }
    out, t0, done, total = Path(args.out), time.perf_counter(), 0, len(inits) * args.folds
    for init in inits:
        rows = report["inits"][init]["folds"]
        for k in range(args.folds):
            fold = fold_clips(clips, folds, k, args.seed)
            init_model = pretrained if init == "pretrained" else None
            rows.append({"fold": k, **run_fold(config, run, fold, init_model, not args.quiet)})
            done += 1
            print(fold_line(init, k, args.folds, rows[-1], done, total, t0), flush=True)
            report["inits"][init]["summary"] = summarize(rows)
            atomic_write_json(out / "results.json", report)
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="LibriSpeech folder")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    p.add_argument("--config", help="YAML training config (defaults when omitted)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    p.add_argument("--init", choices=(*INITS, "both"), default="both")
    p.add_argument(
        "--pretrained", help=f"checkpoint (default: {' or '.join(PRETRAINED_CANDIDATES)})"
    )
    p.add_argument("--out", default="results/bench/accuracy")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda:N")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--cache-dir", default="", help="decoded-audio cache folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", force=True
    )
    if not args.root.is_dir():
        print(
            f"bench_accuracy: error: {args.root}: no such folder; expected LibriSpeech's layout "
            "(SPEAKERS.TXT, <subset>/<speaker>/<chapter>/*.flac), see ../shared/README.md",
            file=sys.stderr,
        )
        return 2
    try:
        overrides = dict(parse_override(x) for x in args.set or [])
        config = load_config(args.config, overrides)
        run = RunConfig(str(args.root), args.device, threads=args.threads, cache_dir=args.cache_dir)
        built = build("librispeech", args.root, validate="header", progress=not args.quiet)
        for line in built.failures:
            print(f"left out: {line}", file=sys.stderr)
        print(built.summary(), flush=True)
        report = run_cv(args, config, run, built.clips)
    except (ConfigError, ManifestError, CheckpointError, FileNotFoundError) as e:
        print(f"bench_accuracy: error: {e}", file=sys.stderr)
        return 2
    for init, r in report["inits"].items():
        print("\n".join(summary_lines(init, r["summary"], args.folds)))
    figure = plot(report, Path(args.out) / "accuracy.png")
    print(f"wrote {Path(args.out) / 'results.json'} and {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
