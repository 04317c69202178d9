"""Active learning on CIFAR-10 and Flowers102: Core-set (k-center greedy) against random
sampling, entropy and BALD (the report's question 3; Sener & Savarese, ICLR 2018).

    python q3_active_learning/run.py --dataset cifar10 --method coreset --seed 0
    python q3_active_learning/run.py --smoke --method bald      # built-in data, a few seconds
    bash scripts/reproduce_q3.sh [--smoke]                      # every method x dataset x 3 seeds

From INIT_SIZE seeded labels, each of MAX_EPISODES episodes labels AL_BSIZE images chosen by
`--method` and trains a new network from scratch. Prints one line per episode and a final table;
writes metrics, summary.json and one checkpoint per episode (`--resume` continues after it).
Data, outputs, and the departures from the report and its public code, and why: see
q3_active_learning/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.checkpoint import resume_if_requested, save_checkpoint
from common.cli import HelpFormatter, add_accel_args, add_common_args, entry_point, fill_defaults
from common.data.images import MEAN_STD, ImageLoader, ImageSet, load_images
from common.device import autocast_context, pick_device, use_channels_last
from common.device import use_bf16 as bf16_on
from common.divergence import check_finite_loss
from common.errors import DataError
from common.seed import seed_everything
from common.tracking import start_run
from q3_active_learning.model import Net
from q3_active_learning.sampling import STRATEGIES

DATASETS = ("cifar10", "flowers102")
# Under --smoke, built-in data that needs no files stands in for each dataset.
SMOKE_STANDINS = {"cifar10": "builtin10", "flowers102": "digits"}
# A checkpoint's settings must match the resumed command's, or the result would be a mixture.
RESUME_MUST_MATCH = ("dataset", "method", "seed", "epochs", "lr", "gamma", "step_size", "init_size",
                     "al_bsize", "batch_size", "image_size", "width", "mc_samples", "pool_size", "test_size",
                     "augment", "smoke", "val_size")
# The report's settings, and the --smoke ones (flags given explicitly still win).
DEFAULTS = {"epochs": 10, "init_size": 100, "al_bsize": 100, "max_episodes": 10, "width": 32,
            "pool_size": None, "test_size": None, "mc_samples": 10}
SMOKE_DEFAULTS = {"epochs": 10, "init_size": 40, "al_bsize": 40, "max_episodes": 3, "width": 8,
                  "pool_size": 1000, "test_size": 500, "mc_samples": 5, "val_size": 200}
# Labelled validation images held out of the pool (never queried, never trained on): what a
# choice between recipes is made on, so that the test split is only ever reported. Flowers102's
# pool (train+val, 2,040 images) keeps 1,540 for the 1,100 labels of a run.
VAL_SIZES = {"cifar10": 5000, "flowers102": 500}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--dataset", default="cifar10", choices=DATASETS,
                        help="image set: the pool is cifar10's train split or flowers102's train+val")
    parser.add_argument("--method", default="coreset", choices=sorted(STRATEGIES),
                        help="query strategy that picks the images to label")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs per episode (EPOCHS; default 10)")
    parser.add_argument("--lr", type=float, default=0.001, help="Adam learning rate (LR)")
    parser.add_argument("--gamma", type=float, default=0.1, help="StepLR decay factor (GAMMA)")
    parser.add_argument("--step-size", type=int, default=5,
                        help="StepLR step in epochs; the report's 1 leaves lr 1e-5 from epoch 3 on")
    parser.add_argument("--init-size", type=int, default=None,
                        help="labeled images before the first episode "
                             "(INIT_SIZE; default 100, 40 with --smoke)")
    parser.add_argument("--al-bsize", type=int, default=None,
                        help="images labeled per episode (AL_BSIZE; default 100, 40 with --smoke)")
    parser.add_argument("--max-episodes", type=int, default=None,
                        help="query-and-retrain episodes after the initial training "
                             "(MAX_EPISODES; default 10, 3 with --smoke)")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size (BATCH_SIZE)")
    parser.add_argument("--test-batch-size", type=int, default=1000,
                        help="evaluation and pool-scoring batch size (TEST_BATCH_SIZE)")
    parser.add_argument("--image-size", type=int, default=32,
                        help="side of the square images (Flowers102 is resized to it)")
    parser.add_argument("--width", type=int, default=None,
                        help="channels of the first convolution, the second has twice "
                             "as many (default 32, 8 with --smoke)")
    parser.add_argument("--mc-samples", type=int, default=None,
                        help="MC-dropout samples per image for entropy and bald (default 10, 5 with --smoke)")
    parser.add_argument("--pool-size", type=int, default=None,
                        help="use a fixed random subset of this many pool images "
                             "(default all, 1000 with --smoke)")
    parser.add_argument("--val-size", type=int, default=None,
                        help="labelled validation images held out of the pool, the same for every seed and "
                             "method (default 5000 cifar10, 500 flowers102, 200 with --smoke)")
    parser.add_argument("--test-size", type=int, default=None,
                        help="use a fixed random subset of this many test images "
                             "(default all, 500 with --smoke)")
    parser.add_argument("--augment", action="store_true",
                        help="random crop (zero padding 4) and horizontal flip of the labeled images "
                             "while training (a departure from the report, which trains without)")
    parser.add_argument("--keep-checkpoints", type=int, default=0,
                        help="keep only the newest N episode checkpoints (0 keeps every one, as the "
                             "report did; a CIFAR-10 checkpoint is about 20 MB)")
    parser.add_argument("--download", action="store_true",
                        help="download a missing dataset into --data-root (needs internet)")
    add_accel_args(parser)
    add_common_args(parser)
    args = fill_defaults(parser.parse_args(argv), DEFAULTS, SMOKE_DEFAULTS)
    if args.val_size is None:
        args.val_size = VAL_SIZES[args.dataset]
    for name in ("epochs", "step_size", "init_size", "al_bsize", "batch_size", "test_batch_size",
                 "width", "mc_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.max_episodes < 0 or args.keep_checkpoints < 0 or args.val_size < 1:
        parser.error("--max-episodes and --keep-checkpoints must be non-negative, --val-size positive")
    return args


# ---- helpers ----------------------------------------------------------------------------------

def episode_seed(seed: int, episode: int, purpose: int = 0) -> int:
    """The seed of one episode's training (purpose 0) or selection (purpose 1): a function of
    (--seed, episode) only, so the same for every method and for a resumed run."""
    return (seed * 1_000_003 + episode * 7_919 + purpose * 104_729) % 2**62


def initial_pool(pool_size: int, init_size: int, seed: int) -> torch.Tensor:
    """The first labeled images: a random `init_size` of the pool from a generator seeded with
    `seed` alone (identical for every method)."""
    if not 0 < init_size <= pool_size:
        raise DataError(f"--init-size {init_size} must be between 1 and the pool's {pool_size} images")
    return torch.randperm(pool_size, generator=torch.Generator().manual_seed(seed))[:init_size]


def fixed_subset(image_set: ImageSet, size: int | None) -> ImageSet:
    """A random subset of `size` images, the same for every seed and method (seed 0)."""
    if size is None or size >= len(image_set):
        return image_set
    order = torch.randperm(len(image_set), generator=torch.Generator().manual_seed(0))
    return image_set.subset(order[:size].sort().values)


def split_validation(images: ImageSet, val_size: int) -> tuple[ImageSet, ImageSet]:
    """(pool, validation): a random `val_size` of the images, the same for every seed and method
    (seed 0), held out as the labelled validation set; the rest is the pool."""
    if val_size >= len(images):
        raise DataError(f"--val-size {val_size} leaves no pool out of {len(images)} images; lower it")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    return images.subset(order[val_size:].sort().values), images.subset(order[:val_size].sort().values)


def load_data(args) -> tuple[str, ImageSet, ImageSet, ImageSet]:
    """(data name, pool, validation set, test set) for `args.dataset`, or its built-in stand-in
    under --smoke. The validation set is held out of the pool split before --pool-size applies."""
    if args.smoke:
        name = SMOKE_STANDINS[args.dataset]
        pool_split, root = "train", None
    else:
        name = args.dataset
        pool_split, root = ("trainval" if name == "flowers102" else "train"), args.data_root
    if args.smoke:  # builtin10 draws only the images asked for, which is faster than subsetting
        pool_kwargs = {"size": args.pool_size + args.val_size} if name == "builtin10" else {}
        test_kwargs = {"size": args.test_size} if name == "builtin10" else {}
    else:
        pool_kwargs = test_kwargs = {"download": args.download, "image_size": args.image_size}
    pool, val = split_validation(load_images(name, root, pool_split, **pool_kwargs), args.val_size)
    test = load_images(name, root, "test", **test_kwargs)
    return name, fixed_subset(pool, args.pool_size), val, fixed_subset(test, args.test_size)


def recipe_suffix(args) -> str:
    """'' for the report's training recipe, else what differs: -aug, -ep30, -aug-ep30."""
    return ("-aug" if args.augment else "") + (f"-ep{args.epochs}" if args.epochs != 10 else "")


