"""vgd.encoder: the shipped speaker encoder, its probe, and a model that answers with both."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import toy_config, toy_run, voice
from vgd.checkpoint import load_checkpoint
from vgd.config import ConfigError, ModelConfig, TrainConfig, apply_overrides
from vgd.encoder import EmbeddingProbe, fit_probe, load_speaker_encoder, partial_starts
from vgd.train import save_outputs, train


@pytest.fixture(scope="module")
def encoder():
    return load_speaker_encoder()


def test_embeddings_are_unit_length_and_deaf_to_the_level(encoder):
    wave = torch.from_numpy(np.stack([voice(120, 3.0, seed=1), voice(220, 3.0, seed=2)]))
    e = encoder(wave)
    assert e.shape == (2, 256)
    assert torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(encoder(wave * 0.05), e, atol=1e-4)  # 26 dB quieter: the same
    assert not torch.allclose(e[0], e[1], atol=1e-2)  # two voices: two embeddings


def test_weights_are_the_shipped_ones_and_frozen(encoder):
    again = load_speaker_encoder()
    for (name, a), b in zip(encoder.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    assert not any(p.requires_grad for p in encoder.parameters())
    assert encoder.lstm.weight_ih_l0.abs().sum() > 0  # loaded, not left at zero


def test_building_the_encoder_leaves_the_random_state_alone():
    torch.manual_seed(3)
    load_speaker_encoder()
    EmbeddingProbe(2)
    after = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(torch.rand(1), after)


def test_partials_cover_a_window_end_to_end():
    assert partial_starts(301) == [0, 141]
    assert partial_starts(160) == [0]
    assert partial_starts(100) == [0]


def test_the_probe_learns_a_direction_and_its_weights_shape():
    rng = np.random.default_rng(0)
    emb = [rng.normal(0, 1, (3, 256)) + (2.0 if t else -2.0) * np.eye(256)[0] for t in (0, 1) * 10]
    targets = [0, 1] * 10
    probe = EmbeddingProbe(2)
    assert not bool(probe.fitted)
    fit_probe(probe, emb, targets, [1.0] * 20, c=1.0)
    assert bool(probe.fitted)
    logits = probe(torch.from_numpy(np.concatenate(emb)).float())
    pred = logits.argmax(dim=1).numpy()
    assert (pred == np.repeat(targets, 3)).mean() == 1.0
    assert torch.equal(probe.linear.weight[0], torch.zeros(256))  # class 0's logit is the zero


def test_config_refuses_an_unknown_encoder():
    with pytest.raises(ConfigError, match="model.encoder"):
        ModelConfig(encoder="wav2vec")
    with pytest.raises(ConfigError, match="model.encoder_c"):
        ModelConfig(encoder="ge2e", encoder_c=0)
    with pytest.raises(ConfigError, match="16 kHz"):
        apply_overrides(
            TrainConfig(),
            {"model.encoder": "ge2e", "audio.sample_rate": 8000, "features.f_max": 3800},
        )
    eight_khz = {"audio.sample_rate": 8000, "features.f_max": 3800}
    assert apply_overrides(TrainConfig(), eight_khz).model.encoder == "none"


@pytest.mark.slow
def test_a_model_with_the_encoder_answers_the_mean_of_both(toy_manifest, tmp_path):
    cfg = toy_config(toy_manifest, tmp_path, **{"optim.epochs": 2, "model.encoder": "ge2e"})
    plain = train(
        toy_config(toy_manifest, tmp_path, **{"optim.epochs": 2}),
        toy_run(toy_manifest, tmp_path),
        progress=False,
    )
    result = train(cfg, toy_run(toy_manifest, tmp_path), progress=False)
    model = result.model.eval()
    assert bool(model.probe.fitted)
    # The encoder does not change what the CNN learns: its history and weights are the plain one's.
    assert [h["val_loss"] for h in result.history] == [h["val_loss"] for h in plain.history]
    cnn = {k: v for k, v in model.state_dict().items() if k.startswith("cnn.")}
    assert all(torch.equal(v, plain.model.state_dict()[k]) for k, v in cnn.items())
    wave = torch.from_numpy(np.stack([voice(110, 1.0, seed=7), voice(210, 1.0, seed=8)]))
    t = model.temperature
    both = (
        torch.softmax(model.cnn(model.frontend(wave)), 1)
        + torch.softmax(model.probe(model.encoder(wave)), 1)
    ) / 2
    assert torch.allclose(torch.softmax(model(wave) * t, 1), both, atol=1e-5)
    paths = save_outputs(result, tmp_path / "run")
    loaded = load_checkpoint(paths["model"])
    assert torch.allclose(loaded.model(wave), model(wave), atol=1e-5)
    state = torch.load(paths["model"], weights_only=True)["state_dict"]
    assert not any(k.startswith("encoder.") for k in state)  # vgd ships them, not each file
    assert paths["model"].stat().st_size < 1_000_000


def test_the_fused_model_runs_under_mixed_precision_and_answers_in_float32():
    from vgd.config import FeatureConfig
    from vgd.device import autocast
    from vgd.model import VoiceGenderNet

    model = VoiceGenderNet(FeatureConfig(), ModelConfig(encoder="ge2e"), 16000, 2).eval()
    rng = np.random.default_rng(1)
    fit_probe(
        model.probe, [rng.normal(0, 1, (2, 256)) for _ in range(8)], [0, 1] * 4, [1.0] * 8, 1.0
    )
    wave = torch.from_numpy(np.stack([voice(120, 3.0, seed=3), voice(230, 3.0, seed=4)]))
    with torch.no_grad():
        full = model(wave)
        with autocast(torch.device("cpu"), "bf16"):
            mixed = model(wave)
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed, full, atol=0.1)


def test_a_training_step_never_reads_the_probe_flag():
    # On CUDA reading the flag waits for the GPU: a training batch must not pay that.
    from vgd.config import FeatureConfig
    from vgd.model import VoiceGenderNet

    class Unread:
        def __bool__(self):
            raise AssertionError("the probe's flag was read")

    model = VoiceGenderNet(FeatureConfig(), ModelConfig(encoder="ge2e"), 16000, 2)
    del model.probe._buffers["fitted"]
    model.probe.fitted = Unread()
    wave = torch.from_numpy(np.stack([voice(120, 1.0, seed=3), voice(230, 1.0, seed=4)]))
    assert model.train()(wave).shape == (2, 2)  # the CNN's logits alone
    with pytest.raises(AssertionError, match="flag was read"), torch.no_grad():
        model.eval()(wave)  # answering asks whether the probe is fitted


def test_a_kept_last_epoch_is_validated_fused_and_fitted_once(toy_manifest, tmp_path, monkeypatch):
    import vgd.train

    fits = []
    real = vgd.train.fit_model_probe
    monkeypatch.setattr(vgd.train, "fit_model_probe", lambda *a: fits.append(1) or real(*a))
    overrides = {"optim.epochs": 2, "model.encoder": "ge2e", "optim.select": "last"}
    cfg = toy_config(toy_manifest, tmp_path, **overrides)
    seen = []
    result = train(cfg, toy_run(toy_manifest, tmp_path), callbacks=[seen.append], progress=False)
    first, last = result.history
    assert not any(k.startswith("cnn_") for k in first)
    # what a callback (a search's trial) sees at the last epoch: the fused model's scores
    assert seen[-1]["val_loss"] == last["val_loss"] != last["cnn_val_loss"]
    assert seen[-1]["last_val_balanced_accuracy"] == last["val_balanced_accuracy"]
    assert "cnn_val_balanced_accuracy" in last
    # fitted at the last epoch, and not again by finish (the same probe ships)
    assert len(fits) == 1 and bool(result.model.probe.fitted)


def test_runs_that_share_an_embedding_cache_embed_each_clip_once(toy_manifest, tmp_path):
    from vgd.manifest import read_manifest
    from vgd.model import VoiceGenderNet
    from vgd.probe import fit_model_probe

    cfg = toy_config(toy_manifest, tmp_path, **{"model.encoder": "ge2e"})
    spec = cfg.spec
    model = VoiceGenderNet(spec.features, spec.model, spec.audio.sample_rate, 2)
    calls = []
    model.encoder.register_forward_hook(lambda *_: calls.append(1))
    clips = read_manifest(str(toy_manifest))
    cache = {}
    fit_model_probe(model, spec, clips[:-2], None, 1.0, cache)
    first = len(calls)
    fit_model_probe(model, spec, clips[2:], None, 1.0, cache)
    assert len(calls) - first == 2  # only the 2 clips the first run did not have
    cached = model.probe.state_dict()
    fit_model_probe(model, spec, clips[2:], None, 1.0)  # no cache: every clip embedded afresh
    assert all(torch.equal(v, model.probe.state_dict()[k]) for k, v in cached.items())
