"""Device autodetection with an explicit override (never a hard-coded `.cuda()`)."""

from __future__ import annotations

import torch

from common.errors import DataError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str = "auto") -> torch.device:
    """`auto` -> cuda if available, else mps, else cpu. Asking for an unavailable device is an
    error rather than a silent fallback, so a GPU run never quietly trains on the CPU."""
    if name not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DataError("--device cuda was requested but CUDA is not available; use --device auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise DataError("--device mps was requested but MPS is not available; use --device auto or cpu")
    return torch.device(name)


def autocast_context(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA when enabled; a no-op context elsewhere (CPU stays float32)."""
    import contextlib

    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
