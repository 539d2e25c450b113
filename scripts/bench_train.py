"""Training throughput: input-only clips/s of today's DataLoader path and of the DeviceBatcher,
and the model-only bound (forward + SpecAugment + loss + backward + AdamW on a fixed batch).

    python scripts/bench_train.py [--manifest CSV] [--speakers 40 --utterances 5]
        [--device auto|cpu|cuda] [--threads 2] [--epochs 2] [--batch-size 32] [--seconds 3]
        [--end-to-end] [--json OUT]

Without --manifest it generates the built-in synthetic corpus in a temporary folder. Every path
uses the default TrainConfig (crop, augmentation, balance) unless an option says otherwise.
Prints measured numbers only; --json writes them too.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from vgd.audio import load_audio
from vgd.batches import DeviceBatcher, choose_storage, pack_corpus
from vgd.cache import AudioCache, prefill
from vgd.checkpoint import build_model
from vgd.config import RunConfig, TrainConfig, apply_overrides
from vgd.dataset import AudioDataset, balanced_sampler, make_reader
from vgd.device import autocast, resolve_device, resolve_precision
from vgd.features import SpecAugment
from vgd.io import atomic_write_json
from vgd.manifest import Clip, read_manifest
from vgd.synth import SynthConfig, generate_corpus

MEMORY_BUDGET = 8 << 30  # bytes the packed corpus may take on the device


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so a clock read after it measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_rounds(run_once: Callable[[], int], device: torch.device, rounds: int) -> dict:
    """Clips/s of ``run_once`` (which returns clips done): median and range over ``rounds``.

    Other processes on a shared machine slow some rounds down a lot; the best round is the
    closest to what the code does on a machine of its own, the median what it did here.
    """
    rates = []
    for _ in range(rounds):
        sync(device)
        start = time.perf_counter()
        clips = run_once()
        sync(device)
        rates.append(clips / (time.perf_counter() - start))
    return {"clips_per_s": statistics.median(rates), "range": [min(rates), max(rates)]}


# ----------------------------------------------------------------------------- input only


def old_loader(dataset: AudioDataset, config: TrainConfig, epoch: int, device) -> DataLoader:
    """The training DataLoader as vgd.train.Trainer._train_epoch builds it."""
    dataset.set_epoch(epoch)
    sampler = (
        balanced_sampler(dataset.targets, config.seed, epoch)
        if config.data.balance == "sampler"
        else None
    )
    return DataLoader(
        dataset,
        batch_size=config.optim.batch_size,
        sampler=sampler,
        shuffle=sampler is None,
        num_workers=0,
        pin_memory=device.type == "cuda",
        drop_last=len(dataset) > config.optim.batch_size,
        generator=torch.Generator().manual_seed(config.seed * 7919 + epoch),
    )


def old_input_rate(
    clips: Sequence[Clip], config: TrainConfig, cache_dir: str, device, epochs: int
) -> dict:
    """Input-only clips/s of AudioDataset + DataLoader (batches moved to the device)."""
    reader = make_reader(config.audio, cache_dir)
    d = config.data
    dataset = AudioDataset(
        clips,
        d.labels,
        reader,
        config.audio.sample_rate,
        config.window.seconds,
        augment=config.augment,
        seed=config.seed,
        crops_per_clip=d.crops_per_clip,
    )
    state = {"epoch": 0}

    def one_epoch() -> int:
        state["epoch"] += 1
        n = 0
        for wave, _ in old_loader(dataset, config, state["epoch"], device):
            n += wave.to(device, non_blocking=True).shape[0]
        return n

    return timed_rounds(one_epoch, device, epochs)


def make_batcher(
    clips: Sequence[Clip], config: TrainConfig, device, storage: str
) -> tuple[DeviceBatcher, dict]:
    """Decode, pack and move the corpus; a DeviceBatcher over it, and what that took."""
    start = time.perf_counter()
    crop = config.spec.window_samples
    waves = [load_audio(c.path, config.audio) for c in clips]
    total = sum(max(w.shape[0], crop) for w in waves)
    if storage == "auto":
        storage = choose_storage(total, MEMORY_BUDGET)
    if storage is None:
        raise RuntimeError(f"{total} samples do not fit {MEMORY_BUDGET / 2**30:.0f} GiB")
    corpus = pack_corpus(waves, storage, min_length=crop).to(device)
    sync(device)
    setup = {"storage": storage, "samples": total, "setup_s": time.perf_counter() - start}
    batcher = DeviceBatcher(
        corpus,
        [config.data.labels.index(c.label) for c in clips],
        crop,
        config.optim.batch_size,
        config.augment,
        config.audio.sample_rate,
        config.seed,
        config.data.crops_per_clip,
        config.data.balance,
    )
    return batcher, setup


def new_input_rate(batcher: DeviceBatcher, device, seconds: float, rounds: int = 7) -> dict:
    """Input-only clips/s of the DeviceBatcher: whole epochs until ``seconds`` pass, per round."""
    state = {"epoch": 0}

    def some_epochs() -> int:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            state["epoch"] += 1
            n += sum(w.shape[0] for w, _ in batcher.epoch(state["epoch"]))
        return n

    list(batcher.epoch(0))  # warm-up: allocator, CUDA kernels
    return timed_rounds(some_epochs, device, rounds)


# ----------------------------------------------------------------------------- model


@dataclasses.dataclass
class Step:
    """One optimiser step of the training loop's model part, as vgd.train does it."""

    model: torch.nn.Module
    spec_augment: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    precision: str
    grad_clip: float

    def __call__(self, wave: torch.Tensor, label: torch.Tensor) -> None:
        with autocast(self.device, self.precision):
            feats = self.spec_augment.features(self.model.frontend, wave)
            loss = torch.nn.functional.cross_entropy(self.model.cnn(feats).float(), label)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()


