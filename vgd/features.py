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
        bins = round(config.smooth_hz * config.n_fft(sample_rate) / sample_rate)
        self.smooth = bins // 2 * 2 + 1 if bins > 1 else 0  # odd: centred on each bin

    def forward(self, wave: torch.Tensor, spectral: nn.Module | None = None) -> torch.Tensor:
        """``spectral``: a change to the (B, K, F) power spectra before the mel bands (training)."""
        # The STFT and the log need fp32 even when the CNN runs under autocast.
        with torch.autocast(device_type=wave.device.type, enabled=False):
            power = self.mel.spectrogram(wave.float())  # (B, K, F)
            if spectral is not None:
                power = spectral(power)
            if self.smooth:
                power = smooth_frequency(power, self.smooth)
            x = torch.log(self.mel.mel_scale(power) + LOG_EPS)  # (B, M, F)
            x = normalize(x, self.config.normalize)
        return x.unsqueeze(1)  # (B, 1, M, F)

    def frames(self, n_samples: int) -> int:
        return n_samples // self.config.hop_length(self.sample_rate) + 1


def smooth_frequency(power: torch.Tensor, bins: int) -> torch.Tensor:
    """(B, K, F) power spectra, each bin the mean of the ``bins`` (odd) around it: the mean power
    of a band holding one or more harmonics, whatever their spacing (edges padded by copies)."""
    b, k, f = power.shape
    rows = power.transpose(1, 2).reshape(b * f, 1, k)
    rows = torch.nn.functional.pad(rows, (bins // 2, bins // 2), mode="replicate")
    return torch.nn.functional.avg_pool1d(rows, bins, stride=1).reshape(b, f, k).transpose(1, 2)


def normalize(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Mean/variance normalisation of (B, M, F) log-mels: per mel band, per utterance or none."""
    if mode == "none":
        return x
    dims = (-1,) if mode == "channel" else (-2, -1)
    mean = x.mean(dim=dims, keepdim=True)
    std = x.std(dim=dims, keepdim=True)
    return (x - mean) / (std + 1e-5)


class SpecAugment(nn.Module):
    """Frequency and time masks on (B, 1, M, F) features, each example masked independently,
    and, when the config asks, the pitch shift on the spectra they come from."""

    def __init__(self, config: AugmentConfig, sample_rate: int):
        super().__init__()
        self.pitch = PitchShift(config, sample_rate) if config.pitch_active else None
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

    def features(self, frontend: LogMel, wave: torch.Tensor) -> torch.Tensor:
        """Training features of (B, T) waves: pitch shifted in the spectra, then masked."""
        return self(frontend(wave, spectral=self.pitch))


ENVELOPE_QUEFRENCY_S = 0.002  # below a 500 Hz voice's period: the spectral envelope, not its pitch


class PitchShift(nn.Module):
    """The harmonics of (B, K, F) power spectra stretched by a random factor, their envelope kept.

    A source-filter split by cepstral liftering: the smooth envelope (the vocal tract's formants)
    stays where it is and the fine structure (the pitch's harmonics) moves. It makes voices whose
    pitch is typical of the other gender, which read speech has few of: the errors that were
    left were women with low voices and men with high ones.
    """

    def __init__(self, config: AugmentConfig, sample_rate: int):
        super().__init__()
        self.pct, self.prob = config.pitch_pct, config.pitch_prob
        self.lifter = max(1, round(ENVELOPE_QUEFRENCY_S * sample_rate))

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        rows = power.shape[0]
        u = torch.rand(rows, device=power.device)
        shifted = torch.rand(rows, device=power.device) < self.prob
        factor = torch.where(shifted, 1 + self.pct / 100 * (2 * u - 1), torch.ones_like(u))
        out = shift_harmonics(power, factor, self.lifter)
        return torch.where(shifted[:, None, None], out, power)


def shift_harmonics(power: torch.Tensor, factor: torch.Tensor, lifter: int) -> torch.Tensor:
    """(B, K, F) power spectra with each row's harmonics at ``factor`` (B,) times their frequency
    and the envelope below quefrency ``lifter`` (samples) unchanged."""
    log = torch.log(power + LOG_EPS)
    cepstrum = torch.fft.irfft(log, dim=1)  # (B, 2(K - 1), F), real and even
    n = cepstrum.shape[1]
    q = torch.arange(n, device=power.device)
    low = ((q < lifter) | (q > n - lifter)).to(log.dtype)[:, None]
    envelope = torch.fft.rfft(cepstrum * low, dim=1).real
    fine = log - envelope
    k = power.shape[1]
    bins = torch.arange(k, device=power.device, dtype=log.dtype)
    source = (bins[None, :] / factor[:, None].to(log.dtype)).clamp(max=k - 1)  # (B, K)
    below = source.floor().long()
    above = (below + 1).clamp(max=k - 1)
    w = (source - below)[:, :, None]
    idx = below[:, :, None].expand_as(fine)
    warped = fine.gather(1, idx) * (1 - w) + fine.gather(1, above[:, :, None].expand_as(fine)) * w
    return (torch.exp(envelope + warped) - LOG_EPS).clamp(min=0)
