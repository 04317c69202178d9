"""Q2: transfer learning between CIFAR-100 and CIFAR-10, measured on held-out data.

A run trains one or two stages: the backbone carries over, each task has its own Linear head (the
source head stays as it was, to measure forgetting), each stage gets a fresh Adam and keeps its
epoch of best validation accuracy. The single-stage orders are the from-scratch baselines.

    python q2_transfer/train.py --order c100-c10          # CIFAR-100, then fine-tune on CIFAR-10
    python q2_transfer/train.py --order c10 --seed 1      # baseline: CIFAR-10 from scratch
    python q2_transfer/train.py --order c100-c10 --smoke  # built-in data, small CNN, seconds
    bash scripts/reproduce_q2.sh [--smoke]                # the four runs, then reports/q2.md

Prints one line per epoch, a table per stage and the forgetting of the source task. Metrics, data
layouts, and the departures from the original study and why: see q2_transfer/README.md.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.checkpoint import resume_if_requested, save_checkpoint
from common.cli import (HelpFormatter, add_accel_args, add_common_args, entry_point, fill_defaults,
                        positive_int)
from common.data.images import MEAN_STD, ImageLoader, ImageSet, load_images, stratified_subset
from common.device import autocast_context, use_bf16, use_channels_last
from common.distributed import (DistContext, all_reduce_sum, cleanup, print0, setup_distributed, sync_buffers,
                                wrap_model)
from common.divergence import check_finite_loss
from common.errors import DataError
from common.report import text_table
from common.seed import seed_everything
from common.tracking import start_run
from q2_transfer.models import BACKBONES, TransferNet

PROJECT = "Q2-transfer-learning"


@dataclass(frozen=True)
class Task:
    tag: str          # prefix of the metric names and of the printed lines
    dataset: str      # the real dataset
    smoke_dataset: str  # its built-in stand-in under --smoke


TASKS = {"c10": Task("CIFAR10", "cifar10", "builtin10"),
         "c100": Task("CIFAR100", "cifar100", "builtin100")}
ORDERS = {"c100-c10": ("c100", "c10"), "c10-c100": ("c10", "c100"), "c10": ("c10",), "c100": ("c100",)}

# Defaults: the study's settings, and the --smoke ones (built-in data, seconds on a CPU).
DEFAULTS = {"epochs": 100, "subset_ratio": 1.0, "model": "resnet18"}
SMOKE_DEFAULTS = {"epochs": 3, "subset_ratio": 0.1, "model": "smallcnn"}
EVAL_BATCH_SIZE = 500
CONVERGENCE_FRACTION = 0.9
# A checkpoint's settings must match the resumed command's, or the result would be a mixture.
RESUME_MUST_MATCH = ("order", "model", "epochs", "subset_ratio", "train_size", "test_size", "val_split",
                     "split_seed", "bs", "lr", "seed", "smoke", "augment")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--order", default="c100-c10", choices=sorted(ORDERS),
                        help="stages in training order; c10 and c100 alone are the from-scratch baselines")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help=f"epochs per stage (default {DEFAULTS['epochs']}; "
                             f"{SMOKE_DEFAULTS['epochs']} with --smoke; the original used 20)")
    parser.add_argument("--bs", type=positive_int, default=64, help="batch size (per process under torchrun)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--subset-ratio", type=float, default=None,
                      help=f"stratified fraction of each train split, validation included (default "
                           f"{DEFAULTS['subset_ratio']}; {SMOKE_DEFAULTS['subset_ratio']} with --smoke; "
                           f"the original used 0.1)")
    size.add_argument("--train-size", type=positive_int, default=None,
                      help="a stratified subset of this many images of each train split, validation "
                           "included (instead of --subset-ratio)")
    parser.add_argument("--test-size", type=positive_int, default=None,
                        help="a stratified subset of this many images of each test split (default all)")
    parser.add_argument("--val-split", type=float, default=0.1,
                        help="fraction of the training images held out (stratified) to select the epoch")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="seed of the train/val/test subsets, independent of --seed")
    parser.add_argument("--model", default=None, choices=sorted(BACKBONES),
                        help=f"backbone (default {DEFAULTS['model']}; {SMOKE_DEFAULTS['model']} "
                             f"with --smoke)")
    parser.add_argument("--no-augment", dest="augment", action="store_false",
                        help="train without random crop + flip")
    parser.add_argument("--download", action="store_true",
                        help="fetch missing CIFAR data into --data-root (needs internet)")
    add_common_args(parser)
    add_accel_args(parser)
    args = parser.parse_args(argv)
    fill_defaults(args, DEFAULTS, SMOKE_DEFAULTS)
    if not 0 < args.subset_ratio <= 1 or not 0 < args.val_split < 1:
        parser.error("--subset-ratio must be in (0, 1] and --val-split in (0, 1)")
    if args.lr <= 0:
        parser.error(f"--lr must be positive, got {args.lr}")
    return args


# ---- data ------------------------------------------------------------------------------------

@dataclass
class TaskData:
    task: Task
    dataset: str
    train: ImageSet  # the training images, validation held out
    val: ImageSet
    test: ImageSet


def load_task(task: Task, args: argparse.Namespace) -> TaskData:
    """The task's train subset split into train and validation, and its test split (whole, or a
    --test-size subset). Every subset is stratified and seeded by --split-seed."""
    name = task.smoke_dataset if args.smoke else task.dataset
    train = load_images(name, args.data_root, "train", download=args.download)
    test = load_images(name, args.data_root, "test", download=args.download)
    ratio = args.subset_ratio if args.train_size is None else min(1.0, args.train_size / len(train))
    train = train.subset(stratified_subset(train.labels, ratio, args.split_seed))
    if args.test_size is not None:
        test = test.subset(stratified_subset(test.labels, min(1.0, args.test_size / len(test)),
                                             args.split_seed))
    held_out = torch.zeros(len(train), dtype=torch.bool)
    held_out[stratified_subset(train.labels, args.val_split, args.split_seed)] = True
    if held_out.all() or not held_out.any() or len(test) == 0:
        raise DataError(f"{name}: --val-split {args.val_split:g} of {len(train)} training images holds out "
                        f"{int(held_out.sum())} for validation ({len(test)} test images); raise the subset "
                        f"sizes or change --val-split")
    return TaskData(task, name, train.subset(~held_out), train.subset(held_out), test)


def make_loaders(data: TaskData, args: argparse.Namespace, ctx: DistContext) -> tuple[ImageLoader, ...]:
    """(train, val, test) device-resident loaders. ImageLoader shards the train batches over ranks;
    val and test are cut here into disjoint strided shards (every image counted exactly once over
    all ranks) and evaluated without DDP, so ranks may hold different numbers of batches."""
    mean, std = MEAN_STD[data.dataset]
    channels_last = use_channels_last(args, ctx.device)
    shard = slice(ctx.rank, None, ctx.world_size)
    train = ImageLoader(data.train.images, data.train.labels, args.bs, shuffle=True, augment=args.augment,
                        mean=mean, std=std, device=ctx.device, seed=args.seed, rank=ctx.rank,
                        world_size=ctx.world_size, channels_last=channels_last)
    return train, *(ImageLoader(split.images[shard], split.labels[shard], EVAL_BATCH_SIZE, shuffle=False,
                                augment=False, mean=mean, std=std, device=ctx.device,
                                channels_last=channels_last) for split in (data.val, data.test))


# ---- helpers ---------------------------------------------------------------------------------

def epochs_to_reach(accuracies: list[float], fraction: float = CONVERGENCE_FRACTION) -> int:
    """First epoch (1-based) whose accuracy reaches `fraction` of the best one."""
    target = fraction * max(accuracies)
    return next(epoch for epoch, value in enumerate(accuracies, start=1) if value >= target)


def stage_summary(tag: str, history: list[dict[str, float]]) -> dict[str, Any]:
    """The selected epoch (first best validation accuracy) with its train, val and test accuracy,
    and the epochs until validation accuracy first reached 90% of its best."""
    val = [entry["val_accuracy"] for entry in history]
    selected = val.index(max(val)) + 1
    chosen = history[selected - 1]
    return {f"{tag}_selected_epoch": selected, f"{tag}_train_accuracy": chosen["accuracy"],
            f"{tag}_val_accuracy": chosen["val_accuracy"], f"{tag}_test_accuracy": chosen["test_accuracy"],
            f"{tag}_epochs_to_90pct": epochs_to_reach(val), f"{tag}_epochs": len(history)}


def run_name(args: argparse.Namespace) -> str:
    """E.g. c100-c10-resnet18-e100-sub1-val0.1-seed0 (prefix smoke- under --smoke)."""
    size = f"n{args.train_size}" if args.train_size else f"sub{args.subset_ratio:g}"
    size += f"-test{args.test_size}" if args.test_size else ""
    split = f"-split{args.split_seed}" if args.split_seed else ""
    name = f"{args.order}-{args.model}-e{args.epochs}-{size}-val{args.val_split:g}{split}-seed{args.seed}"
    return f"smoke-{name}" if args.smoke else name


# ---- train / evaluate --------------------------------------------------------------------------

def train_one_epoch(model: torch.nn.Module, loader: ImageLoader, optimizer: torch.optim.Optimizer,
                    ctx: DistContext, run: Any, where: str, bf16: bool = False) -> tuple[float, float]:
    """One pass over `loader`; returns (mean loss, accuracy) over every rank's examples."""
    model.train()
    # Sums stay on the device: reading them each step would be a CPU-GPU sync point.
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
    correct = torch.zeros((), dtype=torch.int64, device=ctx.device)
    count = 0
    bar = tqdm(loader, desc=where, leave=False, disable=not (ctx.is_main and sys.stderr.isatty()))
    for images, labels in bar:
        with autocast_context(ctx.device, bf16):
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach().double() * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        count += len(labels)
    totals = all_reduce_sum([loss_sum.item(), correct.item(), count], ctx)
    mean_loss = check_finite_loss(totals[0] / totals[2], run, where=where)
    return mean_loss, float(totals[1] / totals[2])


