"""Shared fixtures: tiny generated audio, so the suite needs no downloads and no ../shared."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from vgd.audio import save_audio
from vgd.config import RunConfig, TrainConfig, apply_overrides
from vgd.manifest import Clip, write_manifest

# The toy tones carry pitch only, in a few dozen training steps: a finer front end with per-band
# normalisation learns them reliably (the defaults are tuned on speech-like audio).
TOY_FEATURES = {"features.normalize": "channel", "features.n_mels": 64, "features.hop_ms": 10.0}


def voice(f0: float, seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a little noise: enough of a "voice" for plumbing tests."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.28)) / k for k in range(1, 12))
    return (0.1 * wave + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def load_script(name: str):
    """A script of scripts/ as a module, so tests call its functions and its main()."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a dataclass looks its module up there while it is built
    spec.loader.exec_module(module)
    return module


def write_toy_corpus(
    root: Path, speakers: int = 12, utterances: int = 2, seconds: float = 1.5
) -> Path:
    """Low-pitched "male" and high-pitched "female" tone speakers; returns the manifest path."""
    clips = []
    for s in range(speakers):
        label = "female" if s % 2 else "male"
        f0 = (180 if label == "female" else 100) + 5 * s
        for u in range(utterances):
            path = root / label / f"spk{s:02d}_{u}.wav"
            save_audio(path, voice(f0, seconds, seed=s * 100 + u), 16000)
            clips.append(Clip(str(path), label, f"spk{s:02d}", seconds, "toy"))
    return write_manifest(clips, root / "manifest.csv")


def toy_run(manifest: Path, tmp_path: Path, **extra) -> RunConfig:
    """Run settings for a toy training run: its manifest and a cache under ``tmp_path``."""
    return RunConfig(manifest=str(manifest), cache_dir=str(tmp_path / "cache"), **extra)


def toy_config(manifest: Path, tmp_path: Path, **extra) -> TrainConfig:
    """A recipe that learns the toy voices in a few seconds; ``extra`` overrides by path."""
    overrides = {
        "window.seconds": 1.0,
        "optim.epochs": 4,
        "optim.batch_size": 8,
        "optim.patience": 0,
        "model.width": 8,
        **TOY_FEATURES,
        "split.val_fraction": 0.2,
        "split.test_fraction": 0.2,
    }
    return apply_overrides(TrainConfig(), {**overrides, **extra})


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``gpu`` are skipped, and reported as skipped, where CUDA is absent."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run scripts/gpu_check.sh on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def toy_manifest(tmp_path: Path) -> Path:
    return write_toy_corpus(tmp_path / "toy")


@pytest.fixture(scope="session")
def toy_model(tmp_path_factory) -> Path:
    """A checkpoint trained for a few seconds on the toy corpus (its manifest beside it)."""
    from vgd.train import save_outputs, train

    root = tmp_path_factory.mktemp("toy_model")
    manifest = write_toy_corpus(root / "toy", speakers=12, utterances=6)
    config = apply_overrides(
        TrainConfig(),
        {
            "window.seconds": 1.0,
            "optim.epochs": 6,
            "optim.batch_size": 8,
            "model.width": 8,
            **TOY_FEATURES,
            "split.val_fraction": 0.2,
            "split.test_fraction": 0.2,
        },
    )
    run = RunConfig(manifest=str(manifest))
    return save_outputs(train(config, run, progress=False), root / "run")["model"]


def toy_manifest_of(model: Path) -> Path:
    """The manifest the ``toy_model`` checkpoint was trained on (a checkpoint holds no paths)."""
    return model.parent.parent / "toy" / "manifest.csv"


def write_corpus(root: Path, speakers: int, utterances: int, f0_shift: float) -> Path:
    """A toy corpus whose manifest names no corpus (the folder names it when pooled)."""
    clips = []
    for s in range(speakers):
        label = "female" if s % 2 else "male"
        f0 = (180 if label == "female" else 100) + 5 * s + f0_shift
        for u in range(utterances):
            path = root / f"spk{s:02d}_{u}.wav"
            save_audio(path, voice(f0, 1.5, seed=s * 100 + u), 16000)
            clips.append(Clip(str(path), label, f"spk{s:02d}", 1.5, ""))
    return write_manifest(clips, root / "manifest.csv")
