"""The Python API: which model load_model takes, and predict/segment on files, folders and audio
in memory, which must score exactly as the same audio read from a file."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

import vgd
from conftest import toy_manifest_of
from vgd import signals
from vgd.api import load_model, resolve_model
from vgd.audio import AudioError, as_waveform
from vgd.checkpoint import CheckpointError
from vgd.formats import format_of
from vgd.predict import PredictConfig
from vgd.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def builtin():
    return load_model("builtin")


@pytest.fixture
def recordings(tmp_path):
    """A 16 kHz mono file and a 44.1 kHz stereo file of two voices."""
    low = signals.synthetic_voice(3.0, "male", 1, seed=1)
    high = signals.synthetic_voice(4.5, "female", 0, seed=2)
    sf.write(tmp_path / "mono16k.flac", low, 16000)
    up = AF.resample(torch.from_numpy(high), 16000, 44100).numpy()
    sf.write(tmp_path / "stereo44k.wav", np.stack([up, 0.6 * up], axis=1), 44100)
    return tmp_path


@pytest.mark.parametrize("name", ["mono16k.flac", "stereo44k.wav"])
def test_audio_in_memory_scores_as_the_same_audio_read_from_a_file(builtin, recordings, name):
    path = recordings / name
    wave, rate = sf.read(path, dtype="float32")
    as_tensor = torch.from_numpy(wave.T.copy())  # torchaudio's (channels, frames) layout
    from_file, from_array, from_pair, from_tensor = builtin.predict(
        [path, wave, (wave, rate), as_tensor], sample_rate=rate
    )
    assert from_file.error is None and from_file.speech_s > 0.5
    assert from_file.label in ("female", "male", "unknown")
    for p in (from_array, from_pair, from_tensor):
        assert p.error is None and p.windows == from_file.windows
        for label in builtin.labels:
            assert abs(p.probs[label] - from_file.probs[label]) <= 1e-6
        assert p.speech_s == pytest.approx(from_file.speech_s, abs=1e-6)
    assert from_array.path == "<audio 1>" and from_file.path == str(path)


def test_in_memory_segments_match_the_file_s(builtin, recordings):
    path = recordings / "stereo44k.wav"
    wave, rate = sf.read(path, dtype="float32")
    [from_file] = builtin.segment(path)
    [from_array] = builtin.segment(wave, sample_rate=rate)
    assert from_array.error is None and from_array.segments
    assert [(s.start, s.end, s.label) for s in from_array.segments] == [
        (s.start, s.end, s.label) for s in from_file.segments
    ]


def test_bad_inputs_are_error_rows_and_the_rest_go_on(builtin, recordings):
    preds = builtin.predict(
        [np.array(["not", "audio"]), recordings / "missing.wav", recordings / "mono16k.flac"],
        sample_rate=16000,
    )
    errors = {p.path: p.error for p in preds if p.error}
    assert errors["<audio 0>"].startswith("not audio")
    assert errors[str(recordings / "missing.wav")].startswith("missing")
    assert [p.label is not None for p in preds if not p.error] == [True]
    with pytest.raises(ValueError, match="sample rate"):
        builtin.predict(np.zeros(16000, dtype=np.float32))
    silent = builtin.predict(np.zeros(32000, dtype=np.float32), sample_rate=16000)
    assert silent[0].label == "nonspeech"


def test_waveform_layouts_and_integer_pcm():
    frames = np.arange(-4, 4, dtype=np.int16) * 4096
    w = as_waveform(np.stack([frames, frames]), 8000)  # (channels, frames) → (frames, channels)
    assert w.samples.shape == (8, 2) and w.samples.dtype == np.float32
    assert w.samples[0, 0] == pytest.approx(-0.5)
    with pytest.raises(AudioError, match="sample rate"):
        as_waveform(np.zeros(10), 0)
    with pytest.raises(AudioError, match="shape"):
        as_waveform(np.zeros((2, 3, 4)), 16000)


def test_segments_write_themselves_in_the_format_their_extension_names(builtin, recordings):
    [rec] = builtin.segment(recordings / "mono16k.flac")
    for name in ("a.csv", "a.json", "a.rttm", "a.TextGrid"):
        out = rec.write(recordings / "out" / name)
        assert out.read_text() == rec.to(format_of(name))
    assert json.loads((recordings / "out" / "a.json").read_text())[0]["path"] == rec.path
    assert (recordings / "out" / "a.TextGrid").read_text().startswith('File type = "ooTextFile"')
    with pytest.raises(ValueError, match="extension"):
        rec.write(recordings / "out" / "a.txt")


def _promote(registry_root, toy_model):
    run = registry_root.parent / "run"
    run.mkdir()
    shutil.copy(toy_model, run / "model.pt")
    (run / "metrics.json").write_text(json.dumps({"balanced_accuracy": 0.5, "accuracy": 0.5}))
    shutil.copy(toy_manifest_of(toy_model), registry_root.parent / "manifest.csv")
    return Registry(registry_root).promote(
        run / "model.pt", workdir=registry_root.parent, manifest="manifest.csv"
    )


def test_load_model_takes_the_promoted_model_then_the_built_in_one(tmp_path, toy_model):
    root = tmp_path / "models"
    assert resolve_model(registry=root).kind == "builtin"  # nothing promoted
    version = _promote(root, toy_model)
    promoted = resolve_model(registry=root)
    assert (promoted.kind, promoted.version, promoted.path) == (
        "promoted",
        version.name,
        version.model,
    )
    assert resolve_model(version.name, registry=root).kind == "version"
    assert resolve_model("builtin", registry=root).kind == "builtin"
    assert resolve_model(toy_model, registry=root) == vgd.ModelSource(toy_model, "path")
    model = load_model(registry=root)
    assert model.loaded.path == str(version.model) and model.device.type == "cpu"
    with pytest.raises(CheckpointError, match="nope.pt"):
        load_model(tmp_path / "nope.pt", registry=root)


def test_the_package_exports_the_api_lazily():
    code = "import sys, vgd.config; print('vgd.api' in sys.modules, callable(vgd.load_model))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    assert {"load_model", "Model", "Prediction", "FileSegments", "PredictConfig"} <= set(dir(vgd))
    assert vgd.PredictConfig is PredictConfig


def test_python_m_vgd_and_version():
    for cmd in (
        [sys.executable, "-m", "vgd", "--version"],
        [sys.executable, "-m", "vgd.cli", "--version"],
    ):
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
        assert out.stdout.strip() == f"vgd {vgd.__version__}"