@torch.no_grad()
def evaluate(net: torch.nn.Module, loader: Iterable, ctx: DistContext,
             bf16: bool = False) -> tuple[float, float]:
    """(mean loss, accuracy) of `net` on `loader`'s batches, summed over ranks. Called on the
    plain module, not the DDP wrapper: evaluation needs no gradient sync, and ranks may hold
    different numbers of test batches."""
    net.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for images, labels in loader:
        with autocast_context(ctx.device, bf16):
            logits = net(images)
        loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        count += len(labels)
    totals = all_reduce_sum([loss_sum, correct, count], ctx)
    return float(totals[0] / totals[2]), float(totals[1] / totals[2])


def print_results(summary: dict[str, Any], stages: list[TaskData]) -> None:
    """The final fixed-width table: the selected epoch of each stage and its accuracies."""
    rows = []
    splits = ("train", "val", "test")
    for data in stages:
        tag = data.task.tag
        rows.append([tag, data.dataset, len(data.train), len(data.val),
                     f"{summary[f'{tag}_selected_epoch']}/{summary[f'{tag}_epochs']}",
                     *(f"{100 * summary[f'{tag}_{split}_accuracy']:.2f}%" for split in splits),
                     summary[f"{tag}_epochs_to_90pct"]])
    headers = ["stage", "data", "train n", "val n", "selected", *(f"{split} acc" for split in splits),
               "ep. to 90%"]
    print("\n" + text_table(headers, rows, align="llrrrrrrr"))
    if "forgetting" in summary:
        source, target = stages[0].task.tag, stages[1].task.tag
        print(f"forgetting: {source} test acc {100 * summary['source_test_accuracy_before']:.2f}% before "
              f"fine-tuning on {target}, {100 * summary['source_test_accuracy_after']:.2f}% after "
              f"(selected {target} backbone + kept {source} head): "
              f"{100 * summary['forgetting']:+.2f} points lost")


