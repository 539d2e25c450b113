"""vgd adapt: a bias on the second label's logit, fitted on a user's labelled clips, moves the
model's threshold; it lives in the checkpoint's spec, so every command answers with it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import vgd
from conftest import toy_manifest_of, write_corpus
from vgd.adapt import AdaptError, adapt, fit_bias
from vgd.calibration import pooled_probs, window_logits
from vgd.checkpoint import build_model, load_checkpoint, torch_load
from vgd.cli import main
from vgd.config import ModelSpec
from vgd.manifest import read_manifest


def windows(margins: np.ndarray) -> list[np.ndarray]:
    """One window per clip whose log-odds of the second label is ``margin``."""
    return [np.array([[0.0, m]]) for m in margins]


def test_the_bias_undoes_a_shift_of_the_threshold() -> None:
    rng = np.random.default_rng(0)
    targets = np.array([0, 1] * 200)
    margins = np.where(targets == 1, 4.0, -4.0) + rng.normal(0, 1.5, targets.size) + 3.0
    assert fit_bias(windows(margins), targets) == pytest.approx(-3.0, abs=0.4)
    # the temperature comes first: the same logits at T = 2 are half as far off
    assert fit_bias(windows(margins * 2), targets, temperature=2.0) == pytest.approx(-3.0, abs=0.4)


def test_with_two_clips_the_prior_keeps_the_bias_near_zero() -> None:
    targets, margins = np.array([0, 1]), np.array([3.0, 9.0])  # the woman called male
    assert fit_bias(windows(margins), targets, prior_sd=10.0) < -3.0
    assert abs(fit_bias(windows(margins), targets, prior_sd=0.1)) < 0.1


def test_the_model_adds_the_bias_after_the_temperature() -> None:
    spec = dataclasses.replace(ModelSpec(), temperature=2.0)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    wave = torch.randn(2, spec.window_samples)
    with torch.no_grad():
        plain = model(wave)
        model.bias = (0.0, 1.5)
        biased = model(wave)
    assert torch.allclose(biased - plain, torch.tensor([0.0, 1.5]).expand(2, 2))
    with pytest.raises(ValueError, match="bias: needs one value per label"):
        ModelSpec(bias=(1.0,))


def test_adapting_a_model_to_a_shifted_corpus(toy_model, tmp_path) -> None:
    # the same kind of voices, 60 Hz higher: the toy model hears many men as women
    shifted = read_manifest(write_corpus(tmp_path / "high", 12, 2, f0_shift=60.0))
    loaded = load_checkpoint(toy_model)
    fitted = adapt(loaded, shifted)
    assert fitted.speakers == {"female": 6, "male": 6} and fitted.clips == 24
    assert fitted.bias > 0  # toward male
    assert fitted.balanced_accuracy_after > fitted.balanced_accuracy_before
    assert loaded.spec.bias == (0.0, fitted.bias) == loaded.model.bias
    # a second adaptation replaces the first: the logits it fits on carry no bias
    assert adapt(loaded, shifted).bias == fitted.bias
    unreadable = [dataclasses.replace(c, path=str(tmp_path / "gone.wav")) for c in shifted]
    with pytest.raises(AdaptError, match="0 of 24 clips readable"):
        adapt(loaded, unreadable)
    with pytest.raises(AdaptError, match=r"3\+ speakers of each label \(female 2\)"):
        adapt(loaded, [c for c in shifted if c.label == "male" or c.speaker < "spk04"])


def test_vgd_adapt_writes_a_checkpoint_that_predict_answers_with(toy_model, tmp_path, capsys):
    manifest = write_corpus(tmp_path / "high", 12, 2, f0_shift=60.0)
    out = tmp_path / "adapted.pt"
    assert main(["adapt", str(manifest), "--model", str(toy_model), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    adapted, plain = load_checkpoint(out), load_checkpoint(toy_model)
    bias = adapted.spec.bias[1]
    assert f"bias {bias:+.2f} on male" in printed and adapted.metrics["adapted"]["bias"] == bias
    assert adapted.metrics["adapted"]["speakers"] == {"female": 6, "male": 6}
    # predict answers with the bias: its probabilities are the plain model's logits shifted
    clips = read_manifest(manifest)
    logits, _ = window_logits(plain.model, plain.spec, clips, None)
    t = plain.spec.temperature
    expected = pooled_probs([z / t + [0.0, bias] for z in logits], 1.0)
    csv = tmp_path / "p.csv"
    paths = [c.path for c in clips]
    assert main(["predict", *paths, "--model", str(out), "--format", "csv", "--out", str(csv)]) == 0
    rows = [line.split(",") for line in csv.read_text().splitlines()]
    column = rows[0].index("p_male")
    got = np.array([float(r[column]) for r in rows[1:]])
    assert got == pytest.approx(expected[:, 1], abs=1e-3)
    two = tmp_path / "two.csv"
    two.write_text("\n".join(manifest.read_text().splitlines()[:9]) + "\n")  # 2 speakers each
    args = ["--model", str(toy_model), "--out", str(tmp_path / "n.pt")]
    assert main(["adapt", str(two), *args]) == 2
    assert f"vgd: error: {two}: needs 3+ speakers" in capsys.readouterr().err
    # a model never adapted stores no bias: the same file as before the bias existed
    assert "bias" not in torch_load(toy_model)["spec"] and plain.spec.bias == ()
    assert torch_load(out)["spec"]["bias"] == [0.0, bias]
    assert main(["adapt", str(toy_manifest_of(toy_model)), "--out", str(tmp_path / "x.pt"),
                 "--model", str(toy_model)]) == 0  # fmt: skip


def test_the_python_api_adapts_predicts_and_saves(toy_model, tmp_path) -> None:
    manifest = write_corpus(tmp_path / "high", 12, 2, f0_shift=60.0)
    clip = read_manifest(manifest)[1]  # a man, whom the toy model hears as a woman
    model = vgd.load_model(toy_model)
    before = model.predict(clip.path)[0]
    fitted = model.adapt(manifest)
    after = model.predict(clip.path)[0]
    assert after.probs["male"] > before.probs["male"]
    again = vgd.load_model(model.save(tmp_path / "mine.pt"))
    assert again.loaded.spec.bias == (0.0, fitted.bias)
    assert again.predict(clip.path)[0].probs == after.probs
