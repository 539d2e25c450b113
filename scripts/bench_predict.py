"""Prediction speed on the CPU: clips/s and real-time factor on 3-second clips (batch 1 and 64),
and the time and peak memory of one 60-minute recording, which is streamed, never loaded whole.

    python scripts/bench_predict.py [--model models/current.pt] [--threads 2] [--minutes 60]

Without --model it measures the default architecture with fresh weights (speed does not depend
on the weights). Prints measured numbers and writes them to results/bench/predict.json.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vgd.checkpoint import LoadedModel, build_model, load_checkpoint, save_checkpoint
from vgd.config import TrainConfig
from vgd.device import resolve_device
from vgd.io import atomic_write_json

LABELS = ("female", "male")


def default_model() -> LoadedModel:
    config = TrainConfig()
    return LoadedModel(build_model(config.spec), config.spec, config, {}, "bench", "")


def model_throughput(
    loaded: LoadedModel, batch: int, seconds: float = 3.0, n: int = 512, repeats: int = 5
) -> dict:
    """Clips/s of the checkpoint's waveform → logits path on in-memory 3-s clips.

    A shared machine's speed drifts from second to second, so ``repeats`` timed runs are taken and
    their median (and range) reported.
    """
    model = loaded.model.eval()
    rate = loaded.spec.audio.sample_rate
    waves = torch.randn(batch, int(seconds * rate), device=loaded.device) * 0.1
    sync = torch.cuda.synchronize if loaded.device.type == "cuda" else lambda: None
    steps = max(n // batch, 8)
    rates = []
    with torch.inference_mode():
        for _ in range(3):
            model(waves)
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            for _ in range(steps):
                model(waves)
            sync()
            rates.append(steps * batch / (time.perf_counter() - start))
    clips_s = float(np.median(rates))
    return {
        "batch": batch,
        "clips_per_s": clips_s,
        "clips_per_s_range": [min(rates), max(rates)],
        "repeats": repeats,
        "rtf": 1 / (clips_s * seconds),
    }


def write_long_recording(path: Path, minutes: float, rate: int = 16000) -> None:
    """A speech-like recording written chunk by chunk (so the benchmark itself stays small)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", rate, 1, format="FLAC") as f:
        for second in range(int(minutes * 60)):
            t = np.arange(rate) / rate + second
            f0 = 110 + 30 * np.sin(second / 7)
            wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 10))
            f.write((0.05 * wave + 0.003 * rng.standard_normal(rate)).astype(np.float32))


def long_recording(model_path: Path, audio: Path, threads: int, device: str) -> dict:
    """Time and peak RSS of `vgd predict` on one long file, in a fresh process."""
    code = (
        "import sys, time, torch; torch.set_num_threads(int(sys.argv[3]));"
        "from vgd.checkpoint import load_checkpoint; from vgd.predict import predict_paths;"
        "m = load_checkpoint(sys.argv[1], sys.argv[4]); t = time.perf_counter();"
        "p = predict_paths(m, [sys.argv[2]], progress=False)[0];"
        "print(time.perf_counter() - t, p.label, p.windows, p.error)"
    )
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, str(model_path), str(audio), str(threads), device],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    wall = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "predict_seconds": float(out[0]),
        "process_seconds": wall,
        "peak_rss_mib": peak_mib,
        "label": out[1],
        "windows": int(out[2]),
    }


def write_files(folder: Path, n_files: int, kind: str) -> None:
    """``n_files`` 3-s FLACs: synthetic voices (speech: the VAD stops after its first second or
    so) or harmonic tones (the VAD reads them to the end and calls them non-speech: its worst
    case)."""
    from vgd.synth import speaker_params, synthesize

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    t = np.arange(48000) / 16000
    for i in range(n_files):
        if kind == "voices":
            params = speaker_params(i % 40, ("female", "male")[i % 2], seed=1)
            wave = synthesize(params, i // 40, seed=1, sample_rate=16000, duration_s=3.0)
        else:
            wave = sum(np.sin(2 * np.pi * (100 + i % 120) * k * t) / k for k in range(1, 10))
            wave = 0.05 * wave + 0.003 * rng.standard_normal(t.size)
        sf.write(str(folder / f"{i:04d}.flac"), np.asarray(wave, dtype=np.float32), 16000)


def files_throughput(
    loaded: LoadedModel, folder: Path, workers: int, vad: bool, repeats: int = 3
) -> dict:
    """Files/s of ``predict_paths`` (decode, VAD, windows, batch 64) over the files in
    ``folder``: the median of ``repeats`` runs."""
    from vgd.predict import PredictConfig, predict_paths

    config = PredictConfig() if vad else PredictConfig(vad=None)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        preds = predict_paths(loaded, [folder], 64, False, workers, config)
        rates.append(len(preds) / (time.perf_counter() - start))
    return {
        "files": folder.name,
        "workers": workers,
        "vad": vad,
        "files_per_s": float(np.median(rates)),
        "range": rates,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="", help="checkpoint (default: the default architecture)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--files", type=int, default=300, help="3-s files for the files/s figure")
    p.add_argument("--out", default="results/bench/predict.json")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    loaded = load_checkpoint(args.model, args.device) if args.model else default_model()
    loaded.model.to(resolve_device(args.device))
    from vgd.model import count_parameters

    report = {
        "device": str(loaded.device),
        "threads": args.threads,
        "parameters": count_parameters(loaded.model),
        "features": str(loaded.spec.features),
        "model": str(loaded.spec.model),
        "clips": [model_throughput(loaded, b) for b in (1, 64)],
    }
    for r in report["clips"]:
        lo, hi = r["clips_per_s_range"]
        print(
            f"batch {r['batch']:>2}: {r['clips_per_s']:8.1f} clips/s median of {r['repeats']} "
            f"(range {lo:.0f}–{hi:.0f})  RTF {r['rtf']:.5f}"
        )

    with tempfile.TemporaryDirectory() as tmp:
        report["files"] = []
        for kind in ("voices", "tones"):
            write_files(Path(tmp) / kind, args.files, kind)
            for workers, vad in ((1, True), (0, True), (0, False)):
                r = files_throughput(loaded, Path(tmp) / kind, workers, vad)
                report["files"].append(r)
                lo, hi = min(r["range"]), max(r["range"])
                label = ("auto" if workers == 0 else str(workers)) + ("" if vad else ", --no-vad")
                print(
                    f"vgd predict, {args.files} 3-s {kind}, decode workers {label}: "
                    f"{r['files_per_s']:.0f} files/s median (range {lo:.0f}–{hi:.0f})"
                )
        model_path = Path(args.model) if args.model else Path(tmp) / "model.pt"
        if not args.model:
            save_checkpoint(model_path, loaded.model, loaded.recipe)
        audio = Path(tmp) / "long.flac"
        start = time.perf_counter()
        write_long_recording(audio, args.minutes)
        print(f"wrote a {args.minutes:.0f}-minute recording in {time.perf_counter() - start:.1f} s")
        report["long"] = {
            "minutes": args.minutes,
            **long_recording(model_path, audio, args.threads, args.device),
        }
    r = report["long"]
    print(
        f"{args.minutes:.0f}-minute recording: {r['predict_seconds']:.1f} s to predict "
        f"({r['process_seconds']:.1f} s with process start), peak memory "
        f"{r['peak_rss_mib']:.0f} MiB, {r['windows']} windows"
    )
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
