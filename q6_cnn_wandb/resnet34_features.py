"""Q6: an MLP on the 512-d penultimate features of an ImageNet-pretrained ResNet-34 (CIFAR-10).

The assignment: torchvision's `resnet34` with `fc = Identity`, then an MLP 512 -> 256 -> 128 -> 10
trained with SGD (lr 0.01, momentum 0.9) until the training loss converges, compared with LeNet-5.

    python q6_cnn_wandb/resnet34_features.py                       # ImageNet weights, 224 px
    python q6_cnn_wandb/resnet34_features.py --weights none        # random weights: runs offline
    python q6_cnn_wandb/resnet34_features.py --smoke               # builtin10, 64 px, random weights

Features are cached in --cache-dir, keyed by dataset, split, subset, weights and image size. Prints
one line per MLP epoch, then the final model's test accuracy, confusion matrix, best and worst
class and sample predictions, as train.py does. Where the weights come from, and the departures
from the assignment and why: see q6_cnn_wandb/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from common.atomic import atomic_torch_save
from common.checkpoint import resume_if_requested, save_checkpoint
from common.cli import HelpFormatter, add_common_args, add_threads_arg, entry_point, fill_defaults
from common.data.images import ImageSet, load_images
from common.device import pick_device
from common.divergence import check_finite_loss
from common.errors import DataError
from common.seed import seed_everything
from common.tracking import start_run
from q6_cnn_wandb.results import log_final_results
from q6_cnn_wandb.train import PROJECT, QUESTION, limit

WEIGHTS_FILE = "resnet34-b627a593.pth"  # torchvision's ResNet34_Weights.IMAGENET1K_V1
WEIGHTS_LABELS = {"imagenet": "ImageNet-pretrained", "none": "random weights, not pre-trained"}
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
FEATURE_DIM = 512

DEFAULTS = {"dataset": "cifar10", "weights": "imagenet", "image_size": 224, "train_size": None,
            "test_size": None, "max_epochs": 100, "threads": None}
SMOKE_DEFAULTS = {"dataset": "builtin10", "weights": "none", "image_size": 64, "train_size": 300,
                  "test_size": 150, "max_epochs": 30, "threads": 1}
RESUME_MUST_MATCH = ("dataset", "weights", "image_size", "train_size", "test_size", "bs", "lr",
                     "momentum", "tol", "patience", "max_epochs", "seed", "standardize")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--weights", default=None, choices=sorted(WEIGHTS_LABELS),
                        help="imagenet: torchvision's cached ImageNet weights; none: random weights "
                             "(default imagenet; none with --smoke)")
    parser.add_argument("--image-size", type=int, default=None,
                        help=f"side the 32x32 images are resized to before the network "
                             f"(default {DEFAULTS['image_size']}; {SMOKE_DEFAULTS['image_size']} "
                             f"with --smoke)")
    parser.add_argument("--extract-bs", type=int, default=128, help="batch size of the feature extraction")
    parser.add_argument("--cache-dir", default=None,
                        help="folder of the cached features (default <out-dir>/q6_cnn_wandb/feature_cache)")
    parser.add_argument("--bs", type=int, default=64, help="batch size of the MLP's training")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate of the MLP")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum of the MLP")
    parser.add_argument("--tol", type=float, default=1e-3,
                        help="converged when the relative change of the training loss stays below this")
    parser.add_argument("--patience", type=int, default=3,
                        help="...for this many consecutive epochs")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help=f"stop here if not converged (default {DEFAULTS['max_epochs']}; "
                             f"{SMOKE_DEFAULTS['max_epochs']} with --smoke)")
    parser.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None,
                        help="z-score the features with the training split's mean and std before the "
                             "MLP (default: no for imagenet weights, yes for random weights)")
    parser.add_argument("--dataset", default=None, choices=["builtin10", "cifar10"],
                        help="data (default cifar10; builtin10 with --smoke)")
    parser.add_argument("--train-size", type=int, default=None,
                        help=f"stratified seeded subset of the training images (default all; "
                             f"{SMOKE_DEFAULTS['train_size']} with --smoke)")
    parser.add_argument("--test-size", type=int, default=None,
                        help=f"likewise for the test split (default all; "
                             f"{SMOKE_DEFAULTS['test_size']} with --smoke)")
    parser.add_argument("--samples", type=int, default=32,
                        help="sample test predictions shown in the W&B table and the PNG grid")
    parser.add_argument("--download", action="store_true",
                        help="fetch CIFAR-10 into --data-root if missing (needs internet)")
    add_threads_arg(parser)
    add_common_args(parser)
    args = parser.parse_args(argv)
    fill_defaults(args, DEFAULTS, SMOKE_DEFAULTS)
    if args.standardize is None:
        args.standardize = args.weights == "none"
    if min(args.image_size, args.extract_bs, args.bs, args.max_epochs, args.patience) < 1:
        parser.error("--image-size, --extract-bs, --bs, --max-epochs and --patience must be positive")
    if args.lr <= 0 or args.tol <= 0:
        parser.error("--lr and --tol must be positive")
    return args


# ---- backbone and features -------------------------------------------------------------------

def imagenet_weights_path() -> Path:
    """Where torchvision keeps the ResNet-34 ImageNet weights: torch.hub.get_dir()/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def require_imagenet_weights() -> Path:
    """The weights file, or a one-line DataError naming it and how to get it. Checked before any
    torchvision call, so that torchvision never tries to download it."""
    path = imagenet_weights_path()
    if not path.is_file():
        raise DataError(
            f"ResNet-34 ImageNet weights not found: {path} is missing; put resnet34-b627a593.pth "
            f"(https://download.pytorch.org/models/{WEIGHTS_FILE}) in {path.parent} (set TORCH_HOME to "
            f"move it), e.g. run `python -c \"import torchvision; torchvision.models.resnet34("
            f"weights='IMAGENET1K_V1')\"` on a machine with internet, or pass --weights none")
    return path


