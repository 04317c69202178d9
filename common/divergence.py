"""The divergence guard: a NaN or inf loss stops training with one clear line, records
`"diverged": true` in the run summary, and makes the script exit non-zero (status 3 through
`common.cli.entry_point`)."""

from __future__ import annotations

import math
from typing import Any

import torch

from common.errors import DivergenceError


def check_finite_loss(loss: torch.Tensor | float, run: Any = None, where: str = "") -> float:
    """Return the loss as a float, or stop the run if it is NaN or inf.

    Reading the value is a CPU-GPU sync point; call it where the loop reads the loss anyway
    (for the progress bar or the epoch average)."""
    value = float(loss.detach().item()) if isinstance(loss, torch.Tensor) else float(loss)
    if not math.isfinite(value):
        if run is not None:
            run.summary({"diverged": True, "diverged_at": where, "diverged_loss": str(value)})
            run.finish(exit_code=3)
        raise DivergenceError(f"training diverged: loss is {value} at {where or 'this step'}; "
                              f"the run summary records diverged=true (try a lower learning rate)")
    return value
