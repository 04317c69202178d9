"""One seed for python's `random`, numpy and torch (CPU and every CUDA device)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed every generator a training script touches.

    `deterministic=True` also asks cuDNN and torch for deterministic kernels. That costs speed
    on GPUs (no cuDNN autotuning, slower scatter/index kernels), so it is off by default; on the
    CPU the same seed already gives the same numbers.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # Needed by cuBLAS for deterministic matmuls (read when the first handle is created).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
