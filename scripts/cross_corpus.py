"""Cross-corpus evaluation: leave one corpus out each way, and pooled CV over all, in one table.

    python scripts/cross_corpus.py --manifest A.csv --manifest B.csv [--librispeech ROOT]
        [--recipe NAME=YAML ...] [--balance speaker] [--seeds 1] [--folds 5]
        [--no-loco] [--no-pooled] [--fold-limit N] [--write-manifest pooled.csv]
        [--out results/cross_corpus]
    python scripts/cross_corpus.py --merge A/results.json B/results.json --out C

1. Leave one corpus out (LOCO): for each corpus, the recipe trains on every other corpus (a
   seeded 20% of its speakers per corpus × gender validate and pick the epoch) and is scored on
   all of the left-out corpus's clips, once per fold seed.
2. Pooled CV: ``seeds × folds`` outer folds over all corpora together, speaker-disjoint and
   stratified by corpus × gender (test = fold k, val = fold k+1, train = the rest); each fold's
   test clips are scored per corpus, and the macro over corpora.

Training samples speakers evenly (``--balance speaker``: a speaker of 20 clips weighs as much as
one of a single clip) with the genders even within each corpus. Each run's per-epoch validation
curve is kept, so the results also show how fast each recipe learns (``curves.png``). A clip's
answer is ``unknown`` when its calibrated top probability is under ``vgd predict``'s threshold.
Results go to ``--out``: results.json (after every run, so a cut-short run keeps what it did),
table.txt, cross_corpus.png and curves.png. LibriSpeech (c) 2014 Vassil Panayotov, CC BY 4.0;
speechocean762 (Zhang et al., Interspeech 2021), free for commercial and non-commercial use.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import multiprocessing
import os
import signal
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

import vgd
from search.space import load_space
from vgd.calibration import window_logits
from vgd.checkpoint import LoadedModel
from vgd.config import (
    MEMORY_FORMATS,
    RunConfig,
    TrainConfig,
    apply_overrides,
    load_config,
    parse_override,
    to_dict,
)
from vgd.corpora import build
from vgd.crossval import leave_corpus_out, test_fold_clips
from vgd.dataset import make_reader
from vgd.evaluate import evaluate
from vgd.io import atomic_write_json, atomic_write_text
from vgd.manifest import Clip, ManifestError, read_manifests, write_manifest
from vgd.predict import MIN_CONFIDENCE
from vgd.progress import format_duration
from vgd.provenance import machine, machine_name
from vgd.splits import corpora_of, speaker_folds, speaker_key
from vgd.train import Trainer

PROJECT = Path(__file__).resolve().parents[1]
POOLED = "pooled"
LOCO = "loco"  # a run's kind: leave one corpus out
CURVE_KEYS = ("val_macro_balanced_accuracy", "val_balanced_accuracy", "val_loss")


def run_split(
    config: TrainConfig, run: RunConfig, clips: list[Clip], score_epochs: tuple[int, ...] = ()
) -> dict[str, Any]:
    """Train on the split's train/val speakers; score its test clips per corpus (and, for
    ``score_epochs``, with those epochs' weights too)."""
    if run.threads:
        torch.set_num_threads(run.threads)  # a --jobs worker's share of the cores
    session = Trainer(config, run, clips, progress=False).start()
    weights = {}
    while not session.done:
        epoch = session.step()["epoch"]
        if epoch in score_epochs:
            judged = session.judged.state_dict()  # the weight average, when the recipe keeps one
            weights[epoch] = {k: v.detach().clone() for k, v in judged.items()}
    result = session.finish()
    test = [c for c in clips if c.split == "test"]
    weights[result.best_epoch] = {k: v.clone() for k, v in result.model.state_dict().items()}
    at_epoch = epoch_scores(result, weights, test) if score_epochs else {}
    scored = evaluate(LoadedModel(result.model, result.config.spec, result.config), test)
    m = scored.metrics
    ok = scored.targets >= 0
    unsure = scored.probs[ok].max(axis=1) < MIN_CONFIDENCE
    corpora = np.array([c.corpus for c, k in zip(test, ok) if k], dtype=object)
    for name, per in m["per_corpus"].items():
        per["unknown"] = float(unsure[corpora == name].mean())
    trained = [c for c in clips if c.split == "train"]
    return {
        "per_corpus": m["per_corpus"],
        "macro_balanced_accuracy": m["macro_balanced_accuracy"],
        "train_speakers": {
            name: len({speaker_key(c) for c in trained if c.corpus == name})
            for name in corpora_of(trained)
        },
        "best_epoch": result.best_epoch,
        "epochs": len(result.history),
        "train_seconds": result.seconds,
        "machine": machine(),
        "temperature": result.model.temperature,
        "curve": [{k: h[k] for k in ("epoch", *CURVE_KEYS) if k in h} for h in result.history],
        "oof": out_of_fold(
            result.model, result.config, test, make_reader(config.audio, run.cache_dir)
        ),
        **({"at_epoch": at_epoch} if at_epoch else {}),
    }


