"""Q6: LeNet-5 on CIFAR-10 under four training configurations, tracked in Weights & Biases.

`--config N` is a shortcut: 1 SGD (lr 0.001, momentum 0.9) and 2 Adam (lr 0.01) with
cross-entropy, 3 and 4 the same optimizers with squared error on the softmax outputs.

    python q6_cnn_wandb/train.py --config 1                      # = --optimizer sgd --loss ce
    python q6_cnn_wandb/train.py --config 1 --smoke              # built-in data, seconds
    bash scripts/reproduce_q6.sh [--smoke]                       # all four + ResNet-34 -> reports/q6.md

Prints one line per epoch, then reloads the kept checkpoint and reports its test accuracy,
confusion matrix, best and worst class and sample predictions (runs/q6_cnn_wandb/<run>/, W&B).
Checkpoint selection, why configuration 3 barely moves, and the departures from the assignment
and why: see q6_cnn_wandb/README.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.checkpoint import load_checkpoint, resume_if_requested, save_checkpoint
from common.cli import (HelpFormatter, add_accel_args, add_common_args, add_threads_arg, entry_point,
                        fill_defaults)
from common.data.images import (MEAN_STD, ImageLoader, ImageSet, load_images, stratified_subset,
                                 train_val_split)
from common.device import autocast_context, pick_device, use_bf16, use_channels_last
from common.divergence import check_finite_loss
from common.errors import DataError
from common.report import text_table
from common.seed import seed_everything
from common.tracking import start_run
from q6_cnn_wandb.model import LeNet5, add_width_args
from q6_cnn_wandb.results import log_final_results

PROJECT = "Q6-cnn-wandb"
QUESTION = "q6_cnn_wandb"

# Optimizers and their default hyper-parameters (the assignment's).
OPTIMIZERS = {"sgd": {"lr": 0.001, "momentum": 0.9}, "adam": {"lr": 0.01}}


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the batch."""
    return F.cross_entropy(logits, targets)


def softmax_mse_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared error between softmax probabilities and one-hot targets, mean over the batch and
    the classes (nn.MSELoss's default reduction)."""
    probabilities = logits.softmax(dim=1)
    one_hot = F.one_hot(targets, num_classes=logits.shape[1]).to(probabilities.dtype)
    return F.mse_loss(probabilities, one_hot)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce": cross_entropy_loss, "mse": softmax_mse_loss}

# The assignment's four configurations.
CONFIGS = {1: {"optimizer": "sgd", "loss": "ce"}, 2: {"optimizer": "adam", "loss": "ce"},
           3: {"optimizer": "sgd", "loss": "mse"}, 4: {"optimizer": "adam", "loss": "mse"}}

# Defaults: the assignment's settings, and the --smoke ones (built-in data, seconds on a CPU).
DEFAULTS = {"dataset": "cifar10", "epochs": 20, "bs": 64, "train_size": None, "test_size": None,
            "threads": None}
SMOKE_DEFAULTS = {"dataset": "builtin10", "epochs": 4, "bs": 16, "train_size": 2000, "test_size": 500,
                  "threads": 1}
EVAL_BATCH_SIZE = 1000
# A checkpoint's settings must match the resumed command's, or the result would be a mixture.
RESUME_MUST_MATCH = ("optimizer", "loss", "lr", "momentum", "bs", "dataset", "seed", "split_seed",
                     "val_split", "augment", "train_size", "test_size", "conv1", "conv2", "fc1", "fc2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--config", type=int, default=None, choices=sorted(CONFIGS),
                        help="one of the assignment's configurations (sets --optimizer and --loss)")
    parser.add_argument("--optimizer", default=None, choices=sorted(OPTIMIZERS),
                        help="optimizer (default sgd, or the one of --config)")
    parser.add_argument("--loss", default=None, choices=sorted(LOSSES),
                        help="ce: cross-entropy; mse: squared error between softmax outputs and "
                             "one-hot targets (default ce, or the one of --config)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: sgd 0.001, adam 0.01)")
    parser.add_argument("--momentum", type=float, default=OPTIMIZERS["sgd"]["momentum"],
                        help="SGD momentum (ignored by Adam)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs (default {DEFAULTS['epochs']}; {SMOKE_DEFAULTS['epochs']} "
                             f"with --smoke)")
    parser.add_argument("--bs", type=int, default=None,
                        help=f"batch size (default {DEFAULTS['bs']}; {SMOKE_DEFAULTS['bs']} with --smoke)")
    parser.add_argument("--patience", type=int, default=0,
                        help="early stopping: stop after this many epochs without a better "
                             "selection accuracy (0: off)")
    parser.add_argument("--select-on", default="validation", choices=["validation", "test"],
                        help="split whose accuracy picks the kept epoch: validation (held out of the "
                             "training images), or test, as the assignment did (optimistic)")
    parser.add_argument("--val-split", type=float, default=0.1,
                        help="fraction of the training images held out for --select-on validation")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="seed of the held-out validation images (--seed changes the initialisation "
                             "and the batch order, not the split)")
    parser.add_argument("--augment", action="store_true",
                        help="random crop (zero padding 4) and horizontal flip of the training images "
                             "(a departure from the assignment, which trains without augmentation)")
    parser.add_argument("--dataset", default=None, choices=["builtin10", "cifar10"],
                        help="data (default cifar10; builtin10 with --smoke)")
    parser.add_argument("--train-size", type=int, default=None,
                        help="use a stratified seeded subset of this many training images "
                             f"(default all; {SMOKE_DEFAULTS['train_size']} with --smoke)")
    parser.add_argument("--test-size", type=int, default=None,
                        help="likewise for the test split "
                             f"(default all; {SMOKE_DEFAULTS['test_size']} with --smoke)")
    parser.add_argument("--samples", type=int, default=32,
                        help="sample test predictions shown in the W&B table and the PNG grid")
    parser.add_argument("--download", action="store_true",
                        help="fetch CIFAR-10 into --data-root if missing (needs internet)")
    add_threads_arg(parser, why=", because LeNet-5 is too small for intra-op threads to pay on a busy CPU")
    add_width_args(parser)
    add_common_args(parser)
    add_accel_args(parser)
    args = parser.parse_args(argv)

    fill_defaults(args, DEFAULTS, SMOKE_DEFAULTS)
    if args.config is not None:
        for key, value in CONFIGS[args.config].items():
            if getattr(args, key) not in (None, value):
                parser.error(f"--config {args.config} means --{key} {value}, "
                             f"not --{key} {getattr(args, key)}")
            setattr(args, key, value)
    args.optimizer = args.optimizer or "sgd"
    args.loss = args.loss or "ce"
    if args.lr is None:
        args.lr = OPTIMIZERS[args.optimizer]["lr"]
    if args.optimizer != "sgd":
        args.momentum = None  # recorded as not applicable in config.json
    if args.epochs < 1 or args.bs < 1 or args.lr <= 0:
        parser.error("--epochs, --bs and --lr must be positive")
    if not 0 < args.val_split < 1:
        parser.error(f"--val-split must be in (0, 1), got {args.val_split}")
    if args.select_on == "test":
        args.val_split = 0.0  # the assignment's setting: train on every training image
    if args.patience < 0:
        parser.error(f"--patience must be >= 0, got {args.patience}")
    return args


