"""A pretrained speaker encoder and the linear probe that reads gender from its embeddings.

The CNN learns from the speakers of its training corpora alone; a speaker encoder trained for
speaker verification has heard thousands more, and gender is what its embeddings separate
first. With ``model.encoder: ge2e`` the model embeds each window with the frozen encoder, a
logistic regression fitted on the training clips' windows after the CNN trains reads gender
from the embedding, and the model answers the mean of the two's probabilities
(docs/real-voices-two-corpora.md, round 27).

The weights are Resemblyzer 0.1.4's GE2E encoder (Apache-2.0; ``pretrained/
SPEAKER_ENCODER_LICENSE``), shipped in the package and loaded with ``weights_only=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import numpy as np
import torch
import torchaudio.transforms as AT
from torch import nn

FORMAT = "vgd-speaker-encoder-1"
SAMPLE_RATE = 16000
N_MELS, HIDDEN, LAYERS = 40, 256, 3
PARTIAL_FRAMES = 160  # 1.6 s at a 10 ms hop: the length the encoder was trained on
LEVEL_DBFS = -30.0  # each window is brought to this RMS level, as the encoder's training was


class EncoderError(RuntimeError):
    """The shipped speaker encoder's file is missing or damaged (a broken install)."""


class SpeakerEncoder(nn.Module):
    """(B, T) waveform at 16 kHz → (B, 256) unit-length speaker embeddings (frozen weights).

    Each window is set to -30 dBFS, cut into 1.6 s partials evenly spaced from its start to its
    end, and its embedding is the normalised mean of theirs.
    """

    def __init__(self):
        super().__init__()
        self.mel = AT.MelSpectrogram(
            SAMPLE_RATE,
            n_fft=400,
            hop_length=160,
            n_mels=N_MELS,
            norm="slaney",
            mel_scale="slaney",
            pad_mode="constant",
        )
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, HIDDEN)
        self.requires_grad_(False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=wave.device.type, enabled=False):
            wave = wave.float()
            rms = wave.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-9)
            frames = self.mel(wave * (10 ** (LEVEL_DBFS / 20) / rms)).transpose(1, 2)
            starts = partial_starts(frames.shape[1])
            parts = torch.stack([frames[:, s : s + PARTIAL_FRAMES] for s in starts], 1)
            _, (hidden, _) = self.lstm(parts.flatten(0, 1))
            e = torch.relu(self.linear(hidden[-1])).view(wave.shape[0], len(starts), -1)
            e = nn.functional.normalize(e, dim=2).mean(dim=1)
            return nn.functional.normalize(e, dim=1)


def partial_starts(n_frames: int) -> list[int]:
    """1.6 s partials covering a window: evenly spaced, the first at 0, the last at its end."""
    n = max(1, -(-n_frames // PARTIAL_FRAMES))
    return [int(round(s)) for s in np.linspace(0, max(0, n_frames - PARTIAL_FRAMES), n)]


def load_speaker_encoder() -> SpeakerEncoder:
    """The shipped GE2E encoder, its weights read without unpickling code; built without
    touching torch's random state, so a model with it initialises its CNN as one without."""
    path = resources.files("vgd") / "pretrained" / "speaker_encoder.pt"
    with resources.as_file(path) as file:
        try:
            data = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:  # a missing or damaged file in a broken install
            raise EncoderError(f"{file}: the speaker encoder cannot be loaded ({e})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise EncoderError(f"{file}: not a vgd speaker encoder")
    with torch.random.fork_rng(devices=[]):
        encoder = SpeakerEncoder()
    missing, unexpected = encoder.load_state_dict(data["state_dict"], strict=False)
    if unexpected or [k for k in missing if not k.startswith("mel.")]:
        raise EncoderError(f"{file}: its weights do not fit the encoder")
    return encoder.eval()


class EmbeddingProbe(nn.Module):
    """(B, 256) embeddings → (B, n_classes) logits: standardised, then linear. Until
    :func:`fit_probe` has fitted it, ``fitted`` is false and the model does not consult it."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(HIDDEN))
        self.register_buffer("scale", torch.ones(HIDDEN))
        self.register_buffer("fitted", torch.tensor(False))
        with torch.random.fork_rng(devices=[]):
            self.linear = nn.Linear(HIDDEN, n_classes)
        self.requires_grad_(False)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.linear((embeddings - self.mean) / self.scale)


def fit_probe(
    probe: EmbeddingProbe,
    embeddings: Sequence[np.ndarray],
    targets: Sequence[int],
    weights: Sequence[float],
    c: float,
) -> None:
    """Fit ``probe`` by L2-regularised logistic regression (inverse strength ``c``) on each
    clip's window embeddings, a clip's ``weights`` shared by its windows."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate(embeddings).astype(np.float64)
    y = np.concatenate([[t] * len(e) for t, e in zip(targets, embeddings)])
    w = np.concatenate([[wt / len(e)] * len(e) for wt, e in zip(weights, embeddings)])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    reg = LogisticRegression(C=c, max_iter=5000)
    reg.fit((x - mean) / scale, y, sample_weight=w * len(w) / w.sum())
    n = probe.linear.out_features
    weight, bias = np.zeros((n, HIDDEN)), np.zeros(n)
    if n == 2 and reg.coef_.shape[0] == 1:  # sklearn's binary form: the logit of class 1
        weight[1], bias[1] = reg.coef_[0], reg.intercept_[0]
    else:
        weight[reg.classes_], bias[reg.classes_] = reg.coef_, reg.intercept_
    with torch.no_grad():
        probe.mean.copy_(torch.from_numpy(mean))
        probe.scale.copy_(torch.from_numpy(scale))
        probe.linear.weight.copy_(torch.from_numpy(weight))
        probe.linear.bias.copy_(torch.from_numpy(bias))
        probe.fitted.fill_(True)
