"""Worker for tests/test_common_distributed.py, launched by torchrun with 2 CPU processes.

Trains a linear model for a few full-data steps with DistributedDataParallel, each rank on its
shard, and writes what the test compares: the final weights and the all-reduced loss/accuracy.
"""

import json
import sys

import torch

from common.distributed import (all_reduce_sum, cleanup, setup_distributed, shard_indices, sync_buffers,
                                wrap_model)


def make_data():
    generator = torch.Generator().manual_seed(123)
    x = torch.randn(64, 5, generator=generator)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def main(out_path: str) -> None:
    ctx = setup_distributed("cpu")
    torch.manual_seed(0)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model = wrap_model(torch.nn.Linear(5, 2), ctx)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = make_data()
    shard = shard_indices(len(x), ctx.rank, ctx.world_size)
    for _ in range(5):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[shard]), y[shard])
        loss.backward()  # DDP averages the gradients over ranks
        optimizer.step()
    with torch.no_grad():
        logits = model(x[shard])
        loss_sum = torch.nn.functional.cross_entropy(logits, y[shard], reduction="sum").item()
        correct = (logits.argmax(1) == y[shard]).sum().item()
    totals = all_reduce_sum([loss_sum, correct, len(shard)], ctx)
    module = getattr(model, "module", model)
    # A buffer that differs per rank, as batch-norm statistics do after the last training step.
    module.register_buffer("running", torch.full((3,), float(ctx.rank + 1)))
    sync_buffers(model, ctx)
    result = {
        "running": module.running.tolist(),
        "rank": ctx.rank, "world_size": ctx.world_size,
        "weight": module.weight.tolist(), "bias": module.bias.tolist(),
        "mean_loss": (totals[0] / totals[2]).item(), "accuracy": (totals[1] / totals[2]).item(),
    }
    with open(f"{out_path}.rank{ctx.rank}.json", "w") as handle:
        json.dump(result, handle)
    cleanup(ctx)


if __name__ == "__main__":
    main(sys.argv[1])
