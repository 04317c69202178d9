"""Throughput of the batched augmentation (common.data.images.ImageLoader) against torchvision's
per-image pipeline, on the same images in the same run.

    python benchmarks/bench_data.py [--n 10000]          # CPU, torch's default thread count
    python benchmarks/bench_data.py --device cuda        # ours on the GPU (torchvision stays per image)

One epoch over `--n` 32x32 images of builtin10 (content does not matter for speed), batches of
`--batch-size`, both producing shuffled, augmented, normalised float32 batches and labels:

    torchvision  transforms.Compose([RandomCrop(32, 4), RandomHorizontalFlip(), ToTensor(),
                 Normalize(mean, std)]) on ready-made PIL images, one image at a time as in
                 Dataset.__getitem__, then default_collate per batch (a DataLoader with
                 num_workers=0, minus its bookkeeping)
    ours         ImageLoader(augment=True): index, crop, flip and normalise whole batches

The PIL images are built before timing (torchvision's CIFAR10 builds them in __getitem__), which
favours torchvision. After `--warmup` untimed epochs of each, the two alternate for `--reps`
timed epochs and the best epoch of each counts, so that load from other processes hits both
alike. Prints both throughputs and, last, exactly

    ratio augment_throughput ours/torchvision = X

Target: X >= 10 on 2 CPU cores. Runtime: about 10 s on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import time

import torch
from PIL import Image
from torch.utils.data import default_collate
from torchvision import transforms

from common.cli import HelpFormatter, positive_int
from common.data.images import MEAN_STD, ImageLoader, load_images


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--n", type=int, default=10000, help="images per epoch")
    parser.add_argument("--batch-size", type=int, default=512, help="batch size of both pipelines")
    parser.add_argument("--reps", type=int, default=3, help="timed epochs of each (best counts)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed epochs of each first")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device of ours")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    return parser.parse_args(argv)


def torchvision_epoch(pil_images: list[Image.Image], labels: list[int], transform, batch_size: int,
                      epoch: int) -> None:
    order = torch.randperm(len(pil_images), generator=torch.Generator().manual_seed(epoch)).tolist()
    for start in range(0, len(order), batch_size):
        default_collate([(transform(pil_images[i]), labels[i]) for i in order[start:start + batch_size]])


def ours_epoch(loader: ImageLoader, epoch: int) -> None:
    loader.set_epoch(epoch)
    for images, _ in loader:
        pass
    if images.device.type == "cuda":
        torch.cuda.synchronize()  # kernels run asynchronously: wait for the last batch


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data = load_images("builtin10", None, "train", size=args.n)
    mean, std = MEAN_STD["builtin10"]
    pil_images = [Image.fromarray(image.permute(1, 2, 0).numpy()) for image in data.images]
    labels = data.labels.tolist()
    transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize(mean, std)])
    loader = ImageLoader(data.images, data.labels, args.batch_size, shuffle=True, augment=True,
                         mean=mean, std=std, device=args.device, seed=0)
    print(f"{args.n} images 32x32, batch {args.batch_size}, torch threads {torch.get_num_threads()}, "
          f"ours on {args.device}")

    runs = {"torchvision": lambda epoch: torchvision_epoch(pil_images, labels, transform,
                                                           args.batch_size, epoch),
            "ours": lambda epoch: ours_epoch(loader, epoch)}
    best = {name: float("inf") for name in runs}
    for rep in range(args.warmup + args.reps):
        for name, run in runs.items():
            start = time.perf_counter()
            run(rep)
            if rep >= args.warmup:
                best[name] = min(best[name], time.perf_counter() - start)

    throughput = {name: args.n / seconds for name, seconds in best.items()}
    print(f"torchvision per-image pipeline  {throughput['torchvision']:>12,.0f} images/s")
    print(f"ours batched ImageLoader        {throughput['ours']:>12,.0f} images/s")
    print(f"ratio augment_throughput ours/torchvision = {throughput['ours'] / throughput['torchvision']:.2f}")


if __name__ == "__main__":
    main()