def epoch_step(episode: int, epoch: int, epochs: int) -> int:
    """The W&B / metrics.jsonl step of an epoch inside an episode (episodes follow each other)."""
    return episode * epochs + epoch


def episode_checkpoints(run_dir: Path) -> list[Path]:
    """The run's episode checkpoints, oldest first."""
    return sorted((run_dir / "checkpoints").glob("episode_*.pt"))


# ---- training and evaluation ------------------------------------------------------------------

def train_one_epoch(model, loader, optimizer, device, use_bf16: bool, run, where: str) -> tuple[float, float]:
    """One pass over the labeled images; returns the mean training loss and accuracy (with
    dropout on, as trained)."""
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for images, labels in tqdm(loader, desc=where, leave=False, disable=not sys.stderr.isatty()):
        with autocast_context(device, use_bf16):
            log_probs = model(images).float()
        loss = F.nll_loss(log_probs, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(labels)
        correct += (log_probs.detach().argmax(1) == labels).sum()
    # One read per epoch: the value is needed for the log and for the divergence guard.
    loss = check_finite_loss(loss_sum / loader.num_samples, run, where=where)
    return loss, int(correct) / loader.num_samples


@torch.no_grad()
def evaluate(model, loader, device, use_bf16: bool) -> tuple[float, float]:
    """(mean NLL loss, accuracy) on an evaluation loader (validation or test)."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for images, labels in loader:
        with autocast_context(device, use_bf16):
            log_probs = model(images).float()
        loss_sum += F.nll_loss(log_probs, labels, reduction="sum").double()
        correct += (log_probs.argmax(1) == labels).sum()
    count = loader.num_samples
    return float(loss_sum) / count, int(correct) / count


# ---- main -------------------------------------------------------------------------------------

@entry_point
def main(argv=None) -> dict:
    args = parse_args(argv)
    seed_everything(args.seed)
    device = pick_device(args.device)
    use_bf16 = bf16_on(args, device)
    channels_last = use_channels_last(args, device)
    data_name, pool, val, test = load_data(args)
    mean, std = MEAN_STD[data_name]
    tag = f"[{args.dataset}|{args.method}]"
    name = f"{args.dataset}-{args.method}{recipe_suffix(args)}-seed{args.seed}"
    run = start_run(args, project="Q3-active-learning", question="q3_active_learning",
                    default_name=("smoke-" if args.smoke else "") + name,
                    extra_config={"data": data_name, "pool_images": len(pool), "val_images": len(val),
                                  "test_images": len(test), "num_classes": len(pool.classes)},
                    group=args.dataset, job_type=args.method)
    print(f"{tag} data {data_name}{' (built-in, --smoke)' if args.smoke else ''}: pool {len(pool):,}, "
          f"validation {len(val):,}, test {len(test):,}, {len(pool.classes)} classes | device {device} "
          f"| run {run.dir}")

    def new_model() -> Net:
        model = Net(in_channels=pool.images.shape[1], image_size=pool.images.shape[-1],
                    num_classes=len(pool.classes), width=args.width).to(device)
        return model.to(memory_format=torch.channels_last) if channels_last else model

    def new_optimizer(model):
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, args.step_size, gamma=args.gamma)

    val_loader, test_loader = (
        ImageLoader(split.images, split.labels, args.test_batch_size, shuffle=False, augment=False, mean=mean,
                    std=std, device=device, channels_last=channels_last) for split in (val, test))
    labeled = initial_pool(len(pool), args.init_size, args.seed)
    history: list[dict] = []
    model, first_episode = None, 0
    saved = episode_checkpoints(run.dir) if args.resume else []
    if args.resume and (saved or args.resume != "auto"):
        if not saved:
            raise DataError(f"no episode checkpoint in {run.dir / 'checkpoints'}; "
                            f"run without --resume to start afresh")
        model = new_model()
        optimizer, scheduler = new_optimizer(model)
        state = resume_if_requested(args, saved[-1], model, optimizer, scheduler,
                                    must_match=RESUME_MUST_MATCH, map_location=device)
        labeled = torch.as_tensor(state["extra"]["labeled_idx"], dtype=torch.long)
        history = list(state["extra"]["history"])
        first_episode = state["epoch"] + 1
        run.rewind(epoch_step(state["epoch"], args.epochs, args.epochs))
        print(f"{tag} resumed from {saved[-1].name}: {len(labeled)} labeled")

    # ---- active-learning loop ----
    for episode in range(first_episode, args.max_episodes + 1):
        selection_seconds = 0.0
        if episode > 0:
            unlabeled_mask = torch.ones(len(pool), dtype=torch.bool)
            unlabeled_mask[labeled] = False
            unlabeled = unlabeled_mask.nonzero().squeeze(1)
            budget = min(args.al_bsize, len(unlabeled))
            if budget == 0:
                print(f"{tag} the pool is fully labeled after episode {episode - 1}; stopping")
                break
            seed_everything(episode_seed(args.seed, episode, purpose=1))  # MC-dropout masks
            generator = torch.Generator().manual_seed(episode_seed(args.seed, episode, purpose=1))
            start = time.perf_counter()
            picks = STRATEGIES[args.method](
                model, pool.images, labeled, unlabeled, budget, generator=generator, device=device,
                mean=mean, std=std, batch_size=args.test_batch_size, mc_samples=args.mc_samples)
            selection_seconds = time.perf_counter() - start
            labeled = torch.cat([labeled, picks.cpu()])

        # A new network from scratch, its initialisation and batch order seeded per episode.
        seed_everything(episode_seed(args.seed, episode))
        model = new_model()
        optimizer, scheduler = new_optimizer(model)
        train_model = torch.compile(model) if args.compile and device.type == "cuda" else model
        train_loader = ImageLoader(pool.images[labeled], pool.labels[labeled], args.batch_size,
                                   shuffle=True, augment=args.augment, mean=mean, std=std, device=device,
                                   seed=episode_seed(args.seed, episode), channels_last=channels_last)
        # ---- training loop ----
        for epoch in range(1, args.epochs + 1):
            train_loader.set_epoch(epoch)
            where = f"episode {episode} epoch {epoch}"
            train_loss, train_accuracy = train_one_epoch(train_model, train_loader, optimizer, device,
                                                         use_bf16, run, where=where)
            run.log({"episode": episode, "epoch": epoch, "labeled": len(labeled),
                     "epoch_train_loss": train_loss, "epoch_train_accuracy": train_accuracy,
                     "lr": scheduler.get_last_lr()[0]}, step=epoch_step(episode, epoch, args.epochs))
            scheduler.step()
        val_loss, val_accuracy = evaluate(model, val_loader, device, use_bf16)
        test_loss, test_accuracy = evaluate(model, test_loader, device, use_bf16)

        # What the strategy picked, in the oracle's classes: a strategy that labels some classes
        # far more than others shows it here.
        class_counts = torch.bincount(pool.labels[labeled], minlength=len(pool.classes)).tolist()
        record = {"episode": episode, "labeled": len(labeled), "train_loss": train_loss,
                  "val_accuracy": val_accuracy, "val_loss": val_loss,
                  "test_accuracy": test_accuracy, "test_loss": test_loss,
                  "selection_seconds": selection_seconds, "labeled_class_counts": class_counts}
        history.append(record)
        run.log(record, step=epoch_step(episode, args.epochs, args.epochs))
        print(f"{tag} Episode {episode}/{args.max_episodes} | labeled {len(labeled)} | "
              f"val acc {100 * val_accuracy:.2f}% | test acc {100 * test_accuracy:.2f}% | "
              f"test loss {test_loss:.3f}", flush=True)
        save_checkpoint(run.dir / "checkpoints" / f"episode_{episode:02d}.pt", model, optimizer,
                        scheduler, epoch=episode, best_metric=test_accuracy, args=args,
                        extra={"labeled_idx": labeled.clone(), "history": history,
                               "test_loss": test_loss, "test_accuracy": test_accuracy,
                               "train_loss": train_loss})
        if args.keep_checkpoints:
            for old in episode_checkpoints(run.dir)[:-args.keep_checkpoints]:
                old.unlink()

    summary = {
        "dataset": args.dataset, "data": data_name, "method": args.method, "seed": args.seed,
        "recipe": "report" + recipe_suffix(args), "augment": args.augment, "epochs": args.epochs,
        "episodes": len(history), "labeled_sizes": [h["labeled"] for h in history],
        "val_images": len(val), "val_accuracy_curve": [h["val_accuracy"] for h in history],
        "final_val_accuracy": history[-1]["val_accuracy"] if history else None,
        "test_accuracy_curve": [h["test_accuracy"] for h in history],
        "test_loss_curve": [h["test_loss"] for h in history],
        "final_labeled": history[-1]["labeled"] if history else None,
        "final_test_accuracy": history[-1]["test_accuracy"] if history else None,
        "final_test_loss": history[-1]["test_loss"] if history else None,
        "selection_seconds_total": sum(h["selection_seconds"] for h in history),
        "labeled_class_counts": history[-1]["labeled_class_counts"] if history else None,
        "class_names": list(pool.classes),
    }
    run.summary(summary)
    columns = ["episode", "labeled", "train_loss", "val_accuracy", "test_accuracy", "test_loss",
               "selection_seconds"]
    run.table("episodes", columns, [[h[c] for c in columns] for h in history])
    print(f"\n{tag} results")
    print(f"{'episode':>7} {'labeled':>8} {'val acc':>8} {'test acc':>9} {'test loss':>10} {'select s':>9}")
    for h in history:
        print(f"{h['episode']:>7} {h['labeled']:>8} {100 * h['val_accuracy']:>7.2f}% "
              f"{100 * h['test_accuracy']:>8.2f}% {h['test_loss']:>10.3f} {h['selection_seconds']:>9.2f}")
    run.finish()
    return summary


if __name__ == "__main__":
    main()
