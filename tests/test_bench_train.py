"""scripts/bench_train.py's compile probe: it measures the step it was given, and a compiler
that fails becomes the probe's finding instead of ending the benchmark."""

from __future__ import annotations

import pytest
import torch

from conftest import load_script
from vgd.config import TrainConfig, apply_overrides

SMALL = {"model.width": 4, "model.n_blocks": 2, "window.seconds": 0.5, "optim.batch_size": 4}


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_train")


def test_the_model_bound_times_the_call_it_is_given(bench):
    config = apply_overrides(TrainConfig(), SMALL)
    step = bench.make_step(config, torch.device("cpu"), "fp32")
    calls = []
    result = bench.model_rate(step, config, 0.05, call=lambda w, y: calls.append(w.shape))
    assert calls and set(calls) == {(4, config.spec.window_samples)}
    assert result["clips_per_s"] > 0


def test_a_compiler_failure_is_reported_not_raised(bench, monkeypatch, capsys):
    def broken(fn, mode):
        def run(*args):
            raise RuntimeError("no C++ compiler\nmore detail")

        return run

    monkeypatch.setattr(bench.torch, "compile", broken)
    config = apply_overrides(TrainConfig(), SMALL)
    result = bench.compiled_rate(config, torch.device("cpu"), "fp32", 0.05)
    assert result == {"mode": "default", "error": "RuntimeError: no C++ compiler"}
    bench.print_table(
        {
            "clips": 1,
            "items_per_epoch": 1,
            "device": "cpu",
            "precision": "fp32",
            "threads": 1,
            "batch_size": 4,
            "pack": {"storage": "float32", "setup_s": 0.0},
            "new": {"clips_per_s": 10.0, "range": [9.0, 11.0]},
            "old_cache": {"clips_per_s": 5.0, "range": [5.0, 5.0]},
            "model_compiled": result,
        }
    )
    assert "model_compiled   failed: RuntimeError: no C++ compiler" in capsys.readouterr().out
