"""Q4: ResNet-(6n+2) on CIFAR-10 with six normalizations written from scratch (and torch's BN).

Reproduces the normalization study: ResNet-14 on CIFAR-10 split 40k/10k/10k, SGD, early stopping
on validation accuracy, each norm with the report's learning-rate schedule.

    python q4_normalization/train.py --norm bin --bs 8          # the canonical invocation
    python q4_normalization/train.py --norm ln --smoke          # built-in data, seconds on a CPU
    bash scripts/reproduce_q4.sh [--smoke]                      # every run, then reports/q4.md
    python q4_normalization/train.py --norm gn --recipe converge --lr 0.1 --threads 1   # to convergence

Prints one line per epoch, then accuracy, macro F1 and micro F1 on train, val and test with the
best checkpoint; writes metrics, figures and checkpoints to runs/q4_normalization/<run>/ and W&B.
A diverged run exits with status 3. Schedules, data, outputs, and the departures from the report
and why: see q4_normalization/README.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from common.checkpoint import load_checkpoint, resume_if_requested, save_checkpoint, set_rng_state, unwrap
from common.cli import (HelpFormatter, add_accel_args, add_common_args, add_threads_arg, entry_point, fail,
                        fill_defaults)
from common.data.images import BUILTIN_DATASETS, MEAN_STD, ImageLoader, load_images, train_val_split
from common.device import autocast_context, keep_freed_memory, use_bf16, use_channels_last
from common.distributed import (DistContext, all_reduce_sum, broadcast_object, cleanup, print0,
                                setup_distributed, sync_buffers, wrap_model)
from common.divergence import check_finite_loss
from common.errors import DataError
from common.metrics import count_parameters, f1_scores
from common.report import text_table
from common.seed import seed_everything
from common.tracking import finished_summary, run_dir_for, start_run
from q4_normalization.norms import NORMS, BatchInstanceNorm2d, clip_rho_, param_groups
from q4_normalization.resnet import ResNet

PROJECT = "Q4-normalization"
QUANTILES = (0.01, 0.20, 0.80, 0.99)
EVAL_BATCH_SIZE = 500


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule: `kind` is constant, exponential (lr * gamma**(epoch-1)), step
    (lr * gamma**(milestones passed); "after epoch 50" = from epoch 51 on) or cosine (per step)."""

    lr: float
    kind: str = "constant"
    gamma: float = 0.1
    milestones: tuple[int, ...] = ()


# The report's schedule for each norm (see the module docstring).
REPORT_SCHEDULES = {
    "nn": Schedule(0.001),
    "bn": Schedule(1.0, "exponential", gamma=0.96),
    "torch_bn": Schedule(1.0, "exponential", gamma=0.96),
    "in": Schedule(1.0, "step", gamma=0.1, milestones=(50,)),
    "bin": Schedule(1.0, "step", gamma=0.1, milestones=(30,)),
    "ln": Schedule(0.01),
    "gn": Schedule(0.1, "step", gamma=0.1, milestones=(20,)),
}
# Recipe-level defaults; flags override them, --smoke shrinks data and model. `cpu` is the
# recipe of the real-data table made on a 2-core CPU (q4_normalization/README.md, "The CPU
# recipe"): a 15-epoch budget, so warm-up + cosine, label smoothing and no decay on the
# normalization and bias parameters, a peak lr per norm picked on validation (CPU_LR), scaled
# linearly with the batch size from batch 128.
RECIPES = {
    "report": {"epochs": 100, "patience": 15, "weight_decay": 1e-4, "augment": False, "nesterov": False,
               "label_smoothing": 0.0, "warmup": 0.0, "decay_norm_bias": True, "lr_scaling": "none",
               "compile": False},
    "modern": {"epochs": 60, "patience": 0, "weight_decay": 5e-4, "augment": True, "nesterov": True,
               "label_smoothing": 0.0, "warmup": 0.0, "decay_norm_bias": True, "lr_scaling": "none",
               "compile": False},
    # torch.compile: a training step in about half the time on one CPU thread (benchmarks/),
    # against a minute or two of compiling per run; not under --smoke, where compiling would
    # take longer than the run.
    "cpu": {"epochs": 15, "patience": 0, "weight_decay": 5e-4, "augment": True, "nesterov": True,
            "label_smoothing": 0.1, "warmup": 0.1, "decay_norm_bias": False, "lr_scaling": "linear",
            "compile": True},
    # Training to convergence on a CPU (q4_normalization/README.md, "The convergence recipe"): the
    # cpu recipe's regularisation, the wsd schedule on one fixed budget for every norm (warm-up, a
    # constant peak lr, a linear cool-down to 0 over the last fifth; 60 epochs), checked to be long
    # enough by a second cool-down branched off at three quarters of the budget (--budget-check),
    # and bf16 autocast on the CPU, which halves a step's time on AMX hardware.
    "converge": {"epochs": 60, "patience": 0, "weight_decay": 5e-4, "augment": True, "nesterov": True,
                 "label_smoothing": 0.1, "warmup": 0.0, "decay_norm_bias": False, "lr_scaling": "linear",
                 "compile": True, "cpu_bf16": True},
}
# The cpu recipe's peak learning rate per norm at batch 128, picked on validation accuracy by the
# learning-rate sweep of scripts/reproduce_q4.sh (q4_normalization/select_lr.py; the sweep's runs
# are in results/runs/q4_lr_sweep, and a test checks these are its picks). torch_bn takes bn's.
CPU_LR = {"nn": 0.02, "bn": 0.2, "torch_bn": 0.2, "in": 0.1, "bin": 0.2, "ln": 0.05, "gn": 0.1}
# The converge recipe's peak learning rate per norm at batch 128: until its own sweep (the full wsd
# rule on 10,000 training images, scripts/reproduce_q4.sh --recipe converge) has picked, the cpu
# recipe's picks. reproduce_q4.sh always passes the sweep's pick explicitly.
CONVERGE_LR = dict(CPU_LR)
LR_REFERENCE_BATCH = 128
# The wsd schedule's settings (train.py --help): warm-up epochs, plateau patience and smoothing
# window (epochs; patience 0: no plateau test, the cool-down ends the budget), cool-down length as a
# fraction of the epochs run before it, and the budget check's fraction of the budget (0: none).
# Why a fixed budget and not the plateau test the recipe first had (patience 6, window 5): at the
# peak lr the validation accuracy swings by up to 19 points between epochs, and the test started
# LayerNorm's cool-down on an epoch with its highest validation accuracy yet, while its training
# accuracy still rose by a point an epoch (q4_normalization/README.md, "The convergence recipe").
WSD_DEFAULTS = {"warmup_epochs": 2.0, "plateau_patience": 0, "plateau_window": 5, "cooldown": 0.25,
                "budget_check": 0.75}