# ---- helpers ---------------------------------------------------------------------------------

def config_id(args: argparse.Namespace) -> int | None:
    """The assignment's configuration number these flags amount to (None if they differ)."""
    for number, config in CONFIGS.items():
        if (args.optimizer, args.loss) == (config["optimizer"], config["loss"]) \
                and args.lr == OPTIMIZERS[args.optimizer]["lr"] \
                and args.momentum == OPTIMIZERS[args.optimizer].get("momentum"):
            return number
    return None


def run_name(args: argparse.Namespace) -> str:
    """E.g. config3-sgd-mse-lr0.001-bs64-val0.1-seed0 (prefix smoke- under --smoke)."""
    number = config_id(args)
    name = f"{'config%d-' % number if number else ''}{args.optimizer}-{args.loss}-lr{args.lr:g}-bs{args.bs}"
    if (args.conv1, args.conv2, args.fc1, args.fc2) != (6, 16, 120, 84):
        name += f"-w{args.conv1}-{args.conv2}-{args.fc1}-{args.fc2}"
    if args.augment:
        name += f"-aug-ep{args.epochs}"
    name += f"-val{args.val_split:g}" if args.val_split else "-selecttest"
    return ("smoke-" if args.smoke else "") + name + f"-seed{args.seed}"


def uniform_prediction_loss(loss: str, num_classes: int) -> float:
    """The loss of the uniform prediction p = 1/K: ln K for cross-entropy; for the squared error
    ((1 - 1/K)^2 + (K - 1)/K^2) / K = (K - 1)/K^2 (mean over classes)."""
    if loss == "ce":
        return float(torch.log(torch.tensor(float(num_classes))))
    return (num_classes - 1) / num_classes**2


def gradient_ratio_at_uniform(num_classes: int) -> float:
    """|d mse / d logits| / |d ce / d logits| at logits = 0 (the uniform prediction), by autograd.

    By hand: dCE/dz = p - y; for the mean-over-classes squared error, dL/dz_i =
    (2/K) p_i [(p_i - y_i) - sum_j p_j (p_j - y_j)] and at p = 1/K the sum vanishes, so
    dL/dz = (2/K^2)(p - y): the ratio is 2/K^2 (0.02 for K = 10)."""
    target = torch.tensor([0])
    gradients = []
    for loss_fn in (softmax_mse_loss, cross_entropy_loss):
        logits = torch.zeros(1, num_classes, dtype=torch.float64, requires_grad=True)
        loss_fn(logits, target).backward()
        gradients.append(logits.grad.norm())
    return float(gradients[0] / gradients[1])


