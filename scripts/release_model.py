"""The built-in model's last stage: choose the recipe, fit it on every speaker, calibrate, card.

    python scripts/release_model.py --manifest results/release/pooled.csv
        --compare results/release/compare/results.json [--model-dir vgd/pretrained]

``--compare`` is scripts/cross_corpus.py's report of the default recipe against the search's
pick on fresh pooled folds (paired) and leave-one-corpus-out. The pick ships when it beats the
default on the macro over corpora by more than the paired spread (the standard deviation of the
fold differences) and is no worse on any corpus; otherwise the default does. The chosen recipe
trains on every speaker of every corpus for as many epochs as each fold did when its folds keep
their last epoch (``optim.select: last``, as shipped), else for their median best epoch; its
temperature is fitted on all folds' out-of-fold test predictions together, which also give the
risk–coverage table. Writes model.pt, recipe.yaml, metrics.json and MODEL_CARD.md into
--model-dir; the same inputs on the same CPU write the same bytes (vgd/pretrained/dvc.yaml runs
it); --shipped records their sha256; ``--search-config`` (the search's best_config.yaml) lets
the card say which schedule the search ranked its trials on. ``--recipe NAME`` fits a recipe of
the report whatever the comparison says (the runner-up's final model, to test it further), into
another --model-dir. The written model.pt is then scored, as ``vgd evaluate`` scores it, on
seeded draws of the built-in synthetic voices (``--synthetic-draws``; none: not measured), which
no corpus here holds: the card reports what the model does on voices unlike any it learnt from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vgd.calibration import expected_calibration_error, fit_temperature, pooled_probs
from vgd.checkpoint import load_checkpoint, save_checkpoint
from vgd.config import ConfigError, RunConfig, TrainConfig, from_dict, load_config, save_config
from vgd.crossval import fold_summary, without_validation
from vgd.evaluate import EvalResult, evaluate
from vgd.io import atomic_write_json, atomic_write_text
from vgd.manifest import ManifestError, read_manifest
from vgd.modelcard import builtin_model_card
from vgd.predict import MIN_CONFIDENCE
from vgd.progress import format_duration
from vgd.provenance import file_hash
from vgd.splits import corpora_of, speaker_key
from vgd.synth import SynthConfig, generate_corpus
from vgd.train import Trainer

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)  # 0.5: forced choice, every clip answered
SCORES = ("balanced_accuracy", "recall_female", "recall_male")
CARD = "MODEL_CARD.md"
# results/bench/elsewhere's draws of 100 speakers × 4 clips, so the card pairs with its tables
SYNTH_DRAWS = (7, 19, 23, 29, 31)
SYNTH_SCORES = ("balanced_accuracy", "recall_female", "recall_male", "roc_auc", "unknown")


def choose(report: dict[str, Any]) -> tuple[str, str]:
    """(recipe name, why): the pick if it beats the default by more than the paired spread on
    the macro and loses on no corpus, else the default."""
    names = list(report["configs"])
    base, pick = names[0], names[-1]
    if report["configs"][pick] == report["configs"][base]:
        return base, "the search's pick is the default configuration"
    p = report["paired"][pick]
    macro = p["macro"]
    worse = [
        n
        for n, x in p.items()
        if n != "macro" and isinstance(x, dict) and "diff" in x and x["mean_diff"] < 0
    ]
    gain = f"{macro['mean_diff']:+.4f} ± {macro['spread']:.4f} over {len(p['folds'])} folds"
    if macro["mean_diff"] > macro["spread"] and not worse:
        return pick, f"{pick} beats {base} on the macro by {gain}, and on every corpus"
    lost = f"; worse on {', '.join(worse)}" if worse else ""
    return base, f"{pick} − {base} on the macro: {gain}, not more than the spread{lost}"


def out_of_fold(rows: list[dict[str, Any]]) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """Per corpus, every pooled fold's test-clip window logits (T = 1) and label indices."""
    out: dict[str, tuple[list, list]] = {}
    for row in rows:
        for name, o in row["oof"].items():
            logits, targets = out.setdefault(name, ([], []))
            logits += [np.asarray(z, dtype=np.float32) for z in o["logits"]]
            targets += o["targets"]
    return {n: (z, np.asarray(t, dtype=int)) for n, (z, t) in out.items()}


