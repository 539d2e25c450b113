"""Front end and CNN: shapes, finiteness, devices, and the capacity to fit a batch."""

import pytest
import torch

from vgd.config import AugmentConfig, FeatureConfig, ModelConfig
from vgd.features import LogMel, SpecAugment, normalize
from vgd.model import VoiceGenderNet, count_parameters


def test_logmel_shape_and_normalisation():
    f = FeatureConfig(n_mels=40, hop_ms=10, normalize="channel")
    x = LogMel(f, 16000)(torch.randn(3, 16000))
    assert x.shape == (3, 1, 40, 101)
    assert torch.allclose(x.mean(dim=-1), torch.zeros(3, 1, 40), atol=1e-4)
    assert torch.isfinite(x).all()


def test_logmel_of_digital_silence_is_finite():
    assert torch.isfinite(LogMel(FeatureConfig(), 16000)(torch.zeros(1, 8000))).all()


@pytest.mark.parametrize("mode", ["channel", "utterance", "none"])
def test_normalize_modes(mode):
    x = torch.randn(2, 8, 50) * 3 + 5
    y = normalize(x, mode)
    if mode == "none":
        assert torch.equal(x, y)
    else:
        assert abs(float(y.mean())) < 1e-4


def test_gain_invariance_with_normalisation():
    fe = LogMel(FeatureConfig(normalize="utterance"), 16000)
    w = torch.randn(1, 16000)
    assert torch.allclose(fe(w), fe(w * 10), atol=1e-3)


@pytest.mark.parametrize(
    "n_blocks,kernel,pooling", [(1, 3, "avg"), (4, 5, "max"), (6, 7, "avgmax")]
)
def test_network_maps_waveforms_to_logits(n_blocks, kernel, pooling):
    m = VoiceGenderNet(FeatureConfig(), ModelConfig(n_blocks, 8, kernel, 0.1, pooling), 16000, 2)
    out = m(torch.randn(4, 24000))
    assert out.shape == (4, 2) and torch.isfinite(out).all()
    assert count_parameters(m) > 0


def test_inference_layout_gives_the_training_layout_output():
    torch.manual_seed(0)
    net = VoiceGenderNet(FeatureConfig(), ModelConfig(), 16000, 2).eval()
    wave = torch.randn(3, 16000) * 0.1
    feats = net.frontend(wave)
    layered = net.cnn.head(net.cnn.pool(net.cnn.blocks(feats)))  # default memory layout
    assert torch.allclose(net(wave), layered, atol=1e-5)


def test_wider_means_more_parameters():
    small = VoiceGenderNet(FeatureConfig(), ModelConfig(width=8), 16000, 2)
    big = VoiceGenderNet(FeatureConfig(), ModelConfig(width=16), 16000, 2)
    assert count_parameters(big) > 3 * count_parameters(small)


def test_specaugment_masks_bands_and_frames():
    x = torch.ones(8, 1, 64, 200)
    y = SpecAugment(
        AugmentConfig(freq_masks=2, freq_mask_width=10, time_masks=2, time_mask_width=30), 16000
    )(x)
    assert y.shape == x.shape and (y == 0).any() and (y == 1).any()
    assert torch.equal(SpecAugment(AugmentConfig(freq_masks=0, time_masks=0), 16000)(x), x)


def test_overfits_one_batch():
    torch.manual_seed(0)
    m = VoiceGenderNet(FeatureConfig(), ModelConfig(n_blocks=3, width=8, dropout=0.0), 16000, 2)
    wave = torch.randn(16, 8000)
    label = torch.arange(16) % 2
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(m(wave), label)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    assert loss.item() < 0.05
    assert (m(wave).argmax(1) == label).all()