def epoch_scores(result, weights: dict[int, dict], test: list[Clip]) -> dict[str, dict]:
    """Each epoch's weights scored on the test clips at T = 1 (the validation's pick among
    them): per-corpus balanced accuracy and the macro, to compare ways of choosing the epoch."""
    model = copy.deepcopy(result.model)
    model.temperature = 1.0
    out = {}
    for epoch, state in sorted(weights.items()):
        model.load_state_dict(state)
        m = evaluate(LoadedModel(model, result.config.spec, result.config), test).metrics
        out[str(epoch)] = {
            "macro": m["macro_balanced_accuracy"],
            **{name: per["balanced_accuracy"] for name, per in m["per_corpus"].items()},
        }
    return out


def out_of_fold(model, config: TrainConfig, test: list[Clip], reader) -> dict[str, dict]:
    """Per test corpus, each clip's window logits at T = 1 (4 decimals) and its label index:
    what a temperature and a risk–coverage table over all folds are computed from."""
    out = {}
    for name in corpora_of(test):
        logits, targets = window_logits(
            model, config.spec, [c for c in test if c.corpus == name], reader
        )
        out[name] = {
            "logits": [np.round(z, 4).tolist() for z in logits],
            "targets": targets.tolist(),
        }
    return out


def splits(clips: list[Clip], args: argparse.Namespace) -> Iterator[tuple[dict, list[Clip]]]:
    """(what the run is, its clips with splits) for every LOCO and pooled run, seed-major."""
    for seed in args.seeds:
        if not args.no_loco:
            for corpus in corpora_of(clips):
                fold = leave_corpus_out(clips, corpus, args.val_fraction, seed)
                others = "+".join(c for c in corpora_of(clips) if c != corpus)
                yield {"kind": LOCO, "train": others, "seed": seed, "fold": 0}, fold
        if not args.no_pooled:
            folds = speaker_folds(clips, args.folds, seed)
            for k in range(args.folds)[: args.fold_limit or None]:
                meta = {"kind": POOLED, "train": POOLED, "seed": seed, "fold": k}
                yield meta, test_fold_clips(clips, folds, k, seed)


