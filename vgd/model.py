"""The voice-gender network: log-mel front end + small CNN; it knows nothing of files or labels."""

from __future__ import annotations

import math

import torch
from torch import nn

from vgd.config import FeatureConfig, ModelConfig
from vgd.encoder import EmbeddingProbe, load_speaker_encoder
from vgd.features import LogMel


class ConvBlock(nn.Sequential):
    """conv → batch norm → ReLU → 2×2 max-pool → dropout; halves both feature-map axes."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dropout: float):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Dropout(dropout),
        )


class CNN(nn.Module):
    """(B, 1, M, F) features → (B, n_classes) logits."""

    def __init__(self, config: ModelConfig, n_classes: int):
        super().__init__()
        self.config = config
        chans = [1, *config.channels()]
        self.blocks = nn.Sequential(
            *(ConvBlock(a, b, config.kernel_size, config.dropout) for a, b in zip(chans, chans[1:]))
        )
        pooled = chans[-1] * (2 if config.pooling == "avgmax" else 1)
        self.head = nn.Linear(pooled, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            # Channels-last convolutions ran 2.5-3x faster on the CPU here (oneDNN); training
            # takes the layout its run settings say (RunConfig.memory_format).
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.blocks(x)  # (B, C, M / 2^N, F / 2^N)
        return self.head(self.pool(x))  # (B, n_classes)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Global pooling over frequency and time: (B, C, m, f) → (B, C) or (B, 2C)."""
        if self.config.pooling == "avg":
            return x.mean(dim=(2, 3))
        if self.config.pooling == "max":
            return x.amax(dim=(2, 3))
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


class VoiceGenderNet(nn.Module):
    """(B, T) raw waveform at ``sample_rate`` → (B, n_classes) logits, on any device."""

    def __init__(
        self,
        features: FeatureConfig,
        model: ModelConfig,
        sample_rate: int,
        n_classes: int,
        temperature: float = 1.0,
        bias: tuple[float, ...] = (),
    ):
        super().__init__()
        self.frontend = LogMel(features, sample_rate)
        self.cnn = CNN(model, n_classes)
        # With a speaker encoder (vgd.encoder): its probe is fitted after the CNN trains, and
        # from then on the model answers the mean of the two's probabilities.
        self.encoder = load_speaker_encoder() if model.encoder != "none" else None
        self.probe = EmbeddingProbe(n_classes) if self.encoder is not None else None
        # Calibration: logits are divided by it, so every caller gets calibrated probabilities.
        # 1 while training; fitted on validation afterwards (vgd.calibration).
        self.temperature = temperature
        # Added to each label's logit after the temperature: a threshold fitted on a user's own
        # labelled recordings (vgd.adapt); () when none was.
        self.bias = tuple(bias)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        logits = self.cnn(self.frontend(wave))
        # Training first: reading the flag of a model on CUDA waits for the GPU, once a batch.
        if not self.training and self.probe is not None and bool(self.probe.fitted):
            both = torch.stack([logits.float(), self.probe(self.encoder(wave)).float()])
            logits = torch.logsumexp(torch.log_softmax(both, dim=2), dim=0) - math.log(2)
        logits = logits if self.temperature == 1.0 else logits / self.temperature
        return logits + logits.new_tensor(self.bias) if self.bias else logits


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
