"""common.checkpoint and common.divergence: atomic writes, resume to identical numbers, the
divergence guard."""

import argparse
import json
import math

import pytest
import torch

from common.atomic import atomic_write_text
from common.checkpoint import load_checkpoint, resume_if_requested, save_checkpoint
from common.divergence import check_finite_loss
from common.errors import DataError, DivergenceError
from common.tracking import start_run


def build():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                torch.nn.Linear(16, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    return model, optimizer, scheduler


def train_epochs(model, optimizer, scheduler, epochs):
    """Each epoch draws fresh random data and dropout masks from the global RNG, so a resumed
    run only matches if the RNG state was restored too."""
    for _ in epochs:
        x = torch.randn(32, 4)
        y = (x.sum(1) > 0).long()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        scheduler.step()


def test_resume_ends_with_the_same_numbers(tmp_path):
    model, optimizer, scheduler = build()
    train_epochs(model, optimizer, scheduler, range(4))
    uninterrupted = [p.detach().clone() for p in model.parameters()]

    model, optimizer, scheduler = build()
    train_epochs(model, optimizer, scheduler, range(2))
    save_checkpoint(tmp_path / "last.pt", model, optimizer, scheduler, epoch=2, best_metric=0.5)
    torch.manual_seed(999)  # a new process would start from another RNG state
    model, optimizer, scheduler = build()
    state = load_checkpoint(tmp_path / "last.pt", model, optimizer, scheduler)
    assert state["epoch"] == 2 and state["best_metric"] == 0.5
    train_epochs(model, optimizer, scheduler, range(state["epoch"], 4))
    for a, b in zip(uninterrupted, model.parameters()):
        assert torch.equal(a, b)
    assert scheduler.get_last_lr()[0] == pytest.approx(0.1 * 0.7 ** 4)


def test_missing_or_corrupt_checkpoint_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="could not be read"):
        load_checkpoint(tmp_path / "bad.pt")


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    atomic_write_text(target, "old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_divergence_guard_records_and_raises(tmp_path, bad):
    args = argparse.Namespace(out_dir=str(tmp_path), run_name=None, wandb_mode="disabled",
                              wandb_project=None, resume=False)
    run = start_run(args, project="p", question="q", default_name="r")
    assert check_finite_loss(torch.tensor(0.25), run) == 0.25
    with pytest.raises(DivergenceError, match="diverged"):
        check_finite_loss(torch.tensor(bad), run, where="epoch 3 step 7")
    summary = json.loads((run.dir / "summary.json").read_text())
    assert summary["diverged"] is True and summary["diverged_at"] == "epoch 3 step 7"


def test_resume_refuses_other_settings_before_loading_any_weight(tmp_path):
    saved = torch.nn.Linear(3, 2)
    args = argparse.Namespace(resume=True, width=2, seed=0, epochs=5)
    save_checkpoint(tmp_path / "last.pt", saved, args=args)
    wider = torch.nn.Linear(3, 4)  # load_state_dict would raise a size-mismatch RuntimeError
    before = wider.weight.detach().clone()
    other = argparse.Namespace(resume=True, width=4, seed=0, epochs=9)
    with pytest.raises(DataError, match=r"--width 2 \(now 4\)") as error:
        resume_if_requested(other, tmp_path / "last.pt", wider, must_match=("width", "seed"))
    assert "--seed" not in str(error.value) and "--epochs" not in str(error.value)  # only what must match
    assert torch.equal(wider.weight, before)
    # The same settings (epochs may differ: a run is resumed to a later end) load the weights.
    same = argparse.Namespace(resume=True, width=2, seed=0, epochs=9)
    fresh = torch.nn.Linear(3, 2)
    state = resume_if_requested(same, tmp_path / "last.pt", fresh, must_match=("width", "seed"))
    assert state["args"]["epochs"] == 5 and torch.equal(fresh.weight, saved.weight)
    assert resume_if_requested(argparse.Namespace(resume=False), tmp_path / "last.pt", fresh) is None