def measure(
    recipes: dict[str, TrainConfig], run: RunConfig, clips: list[Clip], args, report: dict
) -> None:
    """Every run of every recipe, fold-major so that a cut-short run stays paired; ``--jobs``
    runs at once, each in its own process with its share of the threads."""
    rows = report["runs"]
    same = same_as(recipes)
    report["same_as"] = same
    for name, twin in same.items():
        print(f"{name}: the same configuration as {twin}; its runs are {twin}'s", flush=True)
    all_runs = [
        (meta, fold, name, config)
        for meta, fold in splits(clips, args)
        for name, config in recipes.items()
    ]
    order = {_key(meta, name): i for i, (meta, _, name, _) in enumerate(all_runs)}
    done_before = {_key(r, r["recipe"]): r for r in earlier_runs(args, report, set(order))}
    done_before |= {  # a twin of a resumed run, when the first command named only one of them
        _key(r, name): {**r, "recipe": name}
        for r in list(done_before.values())
        for name, twin in same.items()
        if twin == r["recipe"] and _key(r, name) not in done_before
    }
    rows.extend(sorted(done_before.values(), key=lambda r: order[_key(r, r["recipe"])]))
    if done_before:
        print(
            f"resuming: {len(done_before)} runs already in {args.out / 'results.json'}", flush=True
        )
        for line in other_machines(list(done_before.values()), machine()):
            print(line, flush=True)
    todo = schedule(
        [t for t in all_runs if t[2] not in same and _key(t[0], t[2]) not in done_before],
        args.jobs,
    )
    t0, total = time.perf_counter(), len(todo)
    for done, trained in enumerate(_runs(todo, run, args.jobs, tuple(args.score_epochs)), 1):
        twins = [n for n, twin in same.items() if twin == trained["recipe"]]
        rows.extend([trained] + [{**trained, "recipe": n} for n in twins])
        rows.sort(key=lambda r: order[_key(r, r["recipe"])])
        eta = (time.perf_counter() - t0) / done * (total - done)
        print(f"{run_line(trained)} | {done}/{total} ETA {format_duration(eta)}", flush=True)
        _tabulate(report, list(recipes), args.out)
    if not todo:  # every run was resumed: the loop above wrote nothing
        _tabulate(report, list(recipes), args.out)


def _tabulate(report: dict[str, Any], recipes: list[str], out: Path) -> None:
    """The table and pairs of the runs so far, written: a stopped command loses no run."""
    report["table"] = table(report["runs"])
    report["paired"] = paired_all(report["runs"], recipes)
    atomic_write_json(out / "results.json", report)


def earlier_runs(args: argparse.Namespace, report: dict, keys: set[tuple]) -> list[dict]:
    """The runs an interrupted command already finished, from its results.json in ``--out``:
    those of this command's folds whose recipe has the same configuration, trained by the same
    code in the same layout (``--overwrite``: none)."""
    path = args.out / "results.json"
    if args.overwrite or not path.is_file():
        return []
    try:
        before = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    configs = json.loads(json.dumps(report["configs"]))  # tuples read back as lists
    same_pool = (
        before.get("clips_sha1") == report["clips_sha1"]
        and before.get("folds") == args.folds
        and all(before.get(k) == report.get(k) for k in SAME_TRAINING)
    )
    return [
        r
        for r in before.get("runs", [])
        if same_pool
        and before.get("configs", {}).get(r.get("recipe")) == configs.get(r.get("recipe"))
        and _key(r, r["recipe"]) in keys
        and set(map(str, args.score_epochs)) <= set(r.get("at_epoch", {}))
    ]


def other_machines(runs: list[dict], here: dict[str, str]) -> list[str]:
    """A line for each machine other than ``here`` that trained some of the resumed ``runs``:
    their numbers are other draws of the same recipe, not this machine's (a CPU with another
    instruction set rounds other floats), and a table that mixes them should say so."""
    counts: dict[str, int] = defaultdict(int)
    for r in runs:
        if r.get("machine") != here:
            counts[machine_name(r["machine"]) if r.get("machine") else ""] += 1
    return [
        f"resuming: {n} of them trained on {name or 'a machine they do not name'}, not on this "
        f"{machine_name(here)}: another CPU's floats train other models of the same recipe"
        for name, n in sorted(counts.items())
    ]


SAME_TRAINING = ("code", "memory_format")  # what a resumed run must share with the first


def code_version() -> str:
    """sha1 of vgd's modules and this script: a run's numbers depend on both."""
    package = Path(vgd.__file__).resolve().parent
    h = hashlib.sha1()
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode() + f.read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def clips_digest(clips: list[Clip]) -> str:
    """What the folds are drawn from: a resumed command must see the same clips."""
    text = "\n".join(f"{Path(c.path).resolve()}|{c.label}|{c.speaker}|{c.corpus}" for c in clips)
    return hashlib.sha1(text.encode()).hexdigest()


