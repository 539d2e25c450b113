"""Start-to-first-batch of search trials on the driver's node and on a node that sees no data.

    python scripts/bench_cluster.py                                   # the built-in corpus
    python scripts/bench_cluster.py --librispeech /work/shared/data/LibriSpeech

Runs as root. Starts the two-node cluster of tests/test_cluster.py: scripts/ray_cluster.sh local
in a network namespace of its own (loopback only), the worker node in a mount namespace of its
own with the audio folder, the manifest folder, the cache and the trial storage of the driver
under empty tmpfs mounts. Two searches of one trial at a time run on it, the first with CPUs on
the head only, the second on the worker only, so that neither node's trials compete with the
other's. Each trial's first report says ``ready_s``, the seconds from the trial's start to its
first batch (of which ``audio_fetch_s`` went to fetching the audio the driver shipped through
Ray's object store). The first trial of a fresh worker process is kept apart from those of a
reused one. Writes results/bench/cluster_<corpus>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from vgd.io import atomic_write_json
from vgd.manifest import read_manifest, write_manifest

ROOT = Path(__file__).resolve().parents[1]
# Short trials: what is measured happens before their first batch.
SPACE = """
metric: val_balanced_accuracy
mode: max
base: {optim.epochs: 1, optim.patience: 0, model.n_blocks: 2, model.width: 4,
       window.seconds: 1.0, window.max_windows: 1}
parameters:
  optim.lr: {loguniform: [1.0e-3, 1.0e-2]}
"""
SCENARIO = r"""
set -eu
ip link set lo up
scripts/ray_cluster.sh local "$PORT" > /dev/null
trap 'scripts/ray_cluster.sh stop "$PORT" > /dev/null' EXIT
"$PYTHON" search/run.py "$@"
"""


def librispeech_manifest(root: str, out: Path) -> Path:
    """A manifest of the LibriSpeech folder at ``root``, written under ``out``."""
    from vgd.corpora import build

    return write_manifest(build("librispeech", root, progress=False).clips, out / "manifest.csv")


def built_in(manifest: Path) -> Path:
    """The manifest, generating the built-in synthetic corpus there if it is missing."""
    if not manifest.exists():
        from vgd.synth import SynthConfig, generate_corpus

        generate_corpus(manifest.parent, SynthConfig())
    return manifest


def run_on_cluster(manifest: Path, work: Path, on: str, args: argparse.Namespace) -> Path:
    """One search on the isolated two-node cluster, its trials ``on`` the head or the worker;
    returns its results folder."""
    audio = Path(os.path.commonpath([str(Path(c.path).parent) for c in read_manifest(manifest)]))
    results, cache = work / "results", work / "cache"
    for d in (results, cache):
        d.mkdir(exist_ok=True)
    (work / "bench.yaml").write_text(SPACE)
    hidden = sorted({audio, manifest.parent, results, cache})
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "CLUSTER_DIR": str(work / "c"),
        "HEAD_CPUS": "1" if on == "head" else "0",
        "WORKER_CPUS": "1" if on == "worker" else "0",
        "RAY_AUTH_MODE": "token",
        "PORT": str(args.port),
        "PYTHON": sys.executable,
        "HIDE_FROM_WORKER": " ".join(map(str, hidden)),
    }
    search = ["--space", str(work / "bench.yaml"), "--scheduler", "none", "--name", on]
    search += ["--num-samples", str(args.num_samples), "--max-concurrent", "1"]
    search += ["--manifest", str(manifest)]
    search += ["--results-dir", str(results), "--cache-dir", str(cache)]
    search += ["--address", f"127.0.0.1:{args.port}"]
    cmd = ["unshare", "-n", "bash", "-c", SCENARIO, "bench", *search]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return results / on


def first_reports(out: Path) -> list[dict]:
    """Each trial's first result, in start order."""
    rows = [json.loads(p.open().readline()) for p in (out / "ray").rglob("result.json")]
    return sorted(rows, key=lambda r: r["timestamp"] - r["time_total_s"])


def compare(rows: list[dict]) -> dict:
    """ready_s and audio_fetch_s of a search's trials, fresh and reused worker processes apart."""
    seen: set[int] = set()
    groups: dict[str, dict[str, list]] = {}
    for r in rows:
        kind = "reused" if r["pid"] in seen else "fresh"
        seen.add(r["pid"])
        group = groups.setdefault(kind, {"ready_s": [], "audio_fetch_s": []})
        group["ready_s"].append(round(r["ready_s"], 3))
        group["audio_fetch_s"].append(round(r["audio_fetch_s"], 4))
    for group in groups.values():
        group["median_ready_s"] = statistics.median(group["ready_s"])
    return groups


def measure(manifest: Path, work: Path, on: str, args: argparse.Namespace) -> dict:
    """The trials of one search ``on`` one node: where they ran, their start-up times."""
    out = run_on_cluster(manifest, work, on, args)
    node = (work / "c" / on / "node_id").read_text().strip()
    rows = first_reports(out)
    summary = json.loads((out / "summary.json").read_text())
    return {
        "trials": len(rows),
        "all_on_that_node": all(r["node_id"] == node for r in rows),
        **compare(rows),
        "data_prep_seconds": round(summary["data_prep_seconds"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the comparison, write it to results/bench/."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="data/synth/manifest.csv")
    p.add_argument("--librispeech", default="", help="build the manifest from this folder")
    p.add_argument("--num-samples", type=int, default=4)
    p.add_argument("--port", type=int, default=6490)
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vgd-bc-"))
    try:
        manifest = (
            librispeech_manifest(args.librispeech, work / "manifest")
            if args.librispeech
            else built_in(Path(args.manifest).resolve())
        )
        report = {
            "manifest": str(args.librispeech or args.manifest),
            "clips": len(read_manifest(manifest)),
            "load_average_1m": os.getloadavg()[0],
            **{on: measure(manifest, work, on, args) for on in ("head", "worker")},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    name = "librispeech" if args.librispeech else Path(args.manifest).parent.name
    path = Path(args.out or ROOT / "results" / "bench" / f"cluster_{name}.json")
    atomic_write_json(path, report)
    print(json.dumps(report, indent=1))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
