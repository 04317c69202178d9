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
def _seeded_single_thread():
    """Every test starts from the same global seed, so a failure reproduces, and with one torch
    thread: the tests use tiny tensors, where a second intra-op thread costs more in
    synchronisation than it saves (several times more on a busy machine), and pytest-xdist
    already runs one test process per core. Scripts whose --smoke sets the thread count cannot
    leak it into the next test."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)
