"""DistributedDataParallel set-up from torchrun's environment, and the small helpers that make
one training loop work on 1 or N processes.

    torchrun --nproc_per_node=2 q4_normalization/train.py --norm bn

Without torchrun (no WORLD_SIZE in the environment) everything here is a cheap no-op, so the
same script runs as a single process. Backend: nccl on CUDA, gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.distributed as dist

from common.device import pick_device


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistContext:
    """Initialise the process group when launched by torchrun; pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(device=pick_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device)
    if chosen.type == "cuda":
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
        backend = "nccl"
    else:
        chosen = torch.device("cpu")  # mps has no collective backend; gloo on the CPU
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=chosen)


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """DDP around `model` when distributed; the model itself otherwise."""
    if not ctx.enabled:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def all_reduce_sum(values: Sequence[float] | torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum `values` over all ranks (float64, on the rank's device for nccl). Reduce sums and
    counts, then divide, so that averages are exact when shards have different sizes."""
    tensor = torch.as_tensor(values, dtype=torch.float64)
    if not ctx.enabled:
        return tensor
    tensor = tensor.to(ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu()


def shard_indices(n: int, rank: int, world_size: int) -> torch.Tensor:
    """Rank `rank`'s share of range(n), strided; every rank gets the same count (indices wrap
    around, like DistributedSampler) so collective calls stay in step."""
    per_rank = -(-n // world_size)
    indices = torch.arange(per_rank * world_size) % max(n, 1)
    return indices[rank::world_size]


def broadcast_object(obj, ctx: DistContext):
    """Rank 0's `obj` on every rank."""
    if not ctx.enabled:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def sync_buffers(model: torch.nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics): DDP broadcasts them at the
    start of a forward pass, so after the last training step each rank holds what it updated itself.
    Call it before evaluating, so every shard is scored by the model rank 0 checkpoints. A wrapped
    model (DDP, torch.compile) holds the inner module's buffers, so either may be passed."""
    if ctx.enabled:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def cleanup(ctx: DistContext) -> None:
    """Leave the process group; every rank waits for the others first, so that no rank tears down
    gloo while another still uses it (a 2-rank CPU run once aborted at exit with "terminate called
    without an active exception" after its work was done)."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def print0(*args, ctx: DistContext | None = None, **kwargs) -> None:
    """print() on rank 0 only."""
    if ctx is None or ctx.is_main:
        print(*args, **kwargs)