def build_optimizer(args: argparse.Namespace, parameters) -> torch.optim.Optimizer:
    if args.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=args.lr, momentum=args.momentum)
    return torch.optim.Adam(parameters, lr=args.lr)


def limit(image_set: ImageSet, size: int | None, seed: int) -> ImageSet:
    """A stratified seeded subset of about `size` images (the whole set when size is None)."""
    if size is None or size >= len(image_set):
        return image_set
    if size < 1:
        raise DataError(f"a subset of {size} images is empty; pass a positive --train-size/--test-size")
    return image_set.subset(stratified_subset(image_set.labels, size / len(image_set), seed))


def load_data(args: argparse.Namespace) -> tuple[ImageSet, ImageSet | None, ImageSet]:
    """(train, validation or None, test) image sets."""
    train = load_images(args.dataset, args.data_root, "train", download=args.download)
    test = load_images(args.dataset, args.data_root, "test", download=args.download)
    train, test = limit(train, args.train_size, args.split_seed), limit(test, args.test_size, args.split_seed)
    validation = None
    if args.val_split:
        train_idx, val_idx = train_val_split(len(train), round(args.val_split * len(train)), args.split_seed)
        train, validation = train.subset(train_idx), train.subset(val_idx)
    return train, validation, test


def loader_for(image_set: ImageSet, args: argparse.Namespace, device: torch.device,
               train: bool) -> ImageLoader:
    mean, std = MEAN_STD[args.dataset]
    return ImageLoader(image_set.images, image_set.labels, args.bs if train else EVAL_BATCH_SIZE,
                       shuffle=train, augment=train and args.augment, mean=mean, std=std, device=device,
                       seed=args.seed, channels_last=use_channels_last(args, device))


# ---- train / evaluate --------------------------------------------------------------------------

def train_one_epoch(model: torch.nn.Module, loader: ImageLoader, optimizer: torch.optim.Optimizer,
                    loss_fn: Callable, device: torch.device, run: Any, epoch: int, bf16: bool) -> float:
    """One pass over `loader`; returns the mean training loss over its examples."""
    model.train()
    # The sum stays on the device: reading it each step would be a CPU-GPU sync point.
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not sys.stderr.isatty())
    for images, labels in bar:
        with autocast_context(device, bf16):
            logits = model(images)
        loss = loss_fn(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach().double() * len(labels)
        count += len(labels)
    return check_finite_loss(loss_sum / max(count, 1), run, where=f"epoch {epoch}")


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: ImageLoader, loss_fn: Callable, device: torch.device,
             bf16: bool) -> tuple[float, float, torch.Tensor]:
    """(mean loss, accuracy, predictions on the CPU) of `model` over `loader` (in order)."""
    model.eval()
    loss_sum, predictions = 0.0, []
    for images, labels in loader:
        with autocast_context(device, bf16):
            logits = model(images)
        loss_sum += loss_fn(logits.float(), labels).item() * len(labels)
        predictions.append(logits.argmax(1).cpu())
    predictions = torch.cat(predictions)
    labels = loader.labels.cpu()
    return loss_sum / len(labels), (predictions == labels).sum().item() / len(labels), predictions


def print_results(summary: dict[str, Any]) -> None:
    """The final fixed-width table."""
    label = f"config {summary['config_id']}" if summary.get("config_id") else "custom"
    row = [label, summary["optimizer"], f"{summary['lr']:g}", summary["loss"], summary["best_epoch"],
           summary["selected_on"], f"{100 * summary['test_accuracy']:.2f}%",
           *(f"{summary[f'{side}_class']} ({100 * summary[f'{side}_class_accuracy']:.1f}%)"
             for side in ("best", "worst"))]
    print("\n" + text_table(["run", "optimizer", "lr", "loss", "best epoch", "selected on", "test acc",
                             "best class", "worst class"], [row], align="llrlrrrll"))


