"""Self-describing checkpoints, written atomically, and `--resume`.

A checkpoint holds the model, optimizer and scheduler states, the epoch it finished, the best
metric so far, the script's arguments, any extra state the script needs, and the RNG states of
python, numpy and torch (CPU and CUDA). Restoring all of them makes a resumed run continue with
the same random stream, so it ends with the same numbers as an uninterrupted one (on the same
device; CUDA kernels may add their own nondeterminism).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from common.atomic import atomic_torch_save
from common.errors import DataError


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def rng_state() -> dict[str, Any]:
    """Snapshot of every random generator a training loop uses."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a snapshot taken by `rng_state()`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    epoch: int = 0, best_metric: float | None = None, args: Any = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temp file, fsync, os.replace) and return its path."""
    state = {
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "best_metric": best_metric,
        "args": dict(vars(args)) if args is not None and hasattr(args, "__dict__") else args,
        "extra": extra or {},
        "rng": rng_state(),
    }
    return atomic_torch_save(state, path)


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    map_location: str | torch.device = "cpu", restore_rng: bool = True) -> dict[str, Any]:
    """Load a checkpoint into the given objects and return the whole checkpoint dict."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint {path} not found; run without --resume to start afresh")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise DataError(f"checkpoint {path} could not be read ({type(exc).__name__}: {exc})") from exc
    return restore(state, model, optimizer, scheduler, restore_rng)


def restore(state: dict[str, Any], model: torch.nn.Module | None = None,
            optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
            restore_rng: bool = True) -> dict[str, Any]:
    """Put a loaded checkpoint's states into the given objects; returns the checkpoint."""
    if model is not None:
        unwrap(model).load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng and state.get("rng") is not None:
        set_rng_state(state["rng"])
    return state


def resume_if_requested(args: Any, path: str | os.PathLike, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                        must_match: Sequence[str] = (),
                        map_location: str | torch.device = "cpu",
                        restore_rng: bool = True) -> dict[str, Any] | None:
    """With `args.resume`, load `path` into the given objects and return the checkpoint (None when
    not resuming). The checkpoint's recorded arguments named in `must_match` are compared with the
    command's BEFORE any weights are loaded: a checkpoint written with other settings (another
    width, another seed, ...) is refused in one line naming them, instead of failing inside
    `load_state_dict` or, worse, continuing as a mixture of two runs.

    A missing checkpoint under --resume is an error, not a silent fresh start; under
    `--resume auto` it means a fresh start (None)."""
    mode = getattr(args, "resume", False)
    if not mode or (mode == "auto" and not Path(path).is_file()):
        return None
    state = load_checkpoint(path, map_location=map_location, restore_rng=False)
    recorded = state.get("args") or {}
    differing = [key for key in must_match if recorded.get(key) != getattr(args, key, None)]
    if differing:
        flags = ", ".join(f"--{key.replace('_', '-')} {recorded.get(key)!r} "
                          f"(now {getattr(args, key, None)!r})" for key in differing)
        raise DataError(f"--resume: {path} was written with {flags}; resume with the same flags "
                        f"or start afresh without --resume")
    return restore(state, model, optimizer, scheduler, restore_rng)
