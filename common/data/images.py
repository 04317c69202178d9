"""Image datasets as in-memory uint8 tensors, and batched augmentation on the device.

    train = load_images("cifar10", root="data", split="train")      # ImageSet(images, labels, classes)
    loader = ImageLoader(train.images, train.labels, batch_size=128, shuffle=True, augment=True,
                         mean=MEAN_STD["cifar10"][0], std=MEAN_STD["cifar10"][1], device="cuda")
    for epoch in range(epochs):
        loader.set_epoch(epoch)          # like DistributedSampler: no call, same order every epoch
        for images, labels in loader: ...

Real sets (`cifar10`, `cifar100`, `flowers102`) are read from `root` in torchvision's layout
(`download=True` fetches it) or an ImageFolder layout (`<root>/[<name>/]<split>/<class>/*.png`);
decoded tensors are cached in `<root>/.cache/`. Offline sets need no files: `builtin10` /
`builtin100` (synthetic 32x32 shapes; fine class f of builtin100 is coarse class f // 10 of
builtin10) and `digits` (scikit-learn's 8x8 digits upsampled to 32x32).

Departure from the per-image torchvision pipeline: the whole uint8 set lives on the device and
each batch is cropped (zero padding 4) and flipped by one gather, then normalised in one op: the
same augmentation as `RandomCrop(32, padding=4)` + `RandomHorizontalFlip()`, over 10x faster on
a CPU (`benchmarks/bench_data.py`).
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common.atomic import atomic_torch_save
from common.distributed import shard_indices
from common.errors import DataError

REAL_DATASETS = ("cifar10", "cifar100", "flowers102")
BUILTIN_DATASETS = ("builtin10", "builtin100", "digits")
DATASETS = REAL_DATASETS + BUILTIN_DATASETS

SPLITS = {
    "cifar10": ("train", "test"),
    "cifar100": ("train", "test"),
    "flowers102": ("train", "val", "test", "trainval"),
    "builtin10": ("train", "test"),
    "builtin100": ("train", "test"),
    "digits": ("train", "test"),
}

_IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

# Per-channel mean and std of the training images in [0, 1], for `Normalize`-style scaling.
# The builtin and digits figures were measured on their default train splits.
MEAN_STD: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    # Flowers102 is almost always used with ImageNet-pretrained networks, so their statistics.
    "flowers102": _IMAGENET_MEAN_STD,
    "builtin10": ((0.3037, 0.3039, 0.3035), (0.2147, 0.2149, 0.2150)),
    "builtin100": ((0.3048, 0.3059, 0.3047), (0.2128, 0.2127, 0.2131)),
    "digits": ((0.3059, 0.3059, 0.3059), (0.3241, 0.3241, 0.3241)),
}

# Bump when the cache format or the decoding changes, so old cache files are rebuilt.
_CACHE_VERSION = 1
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp")
_DEFAULT_IMAGE_SIZE = 32


@dataclass
class ImageSet:
    """A labelled image set held in memory.

    images: uint8 (N, 3, H, W); labels: int64 (N,) indexing `classes`; classes: class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: torch.Tensor) -> ImageSet:
        """The images at `indices` (e.g. from `stratified_subset` or `train_val_split`)."""
        return ImageSet(self.images[indices], self.labels[indices], list(self.classes))


def load_images(name: str, root: str | os.PathLike | None, split: str, download: bool = False,
                image_size: int | None = None, size: int | None = None) -> ImageSet:
    """Load split `split` of dataset `name` (one of `DATASETS`) as an `ImageSet`.

    root: folder holding the real datasets (ignored by the built-in sets).
    download: fetch a missing real dataset through torchvision (needs internet).
    image_size: side of the square images; images of another size are resized (shorter side)
        and centre-cropped. Default 32 (the built-in sets only come in 32).
    size: number of images for builtin10/builtin100 (default 5000/1000 and 10000/2000 for
        train/test); ignored by the other sets.
    Raises DataError (one line: path searched, layouts expected, how to fetch) when real data is
    missing or malformed, ValueError for an unknown name or split.
    """
    if name not in SPLITS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    if split not in SPLITS[name]:
        raise ValueError(f"{name} has splits {', '.join(SPLITS[name])}, not {split!r}")
    image_size = _DEFAULT_IMAGE_SIZE if image_size is None else image_size
    if name in BUILTIN_DATASETS:
        if image_size != _DEFAULT_IMAGE_SIZE:
            raise ValueError(f"{name} comes in 32x32 only, not image_size={image_size}")
        if name == "digits":
            return _load_digits(split)
        return _load_builtin_shapes(name, split, size)
    if root is None:
        raise DataError(f"{name} needs a data folder: pass --data-root DIR holding it "
                        f"(or --download to fetch it there on a machine with internet)")
    return _load_real(name, Path(root), split, download, image_size)


