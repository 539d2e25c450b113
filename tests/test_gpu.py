"""The device contract on CUDA: train → checkpoint → load → evaluate → predict, AMP, cross-device.

Skipped (and reported as skipped) without CUDA; scripts/gpu_check.sh runs them on a GPU machine.
Tolerances: cuDNN convolutions use TF32 by default (10-bit mantissa, relative error ~1e-3) and pick
algorithms by batch shape, so the same clip can differ by ~1e-4..1e-3 in probability between
batch compositions or between the CPU and CUDA; 5e-3 allows that and still catches a wrong
window, a wrong device or a wrong pooling, which move probabilities by far more.
"""

import numpy as np
import pytest
import torch

from conftest import toy_config, toy_run, voice
from vgd.audio import save_audio
from vgd.checkpoint import load_checkpoint
from vgd.evaluate import evaluate
from vgd.predict import predict_paths
from vgd.train import load_clips, save_outputs, train

pytestmark = pytest.mark.gpu
TOL = 5e-3


def _probs(preds, labels):
    return np.array([[p.probs[x] for x in labels] for p in preds])


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu_clips")
    for i, f0 in enumerate((95, 120, 190, 215, 105)):
        save_audio(root / f"{i}.wav", voice(f0, 1.5 + i, seed=i), 16000)
    return root


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_train_on_cuda_then_evaluate_and_predict_anywhere(
    toy_manifest, tmp_path, clips_dir, precision
):
    config = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 4})
    run = toy_run(toy_manifest, tmp_path, device="cuda", precision=precision)
    result = train(config, run, progress=False)
    assert next(result.model.parameters()).device.type == "cuda"
    assert all(np.isfinite(h["train_loss"]) for h in result.history)
    path = save_outputs(result, tmp_path / "run")["model"]

    on_gpu = load_checkpoint(path, device="cuda")
    on_cpu = load_checkpoint(path, device="cpu")
    assert on_gpu.device.type == "cuda" and on_cpu.device.type == "cpu"
    test = [c for c in load_clips(config, run.manifest) if c.split == "test"]
    gpu_eval, cpu_eval = evaluate(on_gpu, test), evaluate(on_cpu, test)
    assert np.abs(gpu_eval.probs - cpu_eval.probs).max() <= TOL

    gpu_pred = predict_paths(on_gpu, [clips_dir], progress=False)
    cpu_pred = predict_paths(on_cpu, [clips_dir], progress=False)
    assert np.abs(_probs(gpu_pred, on_gpu.labels) - _probs(cpu_pred, on_cpu.labels)).max() <= TOL


def test_a_cpu_trained_model_runs_on_cuda(toy_model, clips_dir):
    cpu = predict_paths(load_checkpoint(toy_model, "cpu"), [clips_dir], progress=False)
    gpu = predict_paths(load_checkpoint(toy_model, "cuda"), [clips_dir], progress=False)
    assert np.abs(_probs(cpu, ("female", "male")) - _probs(gpu, ("female", "male"))).max() <= TOL


def test_batch_composition_changes_cuda_results_only_within_tf32_error(toy_model, clips_dir):
    loaded = load_checkpoint(toy_model, "cuda")
    one = predict_paths(loaded, [clips_dir], batch_size=1, progress=False)
    many = predict_paths(loaded, [clips_dir], batch_size=64, progress=False)
    assert np.abs(_probs(one, loaded.labels) - _probs(many, loaded.labels)).max() <= TOL


def test_auto_picks_cuda(toy_model):
    assert load_checkpoint(toy_model, "auto").device.type == "cuda"
    assert torch.cuda.is_available()


def test_a_model_with_the_speaker_encoder_trains_and_answers_alike_on_cuda(toy_manifest, tmp_path):
    config = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 2, "model.encoder": "ge2e"})
    run = toy_run(toy_manifest, tmp_path, device="cuda", precision="fp16")
    result = train(config, run, progress=False)
    assert bool(result.model.probe.fitted)
    path = save_outputs(result, tmp_path / "run")["model"]
    on_gpu, on_cpu = load_checkpoint(path, device="cuda"), load_checkpoint(path, device="cpu")
    test = [c for c in load_clips(config, run.manifest) if c.split == "test"]
    assert np.abs(evaluate(on_gpu, test).probs - evaluate(on_cpu, test).probs).max() <= TOL