def calibrate(oof: dict[str, tuple[list[np.ndarray], np.ndarray]]) -> dict[str, Any]:
    """One temperature for all corpora's out-of-fold predictions, with ECE before and after."""
    logits = [z for zs, _ in oof.values() for z in zs]
    targets = np.concatenate([t for _, t in oof.values()])
    t = fit_temperature(logits, targets)
    return {
        "temperature": t,
        "clips": len(targets),
        "ece_before": expected_calibration_error(pooled_probs(logits, 1.0), targets),
        "ece_after": expected_calibration_error(pooled_probs(logits, t), targets),
    }


def risk_coverage(logits: list[np.ndarray], targets: np.ndarray, temperature: float) -> list[dict]:
    """At each of the card's thresholds: the share of clips answered "unknown", and the accuracy
    and balanced accuracy on the clips that are answered."""
    return coverage(pooled_probs(logits, temperature), targets, THRESHOLDS)


def coverage(probs: np.ndarray, targets: np.ndarray, thresholds: Iterable[float]) -> list[dict]:
    """Per confidence threshold, clips pooled already: the share answered "unknown", and the
    accuracy and balanced accuracy (over the classes it answers) on the answered clips."""
    confident, right = probs.max(axis=1), probs.argmax(axis=1) == targets
    rows = []
    for threshold in thresholds:
        answered = confident >= threshold
        answered_of = [answered & (targets == k) for k in np.unique(targets)]
        recalls = [right[a].mean() for a in answered_of if a.any()]  # classes it answers
        rows.append(
            {
                "threshold": float(threshold),
                "unknown": float((~answered).mean()),
                "accuracy": float(right[answered].mean()) if answered.any() else float("nan"),
                "balanced_accuracy": float(np.mean(recalls)) if recalls else float("nan"),
            }
        )
    return rows


def cv_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per corpus (balanced accuracy, per-gender recall) and the macro, over the pooled folds."""
    per_corpus = {}
    for name in rows[0]["per_corpus"]:
        flat = [
            {
                "balanced_accuracy": r["per_corpus"][name]["balanced_accuracy"],
                **{f"recall_{k}": v for k, v in r["per_corpus"][name]["recall"].items()},
            }
            for r in rows
        ]
        per_corpus[name] = fold_summary(flat, SCORES)
    macro = fold_summary(rows, ["macro_balanced_accuracy"])["macro_balanced_accuracy"]
    return {"per_corpus": per_corpus, "macro_balanced_accuracy": macro}


def cross_corpus(table: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Leave-one-corpus-out lines of recipe ``name`` from cross_corpus.py's table (the mean
    over fold seeds per direction)."""
    return [
        {
            "train": x["train"],
            "test": x["test"],
            "runs": x["runs"],
            "balanced_accuracy": x["mean"],
            **{f"recall_{k}": v for k, v in x["recall"].items()},
            "unknown": x["unknown"],
        }
        for x in table
        if x["recipe"] == name and x["train"] != "pooled"
    ]


def corpora(clips) -> dict[str, Any]:
    """Clips and speakers per gender of each corpus."""
    return {
        name: {
            "clips": sum(c.corpus == name for c in clips),
            "speakers": {
                label: len({speaker_key(c) for c in clips if c.corpus == name and c.label == label})
                for label in sorted({c.label for c in clips})
            },
        }
        for name in corpora_of(clips)
    }