DEFAULTS = {"dataset": "cifar10", "n": 2, "val_size": 10000, "train_size": None, "test_size": None,
            "probe_size": 256}
SMOKE_DEFAULTS = {"dataset": "builtin10", "n": 1, "epochs": 2, "val_size": 128, "train_size": 256,
                  "test_size": 128, "probe_size": 64}
# A checkpoint's settings must match the resumed command's, or the result would be a mixture.
RESUME_MUST_MATCH = ("norm", "bs", "n", "r", "groups", "recipe", "lr", "schedule", "lr_gamma", "milestones",
                     "weight_decay", "dataset", "val_size", "train_size", "seed", "split_seed", "smoke",
                     "augment", "label_smoothing", "warmup", "decay_norm_bias", "lr_scaling", "cpu_bf16",
                     "warmup_epochs", "plateau_patience", "plateau_window", "cooldown", "budget_check")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--norm", default="bn", choices=sorted(NORMS), help="normalization layer")
    parser.add_argument("--bs", type=int, default=128, help="batch size (per process under torchrun)")
    parser.add_argument("--n", type=int, default=None,
                        help=f"blocks per stage, depth 6n+2 (default {DEFAULTS['n']}; "
                             f"{SMOKE_DEFAULTS['n']} with --smoke)")
    parser.add_argument("--r", type=int, default=10, help="number of outputs (at least the class count)")
    parser.add_argument("--groups", type=int, default=16, help="GroupNorm groups")
    parser.add_argument("--recipe", default="report", choices=sorted(RECIPES),
                        help="report: the report's per-norm schedules, no augmentation; modern: lr 0.1 "
                             "cosine, crop+flip, wd 5e-4, 60 epochs; cpu: the 15-epoch CPU table's recipe "
                             "(warm-up + cosine, label smoothing 0.1, no decay on norm/bias parameters, "
                             "lr per norm); converge: the cpu recipe trained to convergence (wsd schedule "
                             "on a 60-epoch budget, checked by a cool-down branched off at 3/4 of it; "
                             "bf16 on the CPU)")
    parser.add_argument("--lr", type=float, default=None,
                        help="initial learning rate (default: the recipe's per norm)")
    parser.add_argument("--schedule", default=None,
                        choices=["constant", "exponential", "step", "cosine", "wsd"],
                        help="learning-rate schedule (default: the recipe's per norm); wsd: linear warm-up "
                             "over --warmup-epochs, the peak lr, then a linear cool-down to 0 over "
                             "--cooldown times the epochs run so far, started so as to end at --epochs "
                             "(or earlier, with --plateau-patience, once the smoothed validation accuracy "
                             "has not improved for that many epochs), and stop")
    parser.add_argument("--lr-gamma", type=float, default=None,
                        help="decay factor of exponential/step schedules")
    parser.add_argument("--milestones", type=int, nargs="*", default=None,
                        help="epochs after which the step schedule multiplies the lr by --lr-gamma")
    parser.add_argument("--epochs", type=int, default=None,
                        help="maximum epochs (default: 100 report, 60 modern, 2 with --smoke)")
    parser.add_argument("--patience", type=int, default=None,
                        help="stop after this many epochs without a better val accuracy; 0 = never "
                             "(default: 15 report, 0 modern)")
    parser.add_argument("--lr-scaling", default=None, choices=["none", "linear"],
                        help=f"linear: the lr used is --lr * bs / {LR_REFERENCE_BATCH} (default: linear for "
                             f"the cpu recipe, none otherwise)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="cosine schedule: linear warm-up over this fraction of all steps "
                             "(default 0.1 cpu, 0 otherwise)")
    parser.add_argument("--warmup-epochs", type=float, default=None,
                        help="wsd schedule: epochs of linear warm-up from 0 to the peak lr (default 2)")
    parser.add_argument("--plateau-patience", type=int, default=None,
                        help="wsd schedule: epochs without a new best of the smoothed validation accuracy "
                             "that start the cool-down early; 0 = no plateau test, the cool-down ends "
                             "the --epochs budget (default 0)")
    parser.add_argument("--plateau-window", type=int, default=None,
                        help="wsd schedule: the validation accuracy is smoothed by a trailing mean over "
                             "this many epochs before the plateau test (default 5; 1 = raw)")
    parser.add_argument("--cooldown", type=float, default=None,
                        help="wsd schedule: cool-down length as a fraction of the epochs run before it, "
                             "rounded up, at least 2 (default 0.25: the last fifth of the budget)")
    parser.add_argument("--budget-check", type=float, default=None,
                        help="wsd schedule without a plateau test: after the run, cool down a second "
                             "time from the constant phase as a run with this fraction of --epochs "
                             "would have, and report its validation accuracy beside the run's (what "
                             "the rest of the budget bought; the test split is not scored); 0 = off "
                             "(default 0.75; 0 with --plateau-patience)")
    parser.add_argument("--label-smoothing", type=float, default=None,
                        help="label smoothing of the training loss (default 0.1 cpu, 0 otherwise)")
    parser.add_argument("--decay-norm-bias", default=None, action=argparse.BooleanOptionalAction,
                        help="weight decay also on normalization weights/biases and conv/fc biases "
                             "(default: off cpu, on otherwise; BIN's rho is never decayed)")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    parser.add_argument("--weight-decay", type=float, default=None,
                        help="SGD weight decay (default: 1e-4 report, 5e-4 modern)")
    parser.add_argument("--augment", default=None, action=argparse.BooleanOptionalAction,
                        help="random crop (padding 4) + horizontal flip (default: off report, on modern)")
    parser.add_argument("--dataset", default=None,
                        choices=["cifar10", "cifar100", "builtin10", "builtin100", "digits"],
                        help="data (default cifar10; builtin10 with --smoke)")
    parser.add_argument("--val-size", type=int, default=None,
                        help="validation images held out of the train split (default 10000; "
                             "128 with --smoke)")
    parser.add_argument("--train-size", type=int, default=None,
                        help="use only this many of the remaining training images (default all; "
                             "256 with --smoke)")
    parser.add_argument("--test-size", type=int, default=None,
                        help="use only this many test images (default all; 128 with --smoke)")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="seed of the train/val split (fixed across --seed)")
    parser.add_argument("--probe-layer", default="stage2.0.norm1",
                        help="module whose output quantiles are tracked each epoch")
    parser.add_argument("--probe-size", type=int, default=None,
                        help="validation images in the fixed probe batch (default 256; 64 with --smoke)")
    parser.add_argument("--eval-test", default=True, action=argparse.BooleanOptionalAction,
                        help="score the best checkpoint on the test split at the end (--no-eval-test for "
                             "the learning-rate sweep, which must not see it)")
    parser.add_argument("--download", action="store_true",
                        help="fetch missing CIFAR data into --data-root (needs internet)")
    add_common_args(parser)
    add_accel_args(parser)
    add_threads_arg(parser, why=". Two 1-thread runs side by side beat one 2-thread run on a 2-core CPU")
    # The recipe's: compile on for cpu/converge (off under --smoke), CPU bf16 on for converge.
    parser.set_defaults(compile=None, cpu_bf16=None)
    args = parser.parse_args(argv)
    if args.compile is None and args.smoke:
        args.compile = False

    fill_defaults(args, DEFAULTS, SMOKE_DEFAULTS)
    for key, value in RECIPES[args.recipe].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    preset = preset_schedule(args.norm, args.recipe)
    args.lr = preset.lr if args.lr is None else args.lr
    args.schedule = preset.kind if args.schedule is None else args.schedule
    args.lr_gamma = preset.gamma if args.lr_gamma is None else args.lr_gamma
    args.milestones = list(preset.milestones) if args.milestones is None else args.milestones
    if not 0 <= args.warmup < 1 or not 0 <= args.label_smoothing < 1:
        parser.error("--warmup and --label-smoothing must be in [0, 1)")
    if min(args.bs, args.n, args.r, args.epochs, args.probe_size) < 1 or args.lr <= 0:
        parser.error("--bs, --n, --r, --epochs, --probe-size and --lr must be positive")
    if args.cpu_bf16 is None:
        args.cpu_bf16 = False
    if args.schedule == "wsd":  # its settings exist only for it (None otherwise, as in older runs' configs)
        if args.budget_check is None and args.plateau_patience:
            args.budget_check = 0.0  # a plateau test leaves no fixed budget to check
        for key, value in WSD_DEFAULTS.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
    elif any(getattr(args, key) is not None for key in WSD_DEFAULTS):
        parser.error("--warmup-epochs, --plateau-patience, --plateau-window, --cooldown and "
                     "--budget-check go with --schedule wsd (the converge recipe's)")
    if args.schedule == "wsd" and (args.warmup_epochs < 0 or args.plateau_patience < 0
                                   or args.plateau_window < 1 or not 0 < args.cooldown <= 1
                                   or not 0 <= args.budget_check < 1):
        parser.error("--warmup-epochs and --plateau-patience must be >= 0, --plateau-window >= 1, "
                     "--cooldown in (0, 1], --budget-check in [0, 1)")
    if args.schedule == "wsd" and args.budget_check and args.plateau_patience:
        parser.error("--budget-check needs a fixed budget (--plateau-patience 0): a plateau may start "
                     "the run's cool-down before the check's")
    if args.patience < 0 or args.val_size < 1:
        parser.error("--patience must be >= 0 and --val-size >= 1")
    if 16 % args.groups or (args.norm == "gn" and args.groups < 1):
        parser.error(f"--groups must divide 16 (the narrowest stage), got {args.groups}")
    return args