def build_backbone(weights: str) -> nn.Module:
    """torchvision's resnet34 with `fc = Identity` (outputs the 512-d pooled features), in eval
    mode; ImageNet weights from the cache file, or the random initialisation for 'none'."""
    import torchvision

    model = torchvision.models.resnet34(weights=None)
    if weights == "imagenet":
        path = require_imagenet_weights()
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:  # truncated download, another network's file
            raise DataError(f"{path} could not be loaded as ResNet-34 weights ({type(exc).__name__}); "
                            f"delete it and fetch it again") from exc
    model.fc = nn.Identity()
    return model.eval()


@torch.no_grad()
def extract_features(backbone: nn.Module, images: torch.Tensor, image_size: int, batch_size: int,
                     device: torch.device, description: str = "features") -> torch.Tensor:
    """(N, 512) float32 features (on the CPU) of uint8 (N, 3, H, W) images, resized to
    image_size x image_size (bilinear) and normalised with ImageNet's mean and std."""
    backbone = backbone.to(device).eval()
    mean = torch.tensor(IMAGENET_MEAN_STD[0], device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_MEAN_STD[1], device=device).view(1, 3, 1, 1)
    features = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=description, leave=False, disable=not sys.stderr.isatty()):
        batch = images[start:start + batch_size].to(device).float() / 255
        if batch.shape[-1] != image_size or batch.shape[-2] != image_size:
            batch = F.interpolate(batch, size=(image_size, image_size), mode="bilinear", align_corners=False)
        features.append(backbone((batch - mean) / std).float().cpu())
    return torch.cat(features) if features else torch.empty(0, FEATURE_DIM)


def cache_path(args: argparse.Namespace, split: str) -> Path:
    """The features' cache file: everything that changes the features is in its name (random
    weights depend on the seed, and so does a subset)."""
    size = args.train_size if split == "train" else args.test_size
    subset = f"-n{size}-seed{args.seed}" if size else ""
    weights = "imagenet" if args.weights == "imagenet" else f"random-seed{args.seed}"
    folder = Path(args.cache_dir) if args.cache_dir else Path(args.out_dir) / QUESTION / "feature_cache"
    return folder / f"{args.dataset}-{split}{subset}-resnet34-{weights}-{args.image_size}px.pt"