def same_as(recipes: dict[str, TrainConfig]) -> dict[str, str]:
    """Each recipe whose configuration an earlier one already has → that one: a search whose
    pick is the default is not trained twice to compare it with itself."""
    first: dict[TrainConfig, str] = {}
    return {
        name: first[config]
        for name, config in recipes.items()
        if first.setdefault(config, name) != name
    }


def schedule(todo: list[tuple], jobs: int) -> list[tuple]:
    """The runs in the order they start. One at a time: as listed, fold-major. Several at once:
    the most training clips first (a run's time grows with them), so that the last runs to
    start are short and no slot idles long at the end; a fold's recipes stay side by side."""
    if jobs <= 1:
        return list(todo)
    return sorted(todo, key=lambda t: -sum(c.split == "train" for c in t[1]))


def _key(meta: dict[str, Any], recipe: str) -> tuple:
    return (meta["kind"], meta["train"], meta["seed"], meta["fold"], recipe)


def _runs(
    todo: list[tuple], run: RunConfig, jobs: int, score_epochs: tuple[int, ...] = ()
) -> Iterator[dict[str, Any]]:
    """Each (meta, fold, recipe) trained and scored, as they finish."""
    if jobs <= 1:
        yield from (_run_one((t, run, score_epochs)) for t in todo)
        return
    # spawn: a forked child would inherit the parent's OpenMP thread pool mid-state
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(_run_one, (t, run, score_epochs)) for t in todo]
        yield from (future.result() for future in as_completed(futures))
    finally:  # stopped (Ctrl-C, SIGTERM) or failed: no worker goes on training unseen
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in multiprocessing.active_children():
            worker.terminate()
            worker.join()
        pool.shutdown(wait=True)


def _run_one(task: tuple) -> dict[str, Any]:
    (meta, fold, name, config), run, score_epochs = task
    return {"recipe": name, **meta, **run_split(config, run, fold, score_epochs)}


def paired_all(rows: list[dict[str, Any]], recipes: list[str]) -> dict[str, Any]:
    """Every other recipe against the first, fold by fold on the pooled folds both ran."""
    return {other: paired(rows, recipes[0], other) for other in recipes[1:]}


def paired(rows: list[dict[str, Any]], base: str, other: str) -> dict[str, Any]:
    """Per corpus and for the macro: each shared pooled fold's (base, other, difference), and the
    mean difference with its spread (the standard deviation of the differences)."""
    runs = {(r["recipe"], r["seed"], r["fold"]): r for r in rows if r["kind"] == POOLED}
    folds = sorted(
        {(s, k) for (name, s, k) in runs if name == base}
        & {(s, k) for (name, s, k) in runs if name == other}
    )
    out: dict[str, Any] = {"base": base, "other": other, "folds": [list(f) for f in folds]}
    if not folds:
        return out
    scores = {
        "macro": lambda r: r["macro_balanced_accuracy"],
        **{
            name: (lambda r, n=name: r["per_corpus"][n]["balanced_accuracy"])
            for name in runs[(base, *folds[0])]["per_corpus"]
        },
    }
    for name, score in scores.items():
        a = [score(runs[(base, *f)]) for f in folds]
        b = [score(runs[(other, *f)]) for f in folds]
        diff = [y - x for x, y in zip(a, b)]
        out[name] = {
            base: a,
            other: b,
            "diff": diff,
            "mean_diff": statistics.fmean(diff),
            "spread": statistics.stdev(diff) if len(diff) > 1 else 0.0,
            "wins": sum(d > 0 for d in diff),
            "losses": sum(d < 0 for d in diff),
        }
    return out


def paired_lines(report: dict[str, Any]) -> list[str]:
    """The paired comparisons as printed: per corpus, each fold's pair and the mean difference."""
    lines = []
    for p in report.get("paired", {}).values():
        if len(p["folds"]) == 0:
            continue
        base, other = p["base"], p["other"]
        lines.append(f"paired by fold ({len(p['folds'])} pooled folds): {other} − {base}")
        lines.append(
            f"{'scored on':<16} {base:>10} {other:>10} {'diff':>9} {'± spread':>9} "
            f"{'wins':>5} {'losses':>6}"
        )
        for name in [n for n in p if isinstance(p[n], dict) and "diff" in p[n]]:
            x = p[name]
            a, b = statistics.fmean(x[base]), statistics.fmean(x[other])
            lines.append(
                f"{name:<16} {a:>10.4f} {b:>10.4f} "
                f"{x['mean_diff']:>+9.4f} {x['spread']:>9.4f} {x['wins']:>5} {x['losses']:>6}"
            )
    return lines