def measured(report: dict[str, Any], name: str) -> dict[str, Any]:
    """Everything the card reports about recipe ``name``, from the comparison's runs."""
    pooled = [r for r in report["runs"] if r["recipe"] == name and r["kind"] == "pooled"]
    if not pooled:
        raise SystemExit(f"release_model: error: no pooled runs of {name!r} in the comparison")
    oof = out_of_fold(pooled)
    calibration = calibrate(oof)
    t = calibration["temperature"]
    return {
        "cv": cv_summary(pooled),
        "cv_folds": len(pooled),
        "cv_seeds": len({r["seed"] for r in pooled}),
        "cv_k": len({r["fold"] for r in pooled}),
        "cv_device": report.get("device", "cpu"),
        "cross_corpus": cross_corpus(report["table"], name),
        "default_threshold": MIN_CONFIDENCE,
        "risk_coverage": {n: risk_coverage(z, y, t) for n, (z, y) in oof.items()},
        "epochs": int(statistics.median(r["best_epoch"] for r in pooled)),
        "temperature": t,
        "calibration": calibration,
    }


def paired_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The comparison's per-corpus paired means, without the per-fold lists."""
    out = {}
    for other, p in report.get("paired", {}).items():
        out[other] = {
            "base": p["base"],
            "folds": len(p["folds"]),
            **{
                n: {k: x[k] for k in ("mean_diff", "spread", "wins", "losses")}
                | {p["base"]: statistics.fmean(x[p["base"]]), other: statistics.fmean(x[other])}
                for n, x in p.items()
                if isinstance(x, dict) and "diff" in x
            },
        }
    return out


def synthetic_voices(model_path: Path, draws: Sequence[SynthConfig]) -> dict[str, Any]:
    """The written model on seeded draws of the built-in synthetic voices, every clip scored as
    ``vgd evaluate`` scores it: what it does on voices no corpus here holds."""
    loaded = load_checkpoint(model_path)
    scores = []
    with tempfile.TemporaryDirectory(prefix="vgd-synth-") as tmp:
        for config in draws:
            clips = generate_corpus(Path(tmp) / f"seed{config.seed}", config, progress=False)
            scores.append({"seed": config.seed, **_draw_scores(evaluate(loaded, clips))})
            print(f"synthetic voices, seed {config.seed}: {_draw_line(scores[-1])}", flush=True)
    return {
        "speakers": draws[0].speakers,
        "utterances": draws[0].utterances,
        "threshold": MIN_CONFIDENCE,
        "draws": scores,
        "summary": fold_summary(scores, SYNTH_SCORES),  # every draw holds both genders
    }


def _draw_scores(result: EvalResult) -> dict[str, Any]:
    m, scored = result.metrics, result.scored()
    probs, targets = np.array([p for *_, p in scored]), np.array([t for _, t, _ in scored])
    answered = coverage(probs, targets, (MIN_CONFIDENCE,))[0]
    return {
        "clips": m["n_clips"],
        "unreadable": m["n_unreadable"],
        "balanced_accuracy": m["balanced_accuracy"],
        **{f"recall_{k}": v["recall"] for k, v in m["per_class"].items()},
        "roc_auc": m["roc_auc"],
        "unknown": answered["unknown"],
    }


def _draw_line(d: dict[str, Any]) -> str:
    return (
        f"{d['clips']} clips, balanced accuracy {d['balanced_accuracy']:.4f} (recall female "
        f"{d['recall_female']:.4f}, male {d['recall_male']:.4f}), unknown {d['unknown']:.3f}"
    )


def _schedule(config: TrainConfig) -> dict[str, int]:
    return {"epochs": config.optim.epochs, "crops_per_clip": config.data.crops_per_clip}