def cached_features(path: Path, image_set: ImageSet, make_backbone, args: argparse.Namespace,
                    device: torch.device, split: str) -> tuple[torch.Tensor, bool]:
    """(features, came_from_cache). A cache file whose labels differ from the data's is stale
    (the data changed) and is rebuilt."""
    if path.is_file():
        cached = torch.load(path, map_location="cpu", weights_only=True)
        if torch.equal(cached["labels"], image_set.labels) and cached["features"].shape[1] == FEATURE_DIM:
            return cached["features"], True
        print(f"{path} does not match the {split} data; extracting again")
    features = extract_features(make_backbone(), image_set.images, args.image_size, args.extract_bs,
                                device, description=f"{split} features")
    atomic_torch_save({"features": features, "labels": image_set.labels, "weights": args.weights,
                       "image_size": args.image_size}, path)
    return features, False


# ---- the MLP -----------------------------------------------------------------------------------

def build_mlp(num_classes: int = 10) -> nn.Sequential:
    """512 -> 256 -> 128 -> num_classes with ReLU between the layers."""
    return nn.Sequential(nn.Linear(FEATURE_DIM, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, num_classes))


def train_one_epoch(mlp: nn.Module, features: torch.Tensor, labels: torch.Tensor,
                    optimizer: torch.optim.Optimizer, batch_size: int, seed: int, epoch: int,
                    run: Any) -> float:
    """One pass in a seeded random order; returns the mean training loss."""
    mlp.train()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed + epoch))
    order = order.to(features.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=features.device)
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        loss = F.cross_entropy(mlp(features[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach().double() * len(index)
    return check_finite_loss(loss_sum / len(labels), run, where=f"epoch {epoch}")


@torch.no_grad()
def evaluate(mlp: nn.Module, features: torch.Tensor,
             labels: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """(mean loss, accuracy, predictions on the CPU)."""
    mlp.eval()
    logits = mlp(features)
    predictions = logits.argmax(1)
    return (F.cross_entropy(logits, labels).item(), (predictions == labels).sum().item() / len(labels),
            predictions.cpu())


def standardize(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both feature sets z-scored per dimension with the training set's mean and std."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return (train - mean) / std, (test - mean) / std


def relative_change(previous: float | None, current: float) -> float:
    """|current - previous| / previous (inf for the first epoch)."""
    if previous is None or previous == 0:
        return float("inf")
    return abs(current - previous) / previous


def run_name(args: argparse.Namespace) -> str:
    """E.g. resnet34-imagenet-224px-mlp, or smoke-resnet34-random-weights-64px-mlp."""
    weights = "imagenet" if args.weights == "imagenet" else "random-weights"
    return f"{'smoke-' if args.smoke else ''}resnet34-{weights}-{args.image_size}px-mlp"


@entry_point
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    device = pick_device(args.device)
    paths = {split: cache_path(args, split) for split in ("train", "test")}
    if args.weights == "imagenet" and not all(path.is_file() for path in paths.values()):
        require_imagenet_weights()  # fail in one line before loading any data
    train_set = limit(load_images(args.dataset, args.data_root, "train", download=args.download),
                      args.train_size, args.seed)
    test_set = limit(load_images(args.dataset, args.data_root, "test", download=args.download),
                     args.test_size, args.seed)
    label = WEIGHTS_LABELS[args.weights]
    tag = f"{args.dataset.upper()} resnet34-{'imagenet' if args.weights == 'imagenet' else 'random'}"
    run = start_run(args, project=PROJECT, question=QUESTION, default_name=run_name(args),
                    extra_config={"weights_label": label, "pretrained": args.weights == "imagenet"})

    # ---- feature extraction (once; cached) ----
    backbone: list[nn.Module] = []

    def make_backbone() -> nn.Module:  # built on the first cache miss only
        if not backbone:
            torch.manual_seed(args.seed)  # random weights depend on the seed alone
            backbone.append(build_backbone(args.weights))
        return backbone[0]

    started = time.time()
    train_features, train_cached = cached_features(paths["train"], train_set, make_backbone, args, device,
                                                   "train")
    test_features, test_cached = cached_features(paths["test"], test_set, make_backbone, args, device, "test")
    extraction_seconds = time.time() - started
    backbone.clear()
    print(f"[{tag}] features {tuple(train_features.shape)} train, {tuple(test_features.shape)} test "
          f"({label}, {args.image_size} px; "
          f"{'from the cache' if train_cached and test_cached else 'extracted'} "
          f"in {extraction_seconds:.1f} s)")
    if args.standardize:
        train_features, test_features = standardize(train_features, test_features)
    train_x, train_y = train_features.to(device), train_set.labels.to(device)
    test_x, test_y = test_features.to(device), test_set.labels.to(device)

    torch.manual_seed(args.seed)
    mlp = build_mlp(len(test_set.classes)).to(device)
    optimizer = torch.optim.SGD(mlp.parameters(), lr=args.lr, momentum=args.momentum)
    checkpoint = run.dir / "checkpoints" / "last.pt"
    start_epoch, previous_loss, calm_epochs = 1, None, 0
    best_accuracy, best_epoch = -1.0, 0
    state = resume_if_requested(args, checkpoint, mlp, optimizer, must_match=RESUME_MUST_MATCH,
                                map_location=device)
    if state is not None:
        start_epoch = state["epoch"] + 1
        previous_loss, calm_epochs = state["extra"]["previous_loss"], state["extra"]["calm_epochs"]
        best_accuracy, best_epoch = state["best_metric"], state["extra"]["best_epoch"]
        run.rewind(state["epoch"])
        print(f"resumed from {checkpoint} after epoch {state['epoch']}")

    # ---- training loop ----
    epoch, converged = start_epoch - 1, calm_epochs >= args.patience
    for epoch in range(start_epoch, 1 if converged else args.max_epochs + 1):
        train_loss = train_one_epoch(mlp, train_x, train_y, optimizer, args.bs, args.seed, epoch, run)
        test_loss, test_accuracy, _ = evaluate(mlp, test_x, test_y)
        change = relative_change(previous_loss, train_loss)
        calm_epochs = calm_epochs + 1 if change < args.tol else 0
        converged = calm_epochs >= args.patience
        previous_loss = train_loss
        if test_accuracy > best_accuracy:
            best_accuracy, best_epoch = test_accuracy, epoch
        run.log({"epoch": epoch, "train_loss": train_loss, "test_loss": test_loss,
                 "test_accuracy": test_accuracy, "relative_loss_change": change}, step=epoch)
        print(f"[{tag}] Epoch {epoch}/{args.max_epochs} | loss {train_loss:.4f} | "
              f"test loss {test_loss:.4f} | "
              f"test acc {100 * test_accuracy:.2f}% | rel change {change:.4f}")
        save_checkpoint(checkpoint, mlp, optimizer, None, epoch, best_accuracy, args,
                        {"previous_loss": previous_loss, "calm_epochs": calm_epochs,
                         "best_epoch": best_epoch})
        if converged:
            break
    # ---- end of training loop ----
    if converged:
        print(f"converged: relative change of the training loss below {args.tol:g} "
              f"for {args.patience} epochs")
    else:
        print(f"not converged after {args.max_epochs} epochs (relative change still >= {args.tol:g})")

    final_loss, final_accuracy, predictions = evaluate(mlp, test_x, test_y)
    results = log_final_results(run, test_set.labels, predictions, test_set.images, test_set.classes,
                                f"{run.dir.name}: final model ({label})", num_samples=args.samples,
                                seed=args.seed)
    summary = {
        "kind": "resnet34_mlp", "weights": args.weights, "weights_label": label,
        "pretrained": args.weights == "imagenet", "image_size": args.image_size, "dataset": args.dataset,
        "smoke": args.smoke, "standardized": args.standardize, "feature_dim": int(train_features.shape[1]),
        "train_size": len(train_set),
        "epochs_run": epoch, "converged": converged, "final_train_loss": previous_loss,
        "final_test_loss": final_loss, "best_test_accuracy": best_accuracy, "best_epoch": best_epoch,
        "features_from_cache": train_cached and test_cached, "extraction_seconds": extraction_seconds,
        **results,
    }
    run.summary(summary)
    print(f"\n{'features':<40}{'epochs':>7}{'converged':>10}{'test acc':>10}{'best test acc':>15}  "
          f"{'best class':<20}{'worst class':<20}")
    print(f"{'resnet34 ' + label + f' {args.image_size}px':<40}{epoch:>7}{'yes' if converged else 'no':>10}"
          f"{100 * results['test_accuracy']:>9.2f}%{100 * best_accuracy:>14.2f}%  "
          f"{results['best_class']:<20}{results['worst_class']:<20}")
    run.finish()
    return summary


if __name__ == "__main__":
    main()