def run_line(row: dict[str, Any]) -> str:
    """One run's scores in a line."""
    cells = "; ".join(
        f"{name} {m['balanced_accuracy']:.4f} (unknown {m['unknown']:.3f})"
        for name, m in row["per_corpus"].items()
    )
    where = f"fold {row['fold'] + 1}" if row["kind"] == POOLED else "LOCO"
    return (
        f"[{row['recipe']}] seed {row['seed']} {where}: {row['train']} → {cells} "
        f"(best epoch {row['best_epoch']}/{row['epochs']}, {row['train_seconds']:.0f} s)"
    )


def table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (recipe, train → test corpus), and the pooled runs' macro over corpora."""
    groups: dict[tuple, list[tuple[dict, dict]]] = defaultdict(list)
    for row in rows:
        for test, m in row["per_corpus"].items():
            groups[(row["recipe"], row["train"], test)].append((row, m))
    lines = [_line(key, runs) for key, runs in groups.items()]
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        pooled = [r for r in rows if r["recipe"] == recipe and r["kind"] == POOLED]
        if pooled:
            macro = [r["macro_balanced_accuracy"] for r in pooled]
            lines.append({"recipe": recipe, "train": POOLED, "test": "macro", **_spread(macro)})
    return lines


def _line(key: tuple, runs: list[tuple[dict, dict]]) -> dict[str, Any]:
    recipe, train, test = key
    recall = defaultdict(list)
    for _, m in runs:
        for label, r in m["recall"].items():
            if r is not None:
                recall[label].append(r)
    return {
        "recipe": recipe,
        "train": train,
        "test": test,
        **_spread([m["balanced_accuracy"] for _, m in runs]),
        "recall": {label: statistics.fmean(v) for label, v in recall.items()},
        "unknown": statistics.fmean(m["unknown"] for _, m in runs),
        "test_speakers": sum(m["n_speakers"] for _, m in runs) / len(runs),
        "train_speakers": statistics.fmean(sum(r["train_speakers"].values()) for r, _ in runs),
    }


def _spread(values: list[float]) -> dict[str, Any]:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"runs": len(values), "mean": statistics.fmean(values), "std": sd, "min": min(values)}


def format_table(lines: list[dict[str, Any]]) -> str:
    """The table as printed: train → test, balanced accuracy, recalls, unknown, speakers."""
    out = [
        f"{'recipe':<10} {'train → test':<36} {'runs':>4} {'bal acc':>8} {'± std':>7} "
        f"{'min':>7} {'rec F':>7} {'rec M':>7} {'unknown':>7} {'test spk':>8} {'train spk':>9}"
    ]
    for x in lines:
        where = f"{x['train']} → {x['test']}"
        head = (
            f"{x['recipe']:<10} {where:<36} {x['runs']:>4} {x['mean']:>8.4f} "
            f"{x['std']:>7.4f} {x['min']:>7.4f}"
        )
        if x["test"] == "macro":
            out.append(head)
            continue
        out.append(
            f"{head} {x['recall'].get('female', float('nan')):>7.4f} "
            f"{x['recall'].get('male', float('nan')):>7.4f} {x['unknown']:>7.3f} "
            f"{x['test_speakers']:>8.1f} {x['train_speakers']:>9.1f}"
        )
    return "\n".join(out)