# ---------------------------------------------------------------------------------------------
# real datasets: layout detection, decoding, cache
# ---------------------------------------------------------------------------------------------

_TORCHVISION_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python",
                        "flowers102": "flowers-102"}


@dataclass
class _Source:
    """Where a split's data was found: the files it reads (for the cache fingerprint) and how."""

    layout: str
    files: list[Path]
    read: Callable[[], ImageSet]


def _load_real(name: str, root: Path, split: str, download: bool, image_size: int) -> ImageSet:
    try:
        source = _find_source(name, root, split, image_size)
    except DataError:
        if not download:
            raise
        source = None  # an incomplete torchvision layout: torchvision's download completes it
    if source is None and download:
        _download(name, root)
        source = _find_source(name, root, split, image_size)
    if source is None:
        raise DataError(_missing_message(name, root, split))

    cache_path = root / ".cache" / f"{name}_{split}_{image_size}.pt"
    fingerprint = _fingerprint(source, root, image_size)
    cached = _read_cache(cache_path, fingerprint)
    if cached is not None:
        return cached
    image_set = source.read()
    _write_cache(cache_path, image_set, fingerprint)
    return image_set


def _missing_message(name: str, root: Path, split: str) -> str:
    split_dirs = split if split != "trainval" else "{train,val}"
    return (f"{name} {split} data not found under {root.resolve()}: expected "
            f"{root / _TORCHVISION_FOLDERS[name]}/ (torchvision layout) or "
            f"{root / name}/{split_dirs}/<class>/*.png|jpg (ImageFolder layout, also accepted "
            f"as {root}/{split_dirs}/<class>/); pass --download on a machine with internet "
            f"to fetch it, or copy it there")


def _download(name: str, root: Path) -> None:
    """Fetch the torchvision layout of `name` into `root` (both splits)."""
    from torchvision import datasets  # imported here: only the download path needs it

    try:
        if name == "cifar10":
            datasets.CIFAR10(root, train=True, download=True)
            datasets.CIFAR10(root, train=False, download=True)
        elif name == "cifar100":
            datasets.CIFAR100(root, train=True, download=True)
            datasets.CIFAR100(root, train=False, download=True)
        else:
            datasets.Flowers102(root, split="train", download=True)  # fetches all splits
    except Exception as error:  # network, disk or checksum failure: say which, in one line
        message = " ".join(str(error).split())
        raise DataError(f"downloading {name} into {root.resolve()} failed ({type(error).__name__}: "
                        f"{message}); download it on a machine with internet and copy "
                        f"{root / _TORCHVISION_FOLDERS[name]} there") from error


def _split_dirs(split: str) -> list[str]:
    return ["train", "val"] if split == "trainval" else [split]


def _find_source(name: str, root: Path, split: str, image_size: int) -> _Source | None:
    torchvision_dir = root / _TORCHVISION_FOLDERS[name]
    if torchvision_dir.is_dir():
        if name == "flowers102":
            return _flowers_source(torchvision_dir, split, image_size)
        return _cifar_source(name, torchvision_dir, split, image_size)
    for base in (root / name, root):
        if all((base / split_dir).is_dir() for split_dir in _split_dirs(split)):
            return _image_folder_source(base, split, image_size)
    return None