def preset_schedule(norm: str, recipe: str) -> Schedule:
    """The schedule a norm gets by default under a recipe."""
    if recipe == "modern":
        return Schedule(0.01 if norm == "nn" else 0.1, "cosine")
    if recipe == "cpu":
        return Schedule(CPU_LR[norm], "cosine")
    if recipe == "converge":
        return Schedule(CONVERGE_LR[norm], "wsd")
    return REPORT_SCHEDULES[norm]


def peak_lr(args: argparse.Namespace) -> float:
    """--lr, scaled with the batch size under --lr-scaling linear."""
    return args.lr * (args.bs / LR_REFERENCE_BATCH if args.lr_scaling == "linear" else 1.0)


def learning_rate(args: argparse.Namespace, epoch: int, progress: float = 0.0,
                  cooldown: tuple[int, int] | None = None) -> float:
    """The lr for `epoch` (1-based); `progress` in [0, 1) is the fraction of the epoch done. The
    cosine schedule rises linearly over the first `--warmup` fraction of training, then decays.
    The wsd schedule rises linearly over `--warmup-epochs`, stays at the peak, and once a plateau
    has set `cooldown` = (last epoch at the peak, cool-down epochs) falls linearly to 0."""
    lr = peak_lr(args)
    if args.schedule == "wsd":
        done = epoch - 1 + progress
        if cooldown is not None and epoch > cooldown[0]:
            return lr * max(0.0, 1 - (done - cooldown[0]) / cooldown[1])
        return lr * min(1.0, done / args.warmup_epochs) if args.warmup_epochs else lr
    if args.schedule == "exponential":
        return lr * args.lr_gamma ** (epoch - 1)
    if args.schedule == "step":
        return lr * args.lr_gamma ** sum(epoch > m for m in args.milestones)
    if args.schedule == "cosine":
        done = (epoch - 1 + progress) / args.epochs
        if done < args.warmup:
            return lr * done / args.warmup
        return 0.5 * lr * (1 + math.cos(math.pi * (done - args.warmup) / (1 - args.warmup)))
    return lr