# ---- main ------------------------------------------------------------------------------------

@entry_point
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    seed_everything(args.seed)
    ctx = setup_distributed(args.device)
    # Both tasks' data first: a missing CIFAR-10 should stop the run before hours of CIFAR-100.
    stages = [load_task(TASKS[key], args) for key in ORDERS[args.order]]
    tags = [data.task.tag for data in stages]
    name = run_name(args)
    sizes = {f"{split}_sizes": {data.task.tag: len(getattr(data, split)) for data in stages}
             for split in ("train", "val", "test")}
    run = start_run(args, project=PROJECT, question="q2_transfer", default_name=name,
                    group=name.rsplit("-seed", 1)[0],  # the seeds of one setting together in W&B
                    extra_config={"batch_size": args.bs, "stages": tags, **sizes,
                                  "datasets": {data.task.tag: data.dataset for data in stages}})
    print0(f"order {args.order}: " + " -> ".join(
        f"{data.task.tag} ({data.dataset}, {len(data.train)} train / {len(data.val)} val / "
        f"{len(data.test)} test)"
        for data in stages) + f" | {args.model}, {args.epochs} epochs per stage, batch {args.bs}, "
        f"Adam lr {args.lr:g} | device {ctx.device}, {ctx.world_size} process(es) | run {run.dir}", ctx=ctx)

    bf16 = use_bf16(args, ctx.device)
    loaders = [make_loaders(data, args, ctx) for data in stages]
    checkpoint_dir = run.dir / "checkpoints"
    net = TransferNet(BACKBONES[args.model](), {data.task.tag: data.train.num_classes for data in stages})
    net = net.to(ctx.device)
    if use_channels_last(args, ctx.device):
        net = net.to(memory_format=torch.channels_last)
    # Over every head: heads outside the stage's network get no gradient, so Adam leaves them be.
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    # State that crosses epochs and stages; it travels in every checkpoint.
    state: dict[str, Any] = {"stage": 0, "histories": {tag: [] for tag in tags}, "selected_model": None}
    start_epoch = 1
    checkpoint = resume_if_requested(args, checkpoint_dir / "last.pt", net, optimizer,
                                     must_match=RESUME_MUST_MATCH, map_location=ctx.device)
    if checkpoint is not None:
        state, start_epoch = checkpoint["extra"], checkpoint["epoch"] + 1
        run.rewind(state["stage"] * args.epochs + checkpoint["epoch"])
        print0(f"resuming {run.dir} after stage {state['stage'] + 1} epoch {checkpoint['epoch']}", ctx=ctx)

    # ---- training loop ----
    for index, (data, (train_loader, val_loader, test_loader)) in enumerate(zip(stages, loaders)):
        tag = data.task.tag
        if index < state["stage"]:
            continue  # finished before the checkpoint, whose weights continue from it
        if index > state["stage"]:  # a new stage: fresh optimizer, no epoch selected yet
            optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
            state.update(stage=index, selected_model=None)
            start_epoch = 1
        network = net.for_task(tag)
        model = wrap_model(network, ctx)
        if args.compile:
            model = torch.compile(model)
        history = state["histories"][tag]
        for epoch in range(start_epoch, args.epochs + 1):
            step = index * args.epochs + epoch  # global epoch, counting on across stages
            train_loader.set_epoch(step)
            loss, accuracy = train_one_epoch(model, train_loader, optimizer, ctx, run,
                                             where=f"{tag} epoch {epoch}", bf16=bf16)
            sync_buffers(net, ctx)
            _, val_accuracy = evaluate(network, val_loader, ctx, bf16)
            _, test_accuracy = evaluate(network, test_loader, ctx, bf16)  # a curve; selects nothing
            if not history or val_accuracy > max(entry["val_accuracy"] for entry in history):
                state["selected_model"] = {key: value.clone() for key, value in net.state_dict().items()}
            history.append({"loss": loss, "accuracy": accuracy, "val_accuracy": val_accuracy,
                            "test_accuracy": test_accuracy})
            print0(f"[{tag}] Epoch {epoch}/{args.epochs} | Loss: {loss:.3f} | Acc: {100 * accuracy:.2f}% "
                   f"| Val acc: {100 * val_accuracy:.2f}% | Test acc: {100 * test_accuracy:.2f}%", ctx=ctx)
            run.log({f"{tag}_loss": loss, f"{tag}_accuracy": accuracy, f"{tag}_val_accuracy": val_accuracy,
                     f"{tag}_test_accuracy": test_accuracy, "epoch": step, "stage": index + 1,
                     "stage_epoch": epoch}, step=step)
            if ctx.is_main:
                save_checkpoint(checkpoint_dir / "last.pt", net, optimizer, None, epoch,
                                max(entry["val_accuracy"] for entry in history), args, state)
        # The selected epoch's model is the stage's result: the next stage starts from it.
        net.load_state_dict(state["selected_model"])
        if ctx.is_main:
            selected = stage_summary(tag, history)
            save_checkpoint(checkpoint_dir / f"best_{tag}.pt", net, None, None,
                            selected[f"{tag}_selected_epoch"], selected[f"{tag}_val_accuracy"], args,
                            {"stage": index})
    # ---- end of training loop ----

    summary: dict[str, Any] = {"order": args.order, "stages": tags,
                               "source": tags[0] if len(tags) > 1 else None, "target": tags[-1]}
    for tag in tags:
        summary.update(stage_summary(tag, state["histories"][tag]))
    for key in ("selected_epoch", "train_accuracy", "val_accuracy", "test_accuracy", "epochs_to_90pct"):
        summary[f"target_{key}"] = summary[f"{tags[-1]}_{key}"]
    if len(tags) > 1:
        # The selected target model's backbone with the source head, untouched since stage 1.
        _, after = evaluate(net.for_task(tags[0]), loaders[0][2], ctx, bf16)
        before = summary[f"{tags[0]}_test_accuracy"]
        summary.update(source_test_accuracy_before=before, source_test_accuracy_after=after,
                       forgetting=before - after)
    run.summary(summary)
    columns = ["selected_epoch", "train_accuracy", "val_accuracy", "test_accuracy", "epochs_to_90pct"]
    run.table("stage_results", ["stage", "dataset", *columns],
              [[data.task.tag, data.dataset, *(summary[f"{data.task.tag}_{key}"] for key in columns)]
               for data in stages])
    if ctx.is_main:
        print_results(summary, stages)
    run.finish()
    cleanup(ctx)
    return summary


if __name__ == "__main__":
    main()