def fit_final(
    config: TrainConfig,
    clips,
    epochs: int,
    temperature: float,
    threads: int,
    memory_format: str = "contiguous",
):
    """The recipe on every clip for ``epochs``, at ``temperature``."""
    final = without_validation(config, epochs)
    run = RunConfig("", "cpu", threads=threads, memory_format=memory_format)
    result = Trainer(final, run, [c.with_split("train") for c in clips], progress=False).fit()
    result.model.temperature = temperature
    took = f"{result.seconds:.0f} s"
    print(f"final model: {epochs} epochs on every speaker ({memory_format}) in {took}", flush=True)
    return final, result.model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, required=True, help="the pooled manifest")
    p.add_argument("--compare", type=Path, required=True, help="cross_corpus.py's results.json")
    p.add_argument("--model-dir", type=Path, default=Path("vgd/pretrained"))
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (bytes depend on it)")
    p.add_argument(
        "--shipped",
        type=Path,
        default=Path("results/release/shipped.json"),
        help="where the sha256 of the written files go",
    )
    p.add_argument("--recipe", help="fit this recipe of the report instead of choosing one")
    p.add_argument(
        "--search-config",
        type=Path,
        help="the search's best_config.yaml: the card says which schedule the search ranked on",
    )
    p.add_argument(
        "--synthetic-draws",
        type=int,
        nargs="*",
        default=list(SYNTH_DRAWS),
        metavar="SEED",
        help="seeds of the synthetic-voice draws the written model is scored on (none: skip)",
    )
    p.add_argument("--synthetic-speakers", type=int, default=100, help="speakers per draw")
    p.add_argument("--synthetic-utterances", type=int, default=4, help="clips per speaker")
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        draws = [  # validated here, not after the final fit
            SynthConfig(
                args.synthetic_speakers, args.synthetic_utterances, seed, workers=args.threads
            )
            for seed in args.synthetic_draws
        ]
        clips = read_manifest(args.manifest)
        report = json.loads(args.compare.read_text())
        searched = load_config(args.search_config) if args.search_config else None
    except (ManifestError, ConfigError, OSError, ValueError) as e:
        print(f"release_model: error: {e}", file=sys.stderr)
        return 2
    if args.recipe and args.recipe not in report["configs"]:
        names = ", ".join(report["configs"])
        print(
            f"release_model: error: {args.compare}: no recipe {args.recipe!r} ({names})",
            file=sys.stderr,
        )
        return 2
    name, why = (args.recipe, "fitted with --recipe") if args.recipe else choose(report)
    print(f"recipe: {name} ({why})", flush=True)
    config = from_dict(TrainConfig, report["configs"][name])
    metrics = measured(report, name)
    twins = report.get("same_as", {})  # a pick equal to the default: no table of zeros
    paired = {k: v for k, v in paired_summary(report).items() if k not in twins}
    schedule = _schedule(config)
    if searched:
        schedule["search"] = _schedule(searched)
    metrics["recipe"] = {"chosen": name, "why": why, "paired": paired, "schedule": schedule}
    metrics["corpora"] = corpora(clips)
    # Fresh objects as from JSON: pickle shares repeated objects, so the checkpoint's bytes
    # must not depend on where the values came from.
    metrics = json.loads(json.dumps(metrics))
    layout = report.get("memory_format", "contiguous")  # trained as the comparison measured
    final, model = fit_final(
        config, clips, metrics["epochs"], metrics["temperature"], args.threads, layout
    )
    path = save_checkpoint(args.model_dir / "model.pt", model, final, metrics)
    if draws:
        synth = synthetic_voices(path, draws)
        metrics["elsewhere"] = json.loads(json.dumps({"synthetic": synth}))
        path = save_checkpoint(path, model, final, metrics)  # the same weights, measured
    save_config(config, args.model_dir / "recipe.yaml")
    atomic_write_json(args.model_dir / "metrics.json", metrics)
    atomic_write_text(args.model_dir / CARD, builtin_model_card(final, metrics))
    shipped = {
        f.name: file_hash(f, hashlib.sha256())
        for f in [path, *(args.model_dir / n for n in ("recipe.yaml", "metrics.json", CARD))]
    }
    atomic_write_json(args.shipped, shipped)
    took = format_duration(time.perf_counter() - start)
    print(f"wrote {path} (sha256 {shipped[path.name]}) and its card in {took}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