def smoothed(values: list[float], window: int) -> list[float]:
    """The mean of each value with the up to `window` - 1 before it (a trailing moving average)."""
    return [sum(values[max(0, i + 1 - window):i + 1]) / (i + 1 - max(0, i + 1 - window))
            for i in range(len(values))]


def epochs_since_best(values: list[float], window: int) -> int:
    """Epochs since the smoothed validation accuracy last reached a new best (0: it just did)."""
    series = smoothed(values, window)
    best = max(range(len(series)), key=lambda i: (series[i], i))  # the latest of equal bests
    return len(series) - 1 - best


def cooldown_plan(args: argparse.Namespace, val_accuracies: list[float]) -> tuple[int, int] | None:
    """wsd, after epoch len(val_accuracies): whether to start the cool-down and how, as (this epoch,
    cool-down epochs). It starts when the validation accuracy, smoothed over --plateau-window epochs,
    has not reached a new best for --plateau-patience epochs, or when a cool-down started any later
    would not end by --epochs (it is then cut to the epochs left); None: stay at the peak. With
    --plateau-patience 0 only the second holds: the cool-down ends the budget.

    Why smoothed, and why 5 and 6: at a high constant learning rate the validation accuracy jumps
    by up to 8 points from one epoch to the next, so "no new best for 4 epochs" of the raw values
    is often a lucky early high, not a plateau (a sweep run stopped at 45% training accuracy that
    way), and a 3-epoch mean with patience 4 still stopped a run whose training accuracy was
    rising by a point an epoch (q4_normalization/README.md)."""
    epoch = len(val_accuracies)
    length = max(2, math.ceil(args.cooldown * epoch))
    plateau = bool(args.plateau_patience) and epoch > args.warmup_epochs and \
        epochs_since_best(val_accuracies, args.plateau_window) >= args.plateau_patience
    if plateau or epoch + length >= args.epochs:
        return epoch, max(1, min(length, args.epochs - epoch))
    return None


def budget_check_plan(args: argparse.Namespace) -> tuple[int, tuple[int, int]] | None:
    """The --budget-check branch of a fixed-budget wsd run: (its budget, its cool-down as
    cooldown_plan gives it), the schedule a run of round(--budget-check * --epochs) epochs has. None
    when there is no check, or when its cool-down would not start inside the run's constant phase
    (a budget too short to branch from)."""
    if args.schedule != "wsd" or not args.budget_check or args.plateau_patience:
        return None
    epochs = round(args.budget_check * args.epochs)
    short = argparse.Namespace(**{**vars(args), "epochs": epochs})
    if epochs < 2:
        return None
    start = next(plan for e in range(1, epochs + 1) if (plan := cooldown_plan(short, [0.0] * e)))
    main_start = next(plan for e in range(1, args.epochs + 1) if (plan := cooldown_plan(args, [0.0] * e)))
    return (epochs, start) if start[0] < main_start[0] else None


# ---- data --------------------------------------------------------------------------------------

@dataclass
class Splits:
    dataset: str
    classes: list[str]
    train: Any  # ImageSet
    val: Any
    test: Any


def load_splits(args: argparse.Namespace) -> Splits:
    """The train/val/test ImageSets: val is a seeded hold-out of the train split (40k/10k for
    CIFAR-10), test is the official test split."""
    builtin = args.dataset in BUILTIN_DATASETS and args.dataset != "digits"
    train_count = args.val_size + args.train_size if (builtin and args.train_size) else None
    full = load_images(args.dataset, args.data_root, "train", download=args.download,
                       **({"size": train_count} if builtin else {}))
    test = load_images(args.dataset, args.data_root, "test", download=args.download,
                       **({"size": args.test_size} if builtin else {}))
    if args.val_size >= len(full):
        raise DataError(f"--val-size {args.val_size} leaves no training image out of {len(full)} "
                        f"in {args.dataset}; lower it")
    train_idx, val_idx = train_val_split(len(full), args.val_size, seed=args.split_seed)
    generator = torch.Generator().manual_seed(args.split_seed)
    if args.train_size is not None and args.train_size < len(train_idx):
        chosen = torch.randperm(len(train_idx), generator=generator)[:args.train_size]
        train_idx = train_idx[chosen].sort().values
    if args.test_size is not None and args.test_size < len(test):
        test = test.subset(torch.randperm(len(test), generator=generator)[:args.test_size].sort().values)
    return Splits(args.dataset, full.classes, full.subset(train_idx), full.subset(val_idx), test)


