"""The log-mel front end, a module inside the model so a checkpoint maps raw waveforms to logits.

This is the only mel implementation in vgd: training, evaluation, prediction and the plots all
call it.
"""

from __future__ import annotations

import torch
import torchaudio.transforms as AT
from torch import nn

from vgd.config import AugmentConfig, FeatureConfig

LOG_EPS = 1e-6


class LogMel(nn.Module):
    """(B, T) waveform at ``sample_rate`` → (B, 1, n_mels, frames) normalised log-mel energies."""

    def __init__(self, config: FeatureConfig, sample_rate: int):
        super().__init__()
        self.config = config
        self.sample_rate = sample_rate
        self.mel = AT.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=config.n_fft(sample_rate),
            win_length=config.win_length(sample_rate),
            hop_length=config.hop_length(sample_rate),
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            power=2.0,
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        # The STFT and the log need fp32 even when the CNN runs under autocast.
        with torch.autocast(device_type=wave.device.type, enabled=False):
            x = torch.log(self.mel(wave.float()) + LOG_EPS)  # (B, M, F)
            x = normalize(x, self.config.normalize)
        return x.unsqueeze(1)  # (B, 1, M, F)

    def frames(self, n_samples: int) -> int:
        return n_samples // self.config.hop_length(self.sample_rate) + 1


def normalize(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Mean/variance normalisation of (B, M, F) log-mels: per mel band, per utterance or none."""
    if mode == "none":
        return x
    dims = (-1,) if mode == "channel" else (-2, -1)
    mean = x.mean(dim=dims, keepdim=True)
    std = x.std(dim=dims, keepdim=True)
    return (x - mean) / (std + 1e-5)


class SpecAugment(nn.Module):
    """Frequency and time masks on (B, 1, M, F) features, each example masked independently."""

    def __init__(self, config: AugmentConfig):
        super().__init__()
        masks: list[nn.Module] = []
        if config.freq_mask_width > 0:
            masks += [
                AT.FrequencyMasking(config.freq_mask_width, iid_masks=True)
            ] * config.freq_masks
        if config.time_mask_width > 0:
            masks += [AT.TimeMasking(config.time_mask_width, iid_masks=True)] * config.time_masks
        self.masks = nn.ModuleList(masks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Features are zero-mean after normalisation, so a zero mask is a "mean" mask.
        for mask in self.masks:
            x = mask(x)
        return x