def _cifar_source(name: str, folder: Path, split: str, image_size: int) -> _Source:
    if name == "cifar10":
        batches = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        meta, label_key, names_key = "batches.meta", "labels", "label_names"
    else:
        batches = [split]
        meta, label_key, names_key = "meta", "fine_labels", "fine_label_names"
    files = [folder / file_name for file_name in [*batches, meta]]
    for path in files:
        if not path.is_file():
            raise DataError(f"{path} is missing from the torchvision {name} layout; remove "
                            f"{folder} and pass --download on a machine with internet")

    def read() -> ImageSet:
        images, labels = [], []
        for path in files[:-1]:
            entry = _unpickle(path)
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(entry[label_key])
        classes = [str(class_name) for class_name in _unpickle(files[-1])[names_key]]
        image_tensor = torch.from_numpy(np.concatenate(images))
        if image_size != 32:
            from torchvision.transforms import functional as TF

            image_tensor = TF.resize(image_tensor, [image_size, image_size], antialias=True)
        return ImageSet(image_tensor, torch.tensor(labels, dtype=torch.int64), classes)

    return _Source("torchvision", files, read)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle, encoding="latin1")  # CIFAR's pickles are Python 2's
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise DataError(f"cannot read {path} ({type(error).__name__}); the file is damaged: "
                        f"remove it and pass --download on a machine with internet") from error


def _flowers_source(folder: Path, split: str, image_size: int) -> _Source:
    labels_path, setid_path = folder / "imagelabels.mat", folder / "setid.mat"
    for path in (labels_path, setid_path, folder / "jpg"):
        if not path.exists():
            raise DataError(f"{path} is missing from the torchvision flowers102 layout "
                            f"(flowers-102/jpg/image_XXXXX.jpg, imagelabels.mat, setid.mat); "
                            f"pass --download on a machine with internet")
    from scipy.io import loadmat  # scipy comes with scikit-learn; only this layout needs it

    try:
        set_ids = loadmat(setid_path, squeeze_me=True)
        all_labels = np.atleast_1d(loadmat(labels_path, squeeze_me=True)["labels"]) - 1
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"cannot read {setid_path} or {labels_path} ({type(error).__name__}); "
                        f"remove them and pass --download on a machine with internet") from error
    keys = {"train": ["trnid"], "val": ["valid"], "test": ["tstid"], "trainval": ["trnid", "valid"]}
    image_ids = np.concatenate([np.atleast_1d(set_ids[key]) for key in keys[split]]).astype(np.int64)
    paths = [folder / "jpg" / f"image_{image_id:05d}.jpg" for image_id in image_ids]
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path} is missing from the torchvision flowers102 layout; "
                            f"pass --download on a machine with internet")

    def read() -> ImageSet:
        from torchvision.datasets import Flowers102

        images = _decode_images(paths, image_size, f"flowers102 {split}")
        labels = torch.from_numpy(all_labels[image_ids - 1].astype(np.int64))
        return ImageSet(images, labels, list(Flowers102.classes))

    return _Source("torchvision", [labels_path, setid_path, *paths], read)


def _image_folder_source(base: Path, split: str, image_size: int) -> _Source:
    # Classes are the union over every split folder present, so that label i means the same
    # class in train and test even when a split lacks a class.
    split_roots = [base / split_dir for split_dir in ("train", "val", "test") if (base / split_dir).is_dir()]
    classes = sorted({class_dir.name for split_root in split_roots for class_dir in split_root.iterdir()
                      if class_dir.is_dir()})
    class_index = {class_name: index for index, class_name in enumerate(classes)}
    paths, labels = [], []
    for split_dir in _split_dirs(split):
        for class_dir in sorted(path for path in (base / split_dir).iterdir() if path.is_dir()):
            for path in sorted(class_dir.iterdir()):
                if path.suffix.lower() in _IMAGE_EXTENSIONS:
                    paths.append(path)
                    labels.append(class_index[class_dir.name])
    if not paths:
        raise DataError(f"no images in {base}/{'|'.join(_split_dirs(split))}/<class>/ "
                        f"(extensions {' '.join(_IMAGE_EXTENSIONS)}); copy the data there or pass "
                        f"--download on a machine with internet for the torchvision layout")

    def read() -> ImageSet:
        images = _decode_images(paths, image_size, f"{base.name} {split}")
        return ImageSet(images, torch.tensor(labels, dtype=torch.int64), classes)

    return _Source("imagefolder", paths, read)


