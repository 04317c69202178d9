"""Device autodetection with an explicit override (never a hard-coded `.cuda()`)."""

from __future__ import annotations

import ctypes
import ctypes.util

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
    """bf16 autocast on `device` when enabled (CUDA, or a CPU that the caller chose to run in bf16:
    see `use_bf16`); a no-op context otherwise."""
    import contextlib

    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def use_bf16(args, device: torch.device) -> bool:
    """Whether a run trains under bf16 autocast: on CUDA unless --no-bf16; on the CPU only with
    --cpu-bf16 (common.cli.add_accel_args), which pays on CPUs with AMX or AVX512-BF16 units."""
    if device.type == "cuda":
        return bool(args.bf16)
    return device.type == "cpu" and bool(getattr(args, "cpu_bf16", False)) and bool(args.bf16)


def use_channels_last(args, device: torch.device) -> bool:
    """Channels-last goes with bf16 autocast: on CUDA unless --no-channels-last, on the CPU with
    --cpu-bf16 (oneDNN's bf16 convolutions want that layout)."""
    return bool(args.channels_last) and (device.type == "cuda" or use_bf16(args, device))


def keep_freed_memory() -> bool:
    """Ask glibc to serve large buffers from the heap and never trim it, so that freed buffers
    are reused without page faults (a CPU training step frees and allocates its activations
    every step). Returns False where that is not possible (no glibc). Process-wide."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return False
    if mallopt is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    # 32 MiB is the largest mmap threshold glibc accepts on 64-bit machines.
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))