def eval_loader(image_set: Any, args: argparse.Namespace, ctx: DistContext,
                shard: bool = True) -> ImageLoader:
    """A deterministic loader over this rank's strided shard (every image counted once overall)."""
    part = slice(ctx.rank, None, ctx.world_size) if shard else slice(None)
    mean, std = MEAN_STD[args.dataset]
    return ImageLoader(image_set.images[part], image_set.labels[part], EVAL_BATCH_SIZE, shuffle=False,
                       augment=False, mean=mean, std=std, device=ctx.device,
                       channels_last=use_channels_last(args, ctx.device))


# ---- helpers -----------------------------------------------------------------------------------

def probe_quantiles(model: torch.nn.Module, layer_name: str, images: torch.Tensor, bf16: bool) -> list[float]:
    """1st/20th/80th/99th percentiles of `layer_name`'s output on `images` (eval mode)."""
    net = unwrap(model)
    layer = dict(net.named_modules()).get(layer_name)
    if layer is None:
        raise DataError(f"--probe-layer {layer_name} is not a module of the network; "
                        f"e.g. stage1.0.norm1, stage2.0.norm1, stage3.0.norm2")
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out.detach().float()))
    net.eval()
    try:
        with torch.no_grad(), autocast_context(images.device, bf16):
            net(images)
    finally:
        handle.remove()
    values = captured[0].flatten()
    if values.numel() > 8_000_000:  # torch.quantile's input limit is 16M values
        values = values[:: math.ceil(values.numel() / 8_000_000)]
    return torch.quantile(values, torch.tensor(QUANTILES, device=values.device)).tolist()


def ranks_agree(model: torch.nn.Module, ctx: DistContext) -> bool:
    """Whether every rank holds the same weights (a checksum compared with rank 0's); trivially
    true on one process. DDP keeps them equal; this records that it did."""
    checksum = float(sum(p.detach().double().sum() for p in unwrap(model).parameters()))
    reference = broadcast_object(checksum, ctx)
    return int(all_reduce_sum([float(checksum != reference)], ctx)[0]) == 0


def rho_mean(model: torch.nn.Module) -> float | None:
    rhos = [m.rho.detach().flatten() for m in unwrap(model).modules() if isinstance(m, BatchInstanceNorm2d)]
    return float(torch.cat(rhos).mean()) if rhos else None


def confusion_to_pairs(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) arrays holding each (true, predicted) pair as often as the matrix counts it."""
    rows, cols = np.indices(matrix.shape)
    counts = matrix.astype(np.int64).ravel()
    return np.repeat(rows.ravel(), counts), np.repeat(cols.ravel(), counts)


# ---- train / evaluate --------------------------------------------------------------------------

def train_one_epoch(model: torch.nn.Module, loader: ImageLoader, optimizer: torch.optim.Optimizer,
                    args: argparse.Namespace, epoch: int, num_classes: int, ctx: DistContext, run: Any,
                    bf16: bool, cooldown: tuple[int, int] | None = None) -> tuple[float, float]:
    """One pass over `loader`; returns (mean loss, accuracy) over every rank's examples. `cooldown`:
    the wsd schedule's, when it has started (learning_rate)."""
    model.train()
    # Sums stay on the device: reading them each step would be a CPU-GPU sync point.
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
    correct = torch.zeros((), dtype=torch.int64, device=ctx.device)
    count = 0
    steps = len(loader)
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not (ctx.is_main and sys.stderr.isatty()))
    for step, (images, labels) in enumerate(bar):
        if args.schedule in ("cosine", "wsd"):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(args, epoch, step / steps, cooldown)
        with autocast_context(ctx.device, bf16):
            logits = model(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=args.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        clip_rho_(model)  # Batch-Instance Norm: rho back into [0, 1] after every step
        loss_sum += loss.detach().double() * len(labels)
        # Outputs beyond the classes (r > C) are never a prediction.
        correct += (logits[:, :num_classes].argmax(1) == labels).sum()
        count += len(labels)
        if step % 20 == 0 or step == steps - 1:
            # Read the loss anyway for the bar; that is where the divergence guard looks.
            value = check_finite_loss(loss, run, where=f"epoch {epoch} step {step}")
            bar.set_postfix(loss=f"{value:.3f}")
    totals = all_reduce_sum([loss_sum.item(), correct.item(), count], ctx)
    mean_loss = check_finite_loss(totals[0] / totals[2], run, where=f"epoch {epoch}")
    return mean_loss, float(totals[1] / totals[2])


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: ImageLoader, num_classes: int, ctx: DistContext,
             bf16: bool) -> dict[str, Any]:
    """Loss, accuracy and the confusion matrix of the plain module on `loader`, summed over
    ranks (each rank holds a disjoint shard, so ranks may run different numbers of batches)."""
    net = unwrap(model)
    net.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=ctx.device)
    for images, labels in loader:
        with autocast_context(ctx.device, bf16):
            logits = net(images)
        loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum").double()
        predictions = logits[:, :num_classes].argmax(1)
        confusion += torch.bincount(labels * num_classes + predictions, minlength=num_classes ** 2)
    totals = all_reduce_sum([loss_sum.item(), *confusion.tolist()], ctx)
    matrix = totals[1:].round().long().view(num_classes, num_classes).numpy()
    count = int(matrix.sum())
    return {"loss": float(totals[0]) / max(count, 1), "accuracy": float(np.trace(matrix)) / max(count, 1),
            "confusion": matrix}