def plot(report: dict[str, Any], path: Path) -> Path:
    """Test balanced accuracy of every run, one column per (recipe, train → test)."""
    from vgd.plots import pyplot, save_figure

    plt = pyplot()
    lines = [x for x in report["table"] if x["test"] != "macro"]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(lines), 3.6))
    for i, x in enumerate(lines):
        values = [
            r["per_corpus"][x["test"]]["balanced_accuracy"]
            for r in report["runs"]
            if r["recipe"] == x["recipe"]
            and r["train"] == x["train"]
            and x["test"] in r["per_corpus"]
        ]
        ax.plot([i] * len(values), values, "o", color="C0", alpha=0.6)
        ax.plot([i - 0.25, i + 0.25], [x["mean"]] * 2, color="C3", lw=2)
    ax.set_xticks(range(len(lines)))
    ax.set_xticklabels([f"{x['recipe']}\n{x['train']}\n→ {x['test']}" for x in lines], fontsize=7)
    ax.set_ylabel("test balanced accuracy")
    ax.set_title("leave one corpus out, and pooled CV (red: mean)", fontsize=10)
    return save_figure(fig, path)


def curves(report: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Per recipe, the mean over pooled folds of each validation score at each epoch."""
    out = {}
    for recipe in dict.fromkeys(r["recipe"] for r in report["runs"]):
        runs = [r["curve"] for r in report["runs"] if r["recipe"] == recipe and r["kind"] == POOLED]
        if not runs:
            continue
        n = min(len(c) for c in runs)
        out[recipe] = {
            key: [statistics.fmean(c[e][key] for c in runs) for e in range(n)]
            for key in CURVE_KEYS
            if key in runs[0][0]
        }
        out[recipe]["folds"] = len(runs)
        out[recipe]["within_1pt_of_best"] = within(out[recipe]["val_macro_balanced_accuracy"])
    return out


def epoch_rules(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (recipe, train → test): mean test balanced accuracy (T = 1) with the validation's
    pick of epoch and with each fixed epoch scored, over the runs that scored them all."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        scores = row.get("at_epoch")
        if not scores:
            continue
        picked = scores[str(row["best_epoch"])]
        tests = [t for t in picked if t != "macro" or row["kind"] == POOLED]
        for test in tests:
            groups[(row["recipe"], row["train"], test)].append(
                {"val pick": picked[test], **{f"epoch {e}": s[test] for e, s in scores.items()}}
            )
    out = []
    for (recipe, train, test), runs in groups.items():
        rules = ["val pick", *sorted({k for r in runs for k in r} - {"val pick"}, key=_epoch_no)]
        rules = [k for k in rules if all(k in r for r in runs)]
        out.append(
            {
                "recipe": recipe,
                "train": train,
                "test": test,
                "runs": len(runs),
                "mean": {k: statistics.fmean(r[k] for r in runs) for k in rules},
                "min": {k: min(r[k] for r in runs) for k in rules},
            }
        )
    return out


def _epoch_no(rule: str) -> int:
    return int(rule.split()[-1])


def epoch_rule_lines(report: dict[str, Any]) -> list[str]:
    """The epoch rules as a table: mean (min) per rule."""
    rules = report.get("epoch_rules") or []
    if not rules:
        return []
    lines = ["test balanced accuracy (T = 1) by how the epoch is chosen: mean (min) over runs"]
    for r in rules:
        cells = "  ".join(f"{k} {r['mean'][k]:.4f} ({r['min'][k]:.4f})" for k in r["mean"])
        lines.append(
            f"{r['recipe']:<10} {r['train'] + ' → ' + r['test']:<36} {r['runs']:>3}  {cells}"
        )
    return lines


def within(curve: list[float], margin: float = 0.01) -> int:
    """The first epoch (1-based) whose score is within ``margin`` of the curve's best."""
    best = max(curve)
    return next(e for e, v in enumerate(curve, 1) if v >= best - margin)


def curve_marks(epochs: int) -> list[int]:
    """The epochs a curve table shows: a roughly doubling ladder, and always the last epoch."""
    ladder = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40, 48, 64, 96, 128, 192, 256)
    return [e for e in ladder if e < epochs] + [epochs]