def make_step(config: TrainConfig, device: torch.device, precision: str) -> Step:
    model = build_model(config.spec).to(device).train()
    o = config.optim
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    spec_augment = SpecAugment(config.augment, config.audio.sample_rate).to(device)
    return Step(model, spec_augment, optimizer, scaler, device, precision, o.grad_clip)


def model_rate(
    step: Step, config: TrainConfig, seconds: float, call: Callable | None = None
) -> dict:
    """Clips/s of model steps on one fixed, pre-made batch: the bound with free input."""
    device, b = step.device, config.optim.batch_size
    wave = 0.1 * torch.randn(b, config.spec.window_samples, device=device)
    label = torch.randint(0, len(config.data.labels), (b,), device=device)
    call = call or step

    def steps() -> int:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            call(wave, label)
            n += b
        return n

    for _ in range(3):
        call(wave, label)
    return timed_rounds(steps, device, 3)


def compiled_rate(
    config: TrainConfig, device: torch.device, precision: str, seconds: float
) -> dict:
    """The model-only bound with the step under torch.compile (on CUDA in reduce-overhead mode,
    which replays CUDA graphs): what kernel-launch overhead costs a small model. A failure to
    compile is reported in the result, not raised: it is what this probe is for."""
    step = make_step(config, device, precision)
    mode = "reduce-overhead" if device.type == "cuda" else "default"
    start = time.perf_counter()
    try:
        result = model_rate(step, config, seconds, call=torch.compile(step.__call__, mode=mode))
    except Exception as e:  # any compiler failure is the finding
        return {"mode": mode, "error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
    return {**result, "mode": mode, "with_compile_s": time.perf_counter() - start}


def fed_rate(step: Step, batcher: DeviceBatcher, seconds: float) -> dict:
    """Clips/s of model steps fed by the DeviceBatcher: the training loop without its trainer."""
    state = {"epoch": 0}

    def some_epochs() -> int:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            state["epoch"] += 1
            for wave, label in batcher.epoch(state["epoch"]):
                step(wave, label)
                n += wave.shape[0]
        return n

    return timed_rounds(some_epochs, step.device, 2)


# ----------------------------------------------------------------------------- end to end
# END-TO-END: times the real vgd.train.train as its API stands when this was written
# (train(config, RunConfig, ...)); adapt here when the trainer's signature changes.


def end_to_end(config: TrainConfig, manifest: str, device: str, threads: int, epochs: int) -> dict:
    """Clips/s of ``vgd.train.train`` over ``epochs`` epochs (its own per-epoch training rate)."""
    from vgd.train import train

    config = apply_overrides(config, {"optim.epochs": epochs})
    run = RunConfig(manifest=manifest, device=device, threads=threads)
    start = time.perf_counter()
    result = train(config, run, progress=False)
    rates = [m["clips_per_s"] for m in result.history]
    return {
        "clips_per_s": statistics.median(rates),
        "range": [min(rates), max(rates)],
        "wall_s": time.perf_counter() - start,
    }


# ----------------------------------------------------------------------------- driver


def corpus_manifest(args: argparse.Namespace, tmp: Path) -> str:
    """--manifest, or a freshly generated synthetic corpus's manifest."""
    if args.manifest:
        return args.manifest
    synth = SynthConfig(speakers=args.speakers, utterances=args.utterances, seed=args.seed)
    generate_corpus(tmp / "synth", synth, progress=False)
    return str(tmp / "synth" / "manifest.csv")


def measure(args: argparse.Namespace, manifest: str, tmp: Path) -> dict[str, Any]:
    """Every measurement, as one report dict."""
    config = apply_overrides(TrainConfig(), {"optim.batch_size": args.batch_size})
    device = resolve_device(args.device)
    precision = resolve_precision("auto", device)
    clips = read_manifest(manifest)
    cache = str(tmp / "cache")
    prefill(AudioCache(cache, config.audio), [c.path for c in clips], progress=False)
    report: dict[str, Any] = {"device": str(device), "precision": precision, "clips": len(clips)}
    report["threads"], report["batch_size"] = torch.get_num_threads(), args.batch_size
    report["old_decode"] = old_input_rate(clips, config, "", device, args.epochs)
    report["old_cache"] = old_input_rate(clips, config, cache, device, args.epochs)
    batcher, report["pack"] = make_batcher(clips, config, device, args.storage)
    report["items_per_epoch"] = len(batcher)
    report["new"] = new_input_rate(batcher, device, args.seconds / 3)
    step = make_step(config, device, precision)
    report["model_only"] = model_rate(step, config, args.seconds)
    report["new_plus_model"] = fed_rate(step, batcher, args.seconds)
    if args.compile:
        report["model_compiled"] = compiled_rate(config, device, precision, args.seconds)
    if args.end_to_end:
        e2e = end_to_end(config, manifest, args.device, args.threads, args.epochs)
        report["end_to_end"] = e2e
    return report


def print_table(report: dict[str, Any]) -> None:
    rows = [
        ("old_decode", "input only: AudioDataset + DataLoader, decoding every read"),
        ("old_cache", "input only: AudioDataset + DataLoader, memory-mapped cache"),
        ("new", "input only: DeviceBatcher"),
        ("model_only", "model only: fwd + SpecAugment + loss + bwd + AdamW, fixed batch"),
        ("new_plus_model", "DeviceBatcher feeding the model step"),
        ("model_compiled", "model only, the step under torch.compile"),
        ("end_to_end", "vgd.train.train (its per-epoch training rate)"),
    ]
    print(
        f"{report['clips']} clips ({report['items_per_epoch']} crops an epoch) on "
        f"{report['device']} ({report['precision']}), {report['threads']} threads, "
        f"batch {report['batch_size']}; packed as {report['pack']['storage']} in "
        f"{report['pack']['setup_s']:.1f} s"
    )
    print(f"{'path':<16} {'median clips/s':>14} {'range over rounds':>19}  what")
    for key, what in rows:
        if key in report and "error" in report[key]:
            print(f"{key:<16} failed: {report[key]['error']}")
        elif key in report:
            r = report[key]
            lo, hi = r["range"]
            print(f"{key:<16} {r['clips_per_s']:>14.0f} {lo:>9.0f}–{hi:<9.0f}  {what}")
    speedup = report["new"]["clips_per_s"] / report["old_cache"]["clips_per_s"]
    print(f"input only, DeviceBatcher / AudioDataset with cache (medians): {speedup:.0f}x")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="", help="manifest CSV (default: a synthetic corpus)")
    p.add_argument("--speakers", type=int, default=40)
    p.add_argument("--utterances", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--epochs", type=int, default=2, help="epochs of the slow paths")
    p.add_argument("--batch-size", type=int, default=TrainConfig().optim.batch_size)
    p.add_argument("--seconds", type=float, default=3.0, help="per timed round of fast paths")
    p.add_argument("--storage", default="auto", choices=["auto", "int16", "float32"])
    p.add_argument("--end-to-end", action="store_true", help="also time vgd.train.train")
    p.add_argument("--compile", action="store_true", help="also the model step under torch.compile")
    p.add_argument("--json", default="", help="write the numbers here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        report = measure(args, corpus_manifest(args, Path(tmp)), Path(tmp))
    print_table(report)
    if args.json:
        atomic_write_json(Path(args.json), report)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