@entry_point
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    device = pick_device(args.device)
    train_set, val_set, test_set = load_data(args)
    num_classes = len(test_set.classes)
    tag = args.dataset.upper()

    model = LeNet5(args.conv1, args.conv2, args.fc1, args.fc2, num_classes=num_classes).to(device)
    if use_channels_last(args, device):
        model = model.to(memory_format=torch.channels_last)
    num_params = sum(p.numel() for p in model.parameters())
    optimizer = build_optimizer(args, model.parameters())
    loss_fn = LOSSES[args.loss]
    step_model = torch.compile(model) if args.compile else model
    bf16 = use_bf16(args, device)

    run = start_run(args, project=PROJECT, question=QUESTION, default_name=run_name(args),
                    extra_config={"config_id": config_id(args), "num_params": num_params})
    train_loader = loader_for(train_set, args, device, train=True)
    test_loader = loader_for(test_set, args, device, train=False)
    val_loader = loader_for(val_set, args, device, train=False) if val_set is not None else None
    selected_on = "validation" if val_loader is not None else "test"
    checkpoints = run.dir / "checkpoints"

    start_epoch, best_accuracy, best_epoch, stale_epochs = 1, -1.0, 0, 0
    state = resume_if_requested(args, checkpoints / "last.pt", model, optimizer,
                                must_match=RESUME_MUST_MATCH, map_location=device)
    if state is not None:
        start_epoch = state["epoch"] + 1
        best_accuracy, best_epoch = state["best_metric"], state["extra"]["best_epoch"]
        stale_epochs = state["extra"]["stale_epochs"]
        run.rewind(state["epoch"])
        print(f"resumed from {checkpoints / 'last.pt'} after epoch {state['epoch']}")

    print(f"[{tag}] LeNet-5 ({num_params:,} parameters), {args.optimizer} lr {args.lr:g}, loss {args.loss}, "
          f"{len(train_set)} train / {len(val_set) if val_set else 0} val / {len(test_set)} test images, "
          f"checkpoint selected on {selected_on} accuracy")

    # ---- training loop ----
    epoch = start_epoch - 1
    stopped_early = False
    for epoch in range(start_epoch, args.epochs + 1):
        train_loader.set_epoch(epoch)
        train_loss = train_one_epoch(step_model, train_loader, optimizer, loss_fn, device, run, epoch, bf16)
        test_loss, test_accuracy, _ = evaluate(model, test_loader, loss_fn, device, bf16)
        metrics = {"epoch": epoch, "train_loss": train_loss, "test_loss": test_loss,
                   "test_accuracy": test_accuracy}
        selection = test_accuracy
        if val_loader is not None:
            val_loss, val_accuracy, _ = evaluate(model, val_loader, loss_fn, device, bf16)
            metrics.update(val_loss=val_loss, val_accuracy=val_accuracy)
            selection = val_accuracy
        improved = selection > best_accuracy  # strict: ties keep the earlier epoch
        if improved:
            best_accuracy, best_epoch, stale_epochs = selection, epoch, 0
        else:
            stale_epochs += 1
        run.log(metrics, step=epoch)
        val_text = f" | val acc {100 * metrics['val_accuracy']:.2f}%" if val_loader is not None else ""
        print(f"[{tag}] Epoch {epoch}/{args.epochs} | loss {train_loss:.4f} | test loss {test_loss:.4f} | "
              f"test acc {100 * test_accuracy:.2f}%{val_text} | best {100 * best_accuracy:.2f}% "
              f"(epoch {best_epoch})")
        extra = {"best_epoch": best_epoch, "stale_epochs": stale_epochs}
        if improved:
            save_checkpoint(checkpoints / "best.pt", model, optimizer, None, epoch, best_accuracy, args,
                            extra)
        save_checkpoint(checkpoints / "last.pt", model, optimizer, None, epoch, best_accuracy, args, extra)
        if args.patience and stale_epochs >= args.patience:
            stopped_early = True
            print(f"early stop: no better {selected_on} accuracy for {args.patience} epochs")
            break
    # ---- end of training loop ----

    best = load_checkpoint(checkpoints / "best.pt", model, map_location=device, restore_rng=False)
    _, _, predictions = evaluate(model, test_loader, loss_fn, device, bf16)
    title = f"{run.dir.name}: best epoch {best['epoch']} (selected on {selected_on})"
    results = log_final_results(run, test_set.labels, predictions, test_set.images, test_set.classes,
                                title, num_samples=args.samples, seed=args.seed)
    summary = {
        "kind": "cnn", "config_id": config_id(args), "optimizer": args.optimizer, "loss": args.loss,
        "lr": args.lr, "momentum": args.momentum, "batch_size": args.bs, "dataset": args.dataset,
        "augment": args.augment, "epochs": args.epochs, "seed": args.seed,
        "smoke": args.smoke, "num_params": num_params, "train_size": len(train_set),
        "selected_on": selected_on,
        "best_epoch": best["epoch"], "best_selection_accuracy": best["best_metric"],
        "epochs_run": epoch, "stopped_early": stopped_early,
        "uniform_prediction_loss": uniform_prediction_loss(args.loss, num_classes), **results,
    }
    run.summary(summary)
    print_results(summary)
    run.finish()
    return summary


if __name__ == "__main__":
    main()