def curve_lines(report: dict[str, Any]) -> list[str]:
    """Each recipe's mean validation macro balanced accuracy at a few epochs (none without
    pooled runs: only they keep a validation curve)."""
    if not report["curves"]:
        return []
    marks = curve_marks(
        max(len(c["val_macro_balanced_accuracy"]) for c in report["curves"].values())
    )
    lines = [f"{'recipe':<10} {'folds':>5} " + "".join(f"{'ep ' + str(e):>7}" for e in marks)]
    for recipe, c in report["curves"].items():
        ys = c["val_macro_balanced_accuracy"]
        cells = "".join(f"{ys[e - 1]:>7.4f}" if e <= len(ys) else f"{'':>7}" for e in marks)
        lines.append(
            f"{recipe:<10} {c['folds']:>5} {cells}  within 0.01 of best at epoch "
            f"{c['within_1pt_of_best']}"
        )
    return lines


def merged(paths: list[Path]) -> dict[str, Any]:
    """Several results.json as one report: their runs, on the pooled folds all of them ran."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    key = lambda r: (r["kind"], r["seed"], r["fold"])  # noqa: E731
    common = set.intersection(*({key(r) for r in rep["runs"]} for rep in reports))
    out = {**reports[0], "merged": [str(p) for p in paths], "configs": {}, "runs": []}
    for rep in reports:
        out["configs"].update(rep["configs"])
        out["runs"] += [r for r in rep["runs"] if key(r) in common]
    out["table"] = table(out["runs"])
    return out


def plot_curves(report: dict[str, Any], path: Path) -> Path:
    """Validation macro balanced accuracy per epoch: each pooled fold thin, the mean thick."""
    from vgd.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for i, (recipe, mean) in enumerate(report["curves"].items()):
        for r in report["runs"]:
            if r["recipe"] == recipe and r["kind"] == POOLED:
                ys = [h["val_macro_balanced_accuracy"] for h in r["curve"]]
                ax.plot(range(1, len(ys) + 1), ys, color=f"C{i}", lw=0.6, alpha=0.35)
        ys = mean["val_macro_balanced_accuracy"]
        ax.plot(range(1, len(ys) + 1), ys, color=f"C{i}", lw=2, label=f"{recipe} (mean)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("val balanced accuracy, macro over corpora")
    ax.set_title("learning curves on the pooled folds", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def load_pool(args: argparse.Namespace) -> list[Clip]:
    """The manifests' clips, and LibriSpeech's when ``--librispeech`` names its folder."""
    clips = read_manifests(args.manifest) if args.manifest else []
    if args.librispeech:
        clips += build("librispeech", args.librispeech, validate="header", progress=False).clips
    if len(corpora_of(clips)) < 2:
        raise ManifestError(f"need clips of 2+ corpora, found {corpora_of(clips) or 'none'}")
    return clips


def load_recipes(
    specs: list[str], balance: str, overrides: dict[str, Any] | None = None
) -> dict[str, TrainConfig]:
    """``NAME=YAML`` (or ``default``) → configs, each with ``data.balance`` and ``overrides``
    (``--set``: the schedule every recipe is compared on) set. A search space's YAML stands for
    vgd's defaults with the space's ``base`` (what its first trial trains): the default recipe
    on the schedule the search used."""
    overrides = {"data.balance": balance, **(overrides or {})}
    recipes = {}
    for spec in specs or ["default"]:
        name, _, path = spec.partition("=")
        config = TrainConfig() if name == "default" and not path else recipe_of(path or name)
        recipes[name if path or name == "default" else Path(name).stem] = apply_overrides(
            config, overrides
        )
    return recipes


def recipe_of(path: str) -> TrainConfig:
    """A training config YAML, or a search space's defaults-plus-base."""
    data = yaml.safe_load(Path(path).read_text()) if Path(path).is_file() else None
    if isinstance(data, dict) and "parameters" in data:
        return apply_overrides(TrainConfig(), load_space(path).base)
    return load_config(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", action="append", default=[], help="a corpus's manifest (repeat)")
    p.add_argument("--librispeech", type=Path, help="LibriSpeech folder, built as one corpus")
    p.add_argument("--recipe", action="append", default=[], help="NAME=YAML, or default")
    p.add_argument("--balance", default="speaker", choices=("speaker", "sampler", "none"))
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override in every recipe, e.g. the schedule they are compared on (repeatable)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[1], help="fold seeds (search: 0)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--fold-limit", type=int, default=0, help="only each seed's first N folds")
    p.add_argument("--val-fraction", type=float, default=0.2, help="LOCO's validation speakers")
    p.add_argument("--no-loco", action="store_true", help="skip leave-one-corpus-out")
    p.add_argument("--no-pooled", action="store_true", help="skip pooled cross-validation")
    p.add_argument("--write-manifest", type=Path, help="also write the pooled manifest here")
    p.add_argument("--out", type=Path, default=Path("results/cross_corpus"))
    p.add_argument(
        "--overwrite", action="store_true", help="retrain the runs a results.json in --out has"
    )
    p.add_argument(
        "--merge", type=Path, nargs="+", help="redraw from these results.json, merged (no runs)"
    )
    p.add_argument(
        "--score-epochs",
        type=int,
        nargs="+",
        default=[],
        metavar="E",
        help="also score each run's test clips with these epochs' weights (T = 1), beside the "
        "validation's pick: how much choosing the epoch on validation gains over a fixed one",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument(
        "--memory-format",
        default="contiguous",
        choices=MEMORY_FORMATS,
        help="tensor layout in training (RunConfig.memory_format)",
    )
    p.add_argument("--jobs", type=int, default=1, help="runs at once, one process each")
    p.add_argument("--cache-dir", default="cache/audio", help="decoded-audio cache ('': none)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # stopped by SIGTERM (dvc, a scheduler): unwind like Ctrl-C, so --jobs workers are stopped
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.merge:
        return write_outputs(merged(args.merge), args.out)
    start = time.perf_counter()
    try:
        clips = load_pool(args)
        overrides = dict(parse_override(x) for x in args.set)
        recipes = load_recipes(args.recipe, args.balance, overrides)
    except (ManifestError, FileNotFoundError, ValueError) as e:  # ConfigError is a ValueError
        print(f"cross_corpus: error: {e}", file=sys.stderr)
        return 2
    for name in corpora_of(clips):
        mine = [c for c in clips if c.corpus == name]
        print(f"{name}: {len(mine)} clips, {len({speaker_key(c) for c in mine})} speakers")
    if args.write_manifest:
        print(f"wrote {write_manifest(clips, args.write_manifest)}")
    if args.no_loco and args.no_pooled:
        return 0  # the pooled manifest was all that was asked for
    threads = args.threads or (max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else 0)
    run = RunConfig(
        "", args.device, threads=threads, cache_dir=args.cache_dir, memory_format=args.memory_format
    )
    report: dict[str, Any] = {
        "command": " ".join(["python scripts/cross_corpus.py", *(argv or sys.argv[1:])]),
        "corpora": corpora_of(clips),
        "clips_sha1": clips_digest(clips),
        "code": code_version(),
        "seeds": args.seeds,
        "folds": args.folds,
        "balance": args.balance,
        "device": args.device,
        "memory_format": args.memory_format,
        "configs": {name: to_dict(c) for name, c in recipes.items()},
        "runs": [],
    }
    measure(recipes, run, clips, args, report)
    report["seconds"] = time.perf_counter() - start
    write_outputs(report, args.out)
    print(f"took {format_duration(report['seconds'])}")
    return 0


def write_outputs(report: dict[str, Any], out: Path) -> int:
    """Print the table (and the curves' summary); write it, the JSON and the plots to ``out``."""
    report["curves"] = curves(report)
    report["paired"] = paired_all(report["runs"], list(report["configs"]))
    report["epoch_rules"] = epoch_rules(report["runs"])
    rules = epoch_rule_lines(report)
    text = "\n".join(
        [format_table(report["table"]), "", *paired_lines(report), "", *curve_lines(report)]
        + (["", *rules] if rules else [])
    ).rstrip("\n")  # without pooled runs there are no curves to end it
    print(text)
    atomic_write_text(out / "table.txt", text + "\n")
    atomic_write_json(out / "results.json", report)
    plot(report, out / "cross_corpus.png")
    if report["curves"]:
        plot_curves(report, out / "curves.png")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
