"""Device and precision choice: CUDA when present, mixed precision there, fp32 on the CPU."""

from __future__ import annotations

import contextlib

import torch

from vgd.config import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → the first CUDA device if there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → bf16 on CUDA that supports it, else fp16 on CUDA, fp32 on the CPU."""
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast for fp16/bf16; a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def resolve_memory_format(name: str, device: torch.device) -> torch.memory_format:
    """``auto`` → channels-last on the CPU (oneDNN's convolutions and pooling ran about 1.35x
    faster in training here), the default layout elsewhere (not measured)."""
    if name == "auto":
        name = "channels_last" if device.type == "cpu" else "contiguous"
    return torch.channels_last if name == "channels_last" else torch.contiguous_format
