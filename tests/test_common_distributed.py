"""common.distributed: sharding, and a real 2-process torchrun run on the CPU (gloo)."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from common.distributed import all_reduce_sum, setup_distributed, shard_indices
from tests.ddp_worker import make_data
from tests.torchrun import run_torchrun, torchrun_failure


def test_shards_partition_the_indices_with_equal_counts():
    shards = [shard_indices(10, rank, 3) for rank in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]  # ceil(10 / 3) each, padded by wrapping
    counts = torch.bincount(torch.cat(shards), minlength=10)
    assert counts.min() == 1 and counts.sum() == 12  # every index once, 2 wrapped around twice
    # By hand: positions 0..11 map to 0..9,0,1 and are dealt out round-robin.
    assert [s.tolist() for s in shards] == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]


def test_single_process_is_a_no_op():
    ctx = setup_distributed("cpu")
    assert not ctx.enabled and ctx.is_main and ctx.world_size == 1
    assert all_reduce_sum([1.0, 2.0], ctx).tolist() == [1.0, 2.0]


@pytest.mark.xdist_group("torchrun")
def test_torchrun_two_ranks_train_the_same_model_and_agree(tmp_path):
    out = tmp_path / "result"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).parent / "ddp_worker.py"), str(out)]
    proc = run_torchrun(cmd, env=env, timeout=180)
    assert proc.returncode == 0, torchrun_failure(proc)
    ranks = [json.loads(Path(f"{out}.rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == 2
    assert ranks[0]["weight"] == ranks[1]["weight"] and ranks[0]["bias"] == ranks[1]["bias"]
    assert ranks[0]["mean_loss"] == ranks[1]["mean_loss"]
    assert ranks[0]["running"] == ranks[1]["running"] == [1.0, 1.0, 1.0]  # rank 0's buffer, by sync_buffers

    # Reference: one process, full batch. Two equal shards with DDP's gradient averaging make
    # the same steps as the full-batch mean loss, so the weights and metrics must match.
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = make_data()
    for _ in range(5):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    assert torch.allclose(torch.tensor(ranks[0]["weight"]), model.weight.detach(), atol=1e-6)
    with torch.no_grad():
        logits = model(x)
        assert abs(ranks[0]["mean_loss"] - torch.nn.functional.cross_entropy(logits, y).item()) < 1e-6
        assert abs(ranks[0]["accuracy"] - (logits.argmax(1) == y).float().mean().item()) < 1e-9