def final_metrics(result: dict[str, Any]) -> dict[str, float]:
    """Accuracy, macro F1 and micro F1 from a confusion matrix. Macro F1 averages over the classes
    that occur (as truth or prediction): a class absent from a small split has no F1 to count."""
    scores = f1_scores(*confusion_to_pairs(result["confusion"]))
    return {"accuracy": result["accuracy"], **scores, "loss": result["loss"]}


def plot_history(history: list[dict[str, Any]], title: str):
    """Figures for the run folder: error and loss curves, and the probe quantiles per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [h for h in history if h["epoch"] > 0]
    curves, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    # Loss on a log scale: one early validation spike would flatten the rest of the curve.
    panels = (("error", 100, "error (%)", "linear"), ("loss", 1, "cross-entropy", "log"))
    for ax, (metric, scale, unit, yscale) in zip(axes, panels):
        for split in ("train", "val"):
            ax.plot([h["epoch"] for h in trained], [scale * h[f"{split}_{metric}"] for h in trained],
                    marker="o", markersize=3, label=split)
        ax.set(title=f"{title}: {metric}", xlabel="epoch", ylabel=unit, yscale=yscale)
        ax.grid(alpha=0.3)
        ax.legend()
    quantiles, ax = plt.subplots(figsize=(6, 3.6))
    for q in QUANTILES:
        key = f"probe_q{round(100 * q):02d}"
        ax.plot([h["epoch"] for h in history], [h[key] for h in history], marker="o", markersize=3,
                label=f"{round(100 * q)}th percentile")
    ax.set(title=f"{title}: probe-layer activations", xlabel="epoch (0 = initialisation)", ylabel="value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return curves, quantiles


def print_results(metrics: dict[str, dict[str, float]], summary: dict[str, Any]) -> None:
    """The final fixed-width table."""
    print(f"\nbest epoch {summary['best_epoch']} of {summary['epochs_run']}"
          f"{' (stopped early)' if summary['stopped_early'] else ''}")
    rows = [[split, summary[f"{split}_images"], f"{values['loss']:.3f}",
             *(f"{100 * values[key]:.2f}%" for key in ("accuracy", "macro_f1", "micro_f1"))]
            for split, values in metrics.items()]
    print(text_table(["split", "images", "loss", "accuracy", "macro F1", "micro F1"], rows))


def default_run_name(args: argparse.Namespace) -> str:
    recipe = "" if args.recipe == "report" else f"-{args.recipe}"
    name = f"{args.norm}-bs{args.bs}{recipe}-seed{args.seed}"
    return f"smoke-{name}" if args.smoke else name


def budget_check(model: torch.nn.Module, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 train_loader: ImageLoader, val_loader: ImageLoader, args: argparse.Namespace,
                 check: tuple[int, tuple[int, int]], state: dict[str, Any], checkpoint_dir: Any,
                 num_classes: int, ctx: DistContext, run: Any, bf16: bool, tag: str) -> dict[str, Any]:
    """--budget-check: from the constant phase's checkpoint at the branch point, the cool-down that
    a run of `check[0]` epochs would have had (the weights, optimizer and random streams of that
    epoch, so the branch is that shorter run's end), validation only. Logged as check_* entries
    after the run's own steps; returns the summary's check_* values, among them check_gain: the
    validation accuracy the run's last (1 - --budget-check) of the budget added."""
    epochs, cooldown = check
    if ctx.enabled:
        dist.barrier()  # rank 0 has written check-start.pt
    load_checkpoint(checkpoint_dir / "check-start.pt", net, optimizer, map_location=ctx.device)
    best = max(h["val_accuracy"] for h in state["history"] if 0 < h["epoch"] <= cooldown[0])
    print0(f"[{tag}] budget check: the cool-down of a {epochs}-epoch run, epochs {cooldown[0] + 1}-{epochs}, "
           f"from the checkpoint of epoch {cooldown[0]}", ctx=ctx)
    for epoch in range(cooldown[0] + 1, epochs + 1):
        train_loader.set_epoch(epoch)
        epoch_start = time.time()
        loss, accuracy = train_one_epoch(model, train_loader, optimizer, args, epoch, num_classes, ctx, run,
                                         bf16, cooldown)
        sync_buffers(model, ctx)
        val = evaluate(model, val_loader, num_classes, ctx, bf16)
        best = max(best, val["accuracy"])
        run.log({"check_epoch": epoch, "check_lr": optimizer.param_groups[0]["lr"], "check_train_loss": loss,
                 "check_train_accuracy": accuracy, "check_val_loss": val["loss"],
                 "check_val_accuracy": val["accuracy"], "epoch_time": time.time() - epoch_start},
                step=args.epochs + epoch - cooldown[0])
        print0(f"[{tag}] check epoch {epoch}/{epochs} | loss {loss:.3f} | acc {100 * accuracy:.2f}% "
               f"| val acc {100 * val['accuracy']:.2f}%", ctx=ctx)
    gain = state["best_accuracy"] - best
    print0(f"[{tag}] budget check: best validation accuracy {100 * best:.2f}% after {epochs} epochs, "
           f"{100 * state['best_accuracy']:.2f}% after {args.epochs} ({100 * gain:+.2f} points)", ctx=ctx)
    return {"check_epochs": epochs, "check_cooldown_after_epoch": cooldown[0], "check_val_accuracy": best,
            "check_gain": gain}


# ---- main --------------------------------------------------------------------------------------

@entry_point
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    name = default_run_name(args)
    run_dir = run_dir_for(args, "q4_normalization", name)
    if args.resume == "auto" and (done := finished_summary(run_dir, args, RESUME_MUST_MATCH + ("epochs",))):
        split = "test" if "test_accuracy" in done else "val"
        result = ("diverged" if done.get("diverged")
                  else f"{split} accuracy {100 * done[f'{split}_accuracy']:.2f}%")
        print(f"{run_dir} has finished ({result}); nothing to do")
        return done
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    ctx = setup_distributed(args.device)
    if ctx.device.type == "cpu":
        # Fresh activation buffers every step would otherwise cost page faults (benchmarks/).
        keep_freed_memory()
    splits = load_splits(args)
    num_classes = len(splits.classes)
    if args.r < num_classes:
        fail(f"--r {args.r} is smaller than the {num_classes} classes of {args.dataset}", status=2)
    tag = args.dataset.upper()
    bf16 = use_bf16(args, ctx.device)
    channels_last = use_channels_last(args, ctx.device)

    net = ResNet(args.n, args.r, args.norm, args.groups).to(ctx.device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    parameters = count_parameters(net)
    optimizer = torch.optim.SGD(param_groups(net, args.weight_decay, args.decay_norm_bias), lr=peak_lr(args),
                                momentum=args.momentum, nesterov=args.nesterov)
    # Before start_run, so that a refused --resume leaves the run's config.json as it was.
    checkpoint_dir = run_dir / "checkpoints"
    # A wsd run's schedule is planned from --epochs (where the cool-down starts, the budget check's
    # branch): resumed with another budget it would be a mixture of two schedules.
    must_match = RESUME_MUST_MATCH + (("epochs",) if args.schedule == "wsd" else ())
    resume = resume_if_requested(args, checkpoint_dir / "last.pt", net, optimizer,
                                 must_match=must_match, map_location=ctx.device, restore_rng=False)
    run = start_run(args, project=PROJECT, question="q4_normalization", default_name=name,
                    extra_config={"depth": 6 * args.n + 2, "parameters": parameters,
                                  "train_images": len(splits.train), "val_images": len(splits.val),
                                  "test_images": len(splits.test), "num_classes": num_classes})
    print0(f"ResNet-{6 * args.n + 2} ({parameters:,} parameters), norm {args.norm}, batch {args.bs} | "
           f"{args.dataset}: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test | "
           f"SGD lr {peak_lr(args):g} ({args.schedule}"
           f"{f', warm-up {args.warmup:g}' if args.schedule == 'cosine' and args.warmup else ''}), "
           f"momentum {args.momentum}, wd {args.weight_decay:g}"
           f"{'' if args.decay_norm_bias else ' (not on norm/bias)'}, "
           f"{f'label smoothing {args.label_smoothing:g}, ' if args.label_smoothing else ''}"
           f"{args.epochs} epochs max, patience {args.patience or 'off'} | device {ctx.device}, "
           f"{ctx.world_size} process(es) | run {run.dir}", ctx=ctx)

    # State that crosses epochs; it travels in every checkpoint.
    state: dict[str, Any] = {"best_accuracy": -1.0, "best_epoch": 0, "bad_epochs": 0, "history": [],
                             "cooldown": None}
    start_epoch = 1
    if resume is not None:
        state, start_epoch = resume["extra"], resume["epoch"] + 1
        run.rewind(resume["epoch"])
        print0(f"resuming {run.dir} after epoch {resume['epoch']}", ctx=ctx)
    model = wrap_model(net, ctx)
    if args.compile:
        model = torch.compile(model)

    mean, std = MEAN_STD[args.dataset]
    train_loader = ImageLoader(splits.train.images, splits.train.labels, args.bs, shuffle=True,
                               augment=args.augment, mean=mean, std=std, device=ctx.device, seed=args.seed,
                               rank=ctx.rank, world_size=ctx.world_size, channels_last=channels_last)
    val_loader = eval_loader(splits.val, args, ctx)
    probe_set = splits.val.subset(torch.arange(min(args.probe_size, len(splits.val))))
    probe_images = next(iter(eval_loader(probe_set, args, ctx, shard=False)))[0]

    if resume is None:
        quantiles = probe_quantiles(model, args.probe_layer, probe_images, bf16)
        entry = {"epoch": 0, **{f"probe_q{round(100 * q):02d}": v for q, v in zip(QUANTILES, quantiles)}}
        state["history"].append(entry)
        run.log(entry, step=0)
    else:
        set_rng_state(resume["rng"])  # last, so that the random stream continues exactly

    # ---- training loop ----
    check = budget_check_plan(args)
    if args.schedule == "wsd" and args.budget_check and check is None:
        print0(f"[{tag}] no budget check: {args.epochs} epochs leave no constant phase to branch from at "
               f"{args.budget_check:g} of them", ctx=ctx)
    started = time.time()
    for epoch in range(start_epoch, args.epochs + 1):
        if args.patience and state["bad_epochs"] >= args.patience:
            break  # early stopping: no better val accuracy for `patience` epochs
        cooldown = tuple(state["cooldown"]) if state.get("cooldown") else None
        if cooldown is not None and epoch > sum(cooldown):
            break  # wsd: the cool-down has ended
        lr = learning_rate(args, epoch, 0.0, cooldown)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_loader.set_epoch(epoch)
        epoch_start = time.time()
        loss, accuracy = train_one_epoch(model, train_loader, optimizer, args, epoch, num_classes, ctx, run,
                                         bf16, cooldown)
        lr = optimizer.param_groups[0]["lr"]  # per-step schedules: the lr of the epoch's last step
        sync_buffers(model, ctx)
        val = evaluate(model, val_loader, num_classes, ctx, bf16)
        quantiles = probe_quantiles(model, args.probe_layer, probe_images, bf16)
        entry = {"epoch": epoch, "lr": lr, "train_loss": loss, "train_accuracy": accuracy,
                 "train_error": 1 - accuracy, "val_loss": val["loss"], "val_accuracy": val["accuracy"],
                 "val_error": 1 - val["accuracy"], "epoch_time": time.time() - epoch_start,
                 **{f"probe_q{round(100 * q):02d}": v for q, v in zip(QUANTILES, quantiles)}}
        if args.norm == "bin":
            entry["rho_mean"] = rho_mean(model)
        state["history"].append(entry)
        run.log(entry, step=epoch)
        print0(f"[{tag}] Epoch {epoch}/{args.epochs} | lr {lr:.4g} | loss {loss:.3f} "
               f"| acc {100 * accuracy:.2f}% | val loss {val['loss']:.3f} "
               f"| val acc {100 * val['accuracy']:.2f}% "
               f"| q01/q99 {quantiles[0]:.2f}/{quantiles[-1]:.2f}", ctx=ctx)
        improved = val["accuracy"] > state["best_accuracy"]
        if improved:
            state.update(best_accuracy=val["accuracy"], best_epoch=epoch, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
        if args.schedule == "wsd" and cooldown is None:
            val_accuracies = [h["val_accuracy"] for h in state["history"] if h["epoch"] > 0]
            state["cooldown"] = cooldown_plan(args, val_accuracies)
            if state["cooldown"] is not None:
                cause = ("the budget's end" if not args.plateau_patience else "epoch cap") \
                    if epoch + state["cooldown"][1] >= args.epochs else "plateau"
                print0(f"[{tag}] cool-down over epochs {epoch + 1}-{sum(state['cooldown'])} ({cause})",
                       ctx=ctx)
        if ctx.is_main:
            if improved:
                save_checkpoint(checkpoint_dir / "best.pt", net, None, None, epoch, val["accuracy"], args)
            if check is not None and epoch == check[1][0]:  # the branch point of --budget-check
                # Before last.pt: a run stopped between the two redoes this epoch on resuming.
                save_checkpoint(checkpoint_dir / "check-start.pt", net, optimizer, None, epoch,
                                state["best_accuracy"], args, state)
            save_checkpoint(checkpoint_dir / "last.pt", net, optimizer, None, epoch, state["best_accuracy"],
                            args, state)
    # ---- end of training loop ----
    check_summary = {}
    if check is not None:
        check_summary = budget_check(model, net, optimizer, train_loader, val_loader, args, check, state,
                                     checkpoint_dir, num_classes, ctx, run, bf16, tag)
    agree = ranks_agree(model, ctx)

    # Final figures with the best checkpoint (highest validation accuracy).
    if ctx.enabled:
        dist.barrier()  # rank 0 has written best.pt
    best = load_checkpoint(checkpoint_dir / "best.pt", net, map_location=ctx.device, restore_rng=False)
    metrics, test_pairs = {}, None
    scored = [("train", splits.train), ("val", splits.val)]
    if args.eval_test:
        scored.append(("test", splits.test))
    for split, image_set in scored:
        result = evaluate(model, eval_loader(image_set, args, ctx), num_classes, ctx, bf16)
        metrics[split] = final_metrics(result)
        if split == "test":
            test_pairs = confusion_to_pairs(result["confusion"])
    epochs_run = max(h["epoch"] for h in state["history"])
    summary: dict[str, Any] = {
        "finished": True, "norm": args.norm, "bs": args.bs, "recipe": args.recipe, "dataset": args.dataset,
        "smoke": args.smoke, "lr_peak": peak_lr(args),
        "depth": 6 * args.n + 2, "parameters": parameters, "diverged": False,
        "best_epoch": best["epoch"], "epochs_run": epochs_run,
        "stopped_early": epochs_run < args.epochs,
        "cooldown_after_epoch": state["cooldown"][0] if state.get("cooldown") else None,
        **check_summary,
        "bf16": bf16,
        "train_images": len(splits.train), "val_images": len(splits.val), "test_images": len(splits.test),
        "train_time_s": time.time() - started, "world_size": ctx.world_size, "ranks_agree": agree,
    }
    for split, values in metrics.items():
        summary.update({f"{split}_{key}": value for key, value in values.items()})
    run.summary(summary)
    run.table("final_metrics", ["split", "accuracy", "macro_f1", "micro_f1", "loss"],
              [[split, v["accuracy"], v["macro_f1"], v["micro_f1"], v["loss"]]
               for split, v in metrics.items()])
    if test_pairs is not None:
        run.wandb_log(lambda wandb: {"test_confusion": wandb.plot.confusion_matrix(
            y_true=test_pairs[0].tolist(), preds=test_pairs[1].tolist(), class_names=splits.classes)})
    if ctx.is_main:
        import matplotlib.pyplot as plt

        curves, quantile_figure = plot_history(state["history"], f"{args.norm}, batch {args.bs}")
        run.image("curves", curves)
        run.image("quantiles", quantile_figure)
        plt.close(curves)
        plt.close(quantile_figure)
        print_results(metrics, summary)
    run.finish()
    cleanup(ctx)
    return summary


if __name__ == "__main__":
    main()
