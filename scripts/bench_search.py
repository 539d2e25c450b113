"""What TPE + ASHA buy, what Ray costs and what the shared audio cache saves, measured here.

    python scripts/bench_search.py [--space wide] [--num-samples 24] [--manifest CSV]
    python scripts/bench_search.py --space smoke --variants tpe_asha --repeat 3   # overhead only

Runs the same budget twice through search/run.py (TPE + ASHA, then random sampling with no
scheduler), then reads each search's trials.csv and summary.json. Ray/Tune overhead per trial is
the trial's wall time minus the time inside vgd's training loop; idle trial slots per trial are
the slot-seconds the search held (trials at once × its wall time) minus all time inside the
training loop, split into the one-time start-up (each slot's wait for its first epoch: Ray's
worker, imports, first data set-up) and the rest. The cache saving is the decode time of one
pass over the clips times the epochs all trials ran, minus one prefill. Prints the measured
numbers and writes <results-dir>/search.json and, with both variants, a figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from vgd.audio import load_audio
from vgd.cache import AudioCache
from vgd.config import AudioConfig
from vgd.io import atomic_write_json
from vgd.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"tpe_asha": ("tpe", "asha"), "random_none": ("random", "none")}


def run_search(name: str, sampler: str, scheduler: str, args: argparse.Namespace) -> float:
    """One search as a user runs it; returns its wall time including Ray start-up."""
    cmd = [
        sys.executable,
        str(ROOT / "search" / "run.py"),
        *("--space", args.space, "--name", name, "--num-samples", str(args.num_samples)),
        *("--sampler", sampler, "--scheduler", scheduler, "--seed", str(args.seed)),
        *("--results-dir", args.results_dir, "--cache-dir", args.cache_dir, "--overwrite"),
    ]
    if args.manifest:
        cmd += ["--manifest", args.manifest]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - start


def read_search(out: Path, slots: int) -> dict:
    """Outcomes, best and default scores, overhead and trial-epochs of a finished search.

    Two overheads: inside each trial (its wall time minus vgd's training loop), and over the
    whole search (slot-seconds the search held, trials at once × wall, minus all training
    time), which also counts actor start-up, scheduling gaps and slots left idle at the end.
    The search's own summary says how many trials ran at once; ``slots`` is for older ones.
    """
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    metric = "val_balanced_accuracy"
    overhead = [float(r["seconds"]) - float(r["train_seconds"]) for r in rows if r["seconds"]]
    train_total = sum(float(r["train_seconds"] or 0) for r in rows)
    usage = summary.get("slot_usage") or {}
    slots = usage.get("slots", slots)
    return {
        "wall_seconds": summary["wall_seconds"],
        "outcomes": summary["outcomes"],
        "best": summary.get("best", {}).get(metric),
        "default": (summary.get("default_trial") or {}).get(metric),
        "trial_epochs": sum(int(r["epochs"] or 0) for r in rows),
        "ray_overhead_s_per_trial": sum(overhead) / max(len(overhead), 1),
        "slots": slots,
        "idle_slot_s_per_trial": (slots * summary["wall_seconds"] - train_total)
        / max(len(rows), 1),
        "startup_s_per_slot": usage.get("startup_seconds_per_slot"),
        "idle_slot_s_per_trial_after_startup": usage.get(
            "idle_slot_seconds_per_trial_after_startup"
        ),
        "data_prep_seconds": summary["data_prep_seconds"],
    }


def describe_run(name: str, r: dict) -> str:
    after = r["idle_slot_s_per_trial_after_startup"]
    startup = (
        f" ({r['startup_s_per_slot']:.1f} s/slot start-up, {after:.1f} s/trial after it)"
        if after is not None
        else ""
    )
    process = f" ({r['process_seconds']:.0f} s process)" if "process_seconds" in r else ""
    return (
        f"{name}: {r['wall_seconds']:.0f} s wall{process}, "
        f"outcomes {r['outcomes']}, best {r['best']:.4f} vs default {r['default']:.4f}, "
        f"Ray overhead {r['ray_overhead_s_per_trial']:.1f} s/trial inside trials, "
        f"{r['idle_slot_s_per_trial']:.1f} s/trial of idle slots{startup} on {r['slots']} slots, "
        f"{r['trial_epochs']} trial-epochs"
    )


def spread(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs if r.get(key) is not None]
    if not values:
        return "n/a"
    return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def decode_pass_seconds(manifest: str, cache_dir: str) -> tuple[float, float]:
    """Seconds for one pass over the clips: decoding each file, and reading the cache."""
    paths = [c.path for c in read_manifest(manifest)]
    audio = AudioConfig()
    start = time.perf_counter()
    for p in paths:
        load_audio(p, audio)
    decode = time.perf_counter() - start
    cache = AudioCache(cache_dir, audio)
    start = time.perf_counter()
    for p in paths:
        cache.get(p).sum()  # touch the pages, as a training read does
    return decode, time.perf_counter() - start


def figure(results: dict, out: Path) -> Path:
    from vgd.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name in VARIANTS:
        r = results[name]
        ax.bar(name, r["best"] or 0, label=f"{r['wall_seconds']:.0f} s wall")
    ax.axhline(results["tpe_asha"]["default"] or 0, color="k", ls="--", label="default config")
    ax.set_ylabel("best validation balanced accuracy")
    ax.set_ylim(0.5, 1.0)
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="wide")
    p.add_argument("--num-samples", type=int, default=24)
    p.add_argument("--manifest", default="", help="default: the config's (the built-in corpus)")
    p.add_argument("--results-dir", default="results/bench/search")
    p.add_argument("--cache-dir", default="cache/audio")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--slots",
        type=int,
        default=os.cpu_count() or 1,
        help="trials at once, for searches whose summary does not say",
    )
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"searches to run, comma-separated ({', '.join(VARIANTS)})",
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="run each search this many times (noisy machines)"
    )
    p.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="VARIANT=DIR",
        help="read a finished search instead of running it, e.g. tpe_asha=results/search/pipeline",
    )
    args = p.parse_args(argv)
    reuse = dict(item.split("=", 1) for item in args.reuse)

    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        p.error(f"--variants: unknown {sorted(unknown)}; choose from {list(VARIANTS)}")

    results: dict = {"space": args.space, "num_samples": args.num_samples}
    out = Path(args.results_dir)
    for name in variants:
        sampler, scheduler = VARIANTS[name]
        runs = []
        for _ in range(1 if name in reuse else args.repeat):
            if name in reuse:
                runs.append({"reused": reuse[name], **read_search(Path(reuse[name]), args.slots)})
            else:
                wall = run_search(name, sampler, scheduler, args)
                runs.append({"process_seconds": wall, **read_search(out / name, args.slots)})
            print(describe_run(name, runs[-1]), flush=True)
        results[name] = {**runs[-1], "runs": runs}
        if len(runs) > 1:
            print(
                f"{name} over {len(runs)} run(s): idle slots "
                f"{spread(runs, 'idle_slot_s_per_trial')} s/trial, after start-up "
                f"{spread(runs, 'idle_slot_s_per_trial_after_startup')} s/trial, start-up "
                f"{spread(runs, 'startup_s_per_slot')} s/slot, wall {spread(runs, 'wall_seconds')}"
                f" s, process {spread(runs, 'process_seconds')} s"
            )
    if set(VARIANTS) - set(variants):  # the cache and the figure compare both searches
        path = out / f"search_{'_'.join(variants)}.json"
        atomic_write_json(path, results)
        print(f"wrote {path}")
        return 0
    manifest = args.manifest or "data/synth/manifest.csv"
    decode, cached = decode_pass_seconds(manifest, args.cache_dir)
    epochs = results["tpe_asha"]["trial_epochs"]
    results["cache"] = {
        "decode_pass_seconds": decode,
        "cached_pass_seconds": cached,
        "saved_seconds_tpe_asha": epochs * (decode - cached) - decode,
    }
    print(
        f"one pass over the clips: {decode:.1f} s decoding vs {cached:.2f} s from the cache; "
        f"over {epochs} trial-epochs the cache saves "
        f"~{results['cache']['saved_seconds_tpe_asha']:.0f} s of decoding (CPU time across trials)"
    )
    atomic_write_json(out / "search.json", results)
    print(f"wrote {out / 'search.json'} and {figure(results, out / 'search_bench.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