def _decode_images(paths: Sequence[Path], image_size: int, description: str) -> torch.Tensor:
    """Decode image files into one uint8 (N, 3, image_size, image_size) tensor."""
    from tqdm import tqdm

    # PIL releases the GIL while decoding, so threads use every core without pickling costs.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        arrays = list(tqdm(pool.map(lambda path: _decode_image(path, image_size), paths),
                           total=len(paths), desc=f"decoding {description}", leave=False,
                           disable=len(paths) < 2000))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _decode_image(path: Path, image_size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import functional as TF

    try:
        with Image.open(path) as image:
            # A JPEG decoder can scale by 1/2, 1/4 or 1/8 while decoding; asking for at least
            # image_size on both sides skips most of the inverse DCT work on Flowers' ~500x600
            # JPEGs (about 1.5x faster decoding), and the resize below starts from fewer pixels.
            image.draft("RGB", (image_size, image_size))
            image = image.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise DataError(f"cannot decode image {path} ({type(error).__name__}); "
                        f"replace or delete the file") from error
    if image.size != (image_size, image_size):
        image = TF.center_crop(TF.resize(image, image_size), [image_size, image_size])
    return np.asarray(image, dtype=np.uint8)


def _fingerprint(source: _Source, root: Path, image_size: int) -> str:
    """A digest of the source files' paths, sizes and modification times: a changed, added,
    moved or removed file invalidates the cache."""
    digest = hashlib.sha1(f"{_CACHE_VERSION} {source.layout} {image_size}".encode())
    for path in source.files:
        stat = path.stat()
        digest.update(f"\n{path.relative_to(root)} {stat.st_size} {stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _read_cache(path: Path, fingerprint: str) -> ImageSet | None:
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
        # A damaged or foreign cache file is rebuilt, never trusted.
        return None
    if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint:
        return None
    return ImageSet(entry["images"], entry["labels"], list(entry["classes"]))


def _write_cache(path: Path, image_set: ImageSet, fingerprint: str) -> None:
    entry = {"fingerprint": fingerprint, "images": image_set.images, "labels": image_set.labels,
             "classes": image_set.classes}
    try:
        atomic_torch_save(entry, path)
    except OSError as error:  # a read-only data folder only costs speed: decode again next time
        warnings.warn(f"could not write the image cache {path}: {error}", stacklevel=3)


# ---------------------------------------------------------------------------------------------
# built-in offline sets
# ---------------------------------------------------------------------------------------------

_BUILTIN_SIZES = {"builtin10": {"train": 5000, "test": 1000},
                  "builtin100": {"train": 10000, "test": 2000}}
_BUILTIN_SEEDS = {("builtin10", "train"): 1010, ("builtin10", "test"): 1011,
                  ("builtin100", "train"): 1100, ("builtin100", "test"): 1101}
_SHAPES = ("disc", "square", "diamond", "ring", "cross")


def _load_builtin_shapes(name: str, split: str, size: int | None) -> ImageSet:
    """builtin10 / builtin100: coloured shapes on noisy backgrounds.

    Fine class f (0..99) = coarse class c = f // 10 and variation v = f % 10. The coarse class
    fixes the object's hue (10 hues around the colour wheel); the variation fixes its shape
    (disc, square, diamond, ring, cross: v % 5) and whether it is striped (v // 5). builtin10
    draws the variation at random, so its images come from the same distribution as builtin100's
    and a network trained on one transfers to the other. Nuisances: hue, saturation and value
    jitter, object size and position (+-4 px), a random dull background with a brightness
    gradient, brightness jitter and pixel noise.
    """
    num_classes = 10 if name == "builtin10" else 100
    count = size if size is not None else _BUILTIN_SIZES[name][split]
    generator = torch.Generator().manual_seed(_BUILTIN_SEEDS[(name, split)])
    # Balanced classes in a random order.
    labels = (torch.arange(count) % num_classes)[torch.randperm(count, generator=generator)]
    if num_classes == 10:
        fine = labels * 10 + torch.randint(0, 10, (count,), generator=generator)
        classes = [f"coarse{c}" for c in range(10)]
    else:
        fine = labels
        classes = [f"coarse{f // 10}_fine{f % 10}" for f in range(100)]
    return ImageSet(render_shapes(fine, generator), labels.to(torch.int64), classes)


def render_shapes(fine_labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Draw one 32x32 RGB uint8 image per fine label (0..99) of the built-in shape sets."""
    count, side = len(fine_labels), 32
    coarse, variation = fine_labels // 10, fine_labels % 10
    shape, striped = variation % 5, variation // 5 == 1

    def uniform(low: float, high: float) -> torch.Tensor:  # one draw per image
        return low + (high - low) * torch.rand(count, generator=generator)

    # Pixel coordinates relative to each object's centre: dy (N, 32, 1), dx (N, 1, 32).
    grid = torch.arange(side, dtype=torch.float32)
    centre_y = (side - 1) / 2 + uniform(-4, 4)
    centre_x = (side - 1) / 2 + uniform(-4, 4)
    dy = grid.view(1, side, 1) - centre_y.view(-1, 1, 1)
    dx = grid.view(1, 1, side) - centre_x.view(-1, 1, 1)
    radius = uniform(6.5, 9.5).view(-1, 1, 1)

    # Signed distance inside the shape (positive inside), computed per shape on its own images.
    inside = torch.empty(count, side, side)
    for index, shape_name in enumerate(_SHAPES):
        chosen = shape == index
        y, x, r = dy[chosen], dx[chosen], radius[chosen]
        if shape_name == "disc":
            inside[chosen] = r - torch.sqrt(x**2 + y**2)
        elif shape_name == "square":
            inside[chosen] = 0.85 * r - torch.maximum(x.abs(), y.abs())
        elif shape_name == "diamond":
            inside[chosen] = 1.25 * r - (x.abs() + y.abs())
        elif shape_name == "ring":
            distance = torch.sqrt(x**2 + y**2)
            inside[chosen] = torch.minimum(r - distance, distance - 0.5 * r)
        else:  # cross: two bars of half-width 0.35 r
            arm = 0.35 * r
            inside[chosen] = torch.maximum(torch.minimum(r - x.abs(), arm - y.abs()),
                                           torch.minimum(arm - x.abs(), r - y.abs()))
    mask = (inside + 0.5).clamp(0, 1).unsqueeze(1)  # one pixel of anti-aliasing, (N, 1, 32, 32)

    # Per-pixel weights of the object and background colours, computed on one channel; the
    # three-channel image is then built with in-place ops only (allocation dominates otherwise).
    stripe_phase = uniform(0, 2 * math.pi).view(-1, 1, 1, 1)
    stripes = 0.65 + 0.35 * torch.cos(2 * math.pi * dy.unsqueeze(1) / 4 + stripe_phase)
    object_weight = mask * torch.where(striped.view(-1, 1, 1, 1), stripes, 1.0)
    angle = uniform(0, 2 * math.pi).view(-1, 1, 1, 1)
    centred = grid - (side - 1) / 2
    gradient = 1 + 0.5 * (torch.cos(angle) * centred.view(1, 1, 1, side)
                          + torch.sin(angle) * centred.view(1, 1, side, 1)) / side
    background_weight = (1 - mask) * gradient

    brightness = 255 * uniform(0.75, 1.25).view(-1, 1, 1, 1)
    hue = coarse.float() / 10 + uniform(-0.05, 0.05)
    object_colour = _hsv_to_rgb(hue, uniform(0.55, 0.95), uniform(0.65, 1.0)).view(-1, 3, 1, 1)
    # Backgrounds of any hue, mostly duller and darker than the objects but overlapping them:
    # the brightest colour in the image is not always the object's.
    background_colour = _hsv_to_rgb(uniform(0, 1), uniform(0, 0.6), uniform(0.05, 0.6))
    background_colour = background_colour.view(-1, 3, 1, 1)

    images = torch.randn(count, 3, side, side, generator=generator).mul_(255 * 0.1)
    images.addcmul_(background_weight, background_colour * brightness)
    images.addcmul_(object_weight, object_colour * brightness)
    return images.add_(0.5).clamp_(0, 255).to(torch.uint8)  # +0.5: round, not truncate


def _hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Vectorised HSV -> RGB for (N,) tensors in [0, 1] (hue wraps around); returns (N, 3)."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + hue.remainder(1).unsqueeze(1) * 6).remainder(6)
    weight = torch.minimum(k, 4 - k).clamp(0, 1)
    return value.unsqueeze(1) * (1 - saturation.unsqueeze(1) * weight)


def _load_digits(split: str) -> ImageSet:
    """scikit-learn's 1797 handwritten digits (8x8, 0..16), bilinearly upsampled to 32x32 grey
    RGB; a fixed stratified 80/20 train/test split."""
    from sklearn.datasets import load_digits  # ships with scikit-learn, no download

    digits = load_digits()
    pixels = torch.from_numpy(digits.images).float().unsqueeze(1) / 16
    pixels = F.interpolate(pixels, size=(32, 32), mode="bilinear", align_corners=False)
    images = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(digits.target).to(torch.int64)
    test = stratified_subset(labels, 0.2, seed=0)
    if split == "test":
        chosen = test
    else:
        keep = torch.ones(len(labels), dtype=torch.bool)
        keep[test] = False
        chosen = keep.nonzero().squeeze(1)
    return ImageSet(images[chosen], labels[chosen], [str(digit) for digit in range(10)])


# ---------------------------------------------------------------------------------------------
# subsets and splits
# ---------------------------------------------------------------------------------------------

def stratified_subset(labels: torch.Tensor, ratio: float, seed: int) -> torch.Tensor:
    """Sorted indices of exactly round(ratio * count_c) random examples of every class c.

    The same seed gives the same subset, and a smaller ratio gives a subset of a larger one's
    (each class's examples are taken from the same seeded permutation)."""
    if not 0 <= ratio <= 1:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    labels = torch.as_tensor(labels).cpu()
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for class_id in torch.unique(labels).tolist():
        members = (labels == class_id).nonzero().squeeze(1)
        order = torch.randperm(len(members), generator=generator)
        chosen.append(members[order[: round(ratio * len(members))]])
    if not chosen:
        return torch.empty(0, dtype=torch.int64)
    return torch.cat(chosen).sort().values


def train_val_split(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted (train_indices, val_indices): a seeded random `val_size` of range(n) for validation."""
    if not 0 <= val_size <= n:
        raise ValueError(f"val_size must be in [0, {n}], got {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:].sort().values, order[:val_size].sort().values


# ---------------------------------------------------------------------------------------------
# batched augmentation
# ---------------------------------------------------------------------------------------------

def crop_and_flip_padded(padded: torch.Tensor, offsets: torch.Tensor, flip_mask: torch.Tensor,
                         padding: int) -> torch.Tensor:
    """Random crop and flip of zero-padded images (B, C, H + 2 padding, W + 2 padding), as one
    gather: cut the HxW window at `offsets` (B, 2) = (top, left), each in [0, 2 padding], and
    mirror it left-right where `flip_mask` (B,) is True. Pixel for pixel torchvision's
    `RandomCrop((H, W), padding)` at `get_params` = (top, left), then `hflip` where flipped.

    Each output pixel's position in the flattened padded image is (top + i) * padded_width +
    left + j, with j mirrored for flipped images; one gather does the crop and the flip instead
    of a pad, crop, flip and select (every op costs a pass over the batch and, on a busy CPU, a
    wait for the threads)."""
    count, channels, padded_height, padded_width = padded.shape
    height, width = padded_height - 2 * padding, padded_width - 2 * padding
    offsets = offsets.to(padded.device)
    rows = (offsets[:, :1] + torch.arange(height, device=padded.device)) * padded_width  # (B, H)
    columns = torch.arange(width, device=padded.device).expand(count, width)
    columns = torch.where(flip_mask.to(padded.device).view(-1, 1), width - 1 - columns, columns)
    columns = columns + offsets[:, 1:]  # (B, W)
    index = (rows.unsqueeze(2) + columns.unsqueeze(1)).view(count, 1, height * width)
    flat = padded.reshape(count, channels, padded_height * padded_width)
    return flat.gather(2, index.expand(count, channels, height * width)).view(count, channels, height, width)


class ImageLoader:
    """Batches of (normalised float images, int64 labels) from in-memory uint8 tensors.

    The uint8 set is copied to `device` once. Each batch is indexed there, augmented (when
    `augment`: random crop with zero padding `padding` and random horizontal flip, one draw per
    image, as torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip()), converted to
    `dtype` and normalised with `mean`/`std` (per channel, in [0, 1] units), optionally in the
    channels-last memory format.

    Call `set_epoch(epoch)` before each epoch, as with DistributedSampler: the order comes from a
    generator seeded with seed + epoch, identical on every rank; rank r takes every world_size-th
    index of it, after the order is padded (by repeating its start) to a multiple of world_size,
    so all ranks get the same number of batches. The augmentation draws come from a generator
    seeded from (seed, epoch, rank), so a run (or a resumed one) is reproducible.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool,
                 augment: bool, mean: Sequence[float], std: Sequence[float],
                 device: str | torch.device = "cpu", seed: int = 0, drop_last: bool = False,
                 rank: int = 0, world_size: int = 1, channels_last: bool = False,
                 dtype: torch.dtype = torch.float32, padding: int = 4) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.device = torch.device(device)
        # With augmentation the set is stored zero-padded once, so that each batch is cropped
        # by a single gather (1.56x the memory of 32x32 images, still uint8).
        self._images = images.to(self.device)
        if augment:
            self._images = F.pad(self._images, (padding, padding, padding, padding))
        self.labels = torch.as_tensor(labels, dtype=torch.int64).to(self.device)
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.seed, self.drop_last, self.padding = seed, drop_last, padding
        self.rank, self.world_size = rank, world_size
        self.channels_last, self.dtype = channels_last, dtype
        self.epoch = 0
        # Normalise as x * scale + shift with scale = 1 / (255 std), shift = -mean / std: the
        # same as ToTensor + Normalize, in one op.
        std_tensor = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        mean_tensor = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self._scale = (1 / (255 * std_tensor)).to(self.device)
        self._shift = (-mean_tensor / std_tensor).to(self.device)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def num_samples(self) -> int:
        """Examples this rank sees per epoch (before drop_last)."""
        return math.ceil(len(self.labels) / self.world_size)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def epoch_indices(self) -> torch.Tensor:
        """This rank's example indices for the current epoch, in order (on the CPU)."""
        count = len(self.labels)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(count, generator=generator)
        else:
            order = torch.arange(count)
        return order[shard_indices(count, self.rank, self.world_size)]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.epoch_indices()
        if self.augment:
            # All of the epoch's random draws at once, then one copy to the device.
            generator = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + self.epoch * 7919 + self.rank) % 2**63)
            offsets = torch.randint(0, 2 * self.padding + 1, (len(order), 2), generator=generator)
            flips = torch.rand(len(order), generator=generator) < 0.5
            offsets, flips = offsets.to(self.device), flips.to(self.device)
        order = order.to(self.device)
        for batch_index in range(len(self)):
            window = slice(batch_index * self.batch_size, (batch_index + 1) * self.batch_size)
            index = order[window]
            batch = self._images.index_select(0, index)
            if self.augment:
                batch = crop_and_flip_padded(batch, offsets[window], flips[window], self.padding)
            # uint8 -> float, /255 and normalise in one op; crop and flip ran on uint8, a quarter
            # of float32's memory traffic.
            images = torch.addcmul(self._shift, batch, self._scale)
            if self.dtype != torch.float32:
                images = images.to(self.dtype)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, self.labels.index_select(0, index)
