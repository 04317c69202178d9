"""Test-wide settings: no W&B network or files unless a test asks, a non-interactive
matplotlib backend, and a small torch thread count so that tests run alike on any machine."""

import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seed, so a failure reproduces."""
    torch.manual_seed(0)
    yield
