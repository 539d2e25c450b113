"""What TPE + ASHA buy, what Ray costs and what the shared audio cache saves, measured here.

    python scripts/bench_search.py [--space wide] [--num-samples 24] [--manifest CSV]

Runs the same budget twice through search/run.py (TPE + ASHA, then random sampling with no
scheduler), then reads each search's trials.csv and summary.json. Ray/Tune overhead per trial is
the trial's wall time minus the time inside vgd's training loop; the cache saving is the decode
time of one pass over the clips times the epochs all trials ran, minus one prefill. Prints the
measured numbers and writes results/bench/search.json and a figure.
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
        *("--results-dir", args.results_dir, "--overwrite"),
    ]
    if args.manifest:
        cmd += ["--manifest", args.manifest]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - start


def read_search(out: Path, slots: int) -> dict:
    """Outcomes, best and default scores, overhead and trial-epochs of a finished search.

    Two overheads: inside each trial (its wall time minus vgd's training loop), and over the
    whole search (slot-seconds the machine offered, ``slots`` × wall, minus all training time),
    which also counts scheduling gaps, actor start-up and result processing.
    """
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    metric = "val_balanced_accuracy"
    overhead = [float(r["seconds"]) - float(r["train_seconds"]) for r in rows if r["seconds"]]
    train_total = sum(float(r["train_seconds"] or 0) for r in rows)
    return {
        "wall_seconds": summary["wall_seconds"],
        "outcomes": summary["outcomes"],
        "best": summary.get("best", {}).get(metric),
        "default": (summary.get("default_trial") or {}).get(metric),
        "trial_epochs": sum(int(r["epochs"] or 0) for r in rows),
        "ray_overhead_s_per_trial": sum(overhead) / max(len(overhead), 1),
        "idle_slot_s_per_trial": (slots * summary["wall_seconds"] - train_total)
        / max(len(rows), 1),
        "data_prep_seconds": summary["data_prep_seconds"],
    }


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
    p.add_argument("--slots", type=int, default=os.cpu_count() or 1, help="trials run at once")
    p.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="VARIANT=DIR",
        help="read a finished search instead of running it, e.g. tpe_asha=results/search/pipeline",
    )
    args = p.parse_args(argv)
    reuse = dict(item.split("=", 1) for item in args.reuse)

    results: dict = {"space": args.space, "num_samples": args.num_samples}
    for name, (sampler, scheduler) in VARIANTS.items():
        if name in reuse:
            results[name] = {"reused": reuse[name], **read_search(Path(reuse[name]), args.slots)}
        else:
            wall = run_search(name, sampler, scheduler, args)
            results[name] = {
                "process_seconds": wall,
                **read_search(Path(args.results_dir) / name, args.slots),
            }
        r = results[name]
        print(
            f"{name}: {r['wall_seconds']:.0f} s wall, outcomes {r['outcomes']}, best "
            f"{r['best']:.4f} vs default {r['default']:.4f}, Ray overhead "
            f"{r['ray_overhead_s_per_trial']:.1f} s/trial inside trials, "
            f"{r['idle_slot_s_per_trial']:.1f} s/trial of idle slots, "
            f"{r['trial_epochs']} trial-epochs"
        )
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
    out = Path(args.results_dir)
    atomic_write_json(out / "search.json", results)
    print(f"wrote {out / 'search.json'} and {figure(results, out / 'search_bench.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
