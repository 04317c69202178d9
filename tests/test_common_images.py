"""Tests of common/data/images.py: the on-disk layouts (written as tiny fakes), the cache, the
batched augmentation against torchvision pixel by pixel, the loader's seeding and DDP sharding,
the subset helpers and the built-in offline sets."""

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import functional as TF

from common.data import images as image_data
from common.data.images import (
    MEAN_STD,
    ImageLoader,
    crop_and_flip_padded,
    load_images,
    stratified_subset,
    train_val_split,
)
from common.errors import DataError

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _random_images(count: int, seed: int, side: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (count, 3, side, side), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def _write_pickle(path, obj) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)


def _write_fake_cifar10(root, per_batch: int = 4, test_count: int = 6) -> dict:
    """torchvision's cifar-10-batches-py with tiny batches; returns the written tensors."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for split, names in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        count = per_batch * len(names) if split == "train" else test_count
        images = _random_images(count, seed=len(split))
        labels = torch.arange(count) % 10
        for part, name in enumerate(names):
            rows = slice(part * per_batch, (part + 1) * per_batch) if split == "train" else slice(None)
            _write_pickle(folder / name, {"data": images[rows].reshape(-1, 3072).numpy(),
                                          "labels": labels[rows].tolist()})
        written[split] = (images, labels)
    _write_pickle(folder / "batches.meta", {"label_names": CIFAR10_NAMES})
    return written


def _write_image_folder(base, split: str, images: torch.Tensor, labels: torch.Tensor, classes) -> None:
    for index, (image, label) in enumerate(zip(images, labels)):
        class_dir = base / split / classes[label]
        class_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(class_dir / f"{index:05d}.png")


def _by_class(image_set) -> list[torch.Tensor]:
    """Images grouped by label, each group in loading order (ImageFolder sorts by class)."""
    return [image_set.images[image_set.labels == label] for label in range(len(image_set.classes))]


# ---- layouts ----

@pytest.mark.parametrize("folder_layout", ["named", "direct"])
def test_cifar10_pickles_and_image_folder_load_the_same_pixels(tmp_path, folder_layout):
    written = _write_fake_cifar10(tmp_path / "pickles")
    folder_root = tmp_path / "folders"
    base = folder_root / "cifar10" if folder_layout == "named" else folder_root
    for split, (images, labels) in written.items():
        _write_image_folder(base, split, images, labels, CIFAR10_NAMES)

    for split, (images, labels) in written.items():
        from_pickles = load_images("cifar10", tmp_path / "pickles", split)
        assert from_pickles.images.dtype == torch.uint8 and from_pickles.labels.dtype == torch.int64
        assert torch.equal(from_pickles.images, images) and torch.equal(from_pickles.labels, labels)
        assert from_pickles.classes == CIFAR10_NAMES and from_pickles.num_classes == 10

        from_folders = load_images("cifar10", folder_root, split)
        assert from_folders.classes == CIFAR10_NAMES
        for group_pickles, group_folders in zip(_by_class(from_pickles), _by_class(from_folders)):
            assert torch.equal(group_pickles, group_folders)


def test_cifar100_pickles_use_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    images, fine = _random_images(7, seed=3), torch.tensor([0, 99, 5, 5, 42, 1, 98])
    _write_pickle(folder / "train", {"data": images.reshape(7, -1).numpy(), "fine_labels": fine.tolist(),
                                     "coarse_labels": (fine // 5).tolist()})
    _write_pickle(folder / "meta", {"fine_label_names": [f"class{i}" for i in range(100)],
                                    "coarse_label_names": [f"super{i}" for i in range(20)]})
    loaded = load_images("cifar100", tmp_path, "train")
    assert torch.equal(loaded.images, images) and torch.equal(loaded.labels, fine)
    assert loaded.num_classes == 100 and loaded.classes[42] == "class42"


def test_flowers_layout_splits_labels_and_resizing(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    folder = tmp_path / "flowers-102"
    (folder / "jpg").mkdir(parents=True)
    rng = np.random.default_rng(0)
    sizes = [(40, 50), (60, 45), (33, 70), (48, 48), (50, 36), (44, 52)]  # (width, height)
    for image_id, size in enumerate(sizes, start=1):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "jpg" / f"image_{image_id:05d}.jpg", quality=95)
    labels = np.array([[3, 1, 102, 3, 7, 50]])  # 1-based, as in imagelabels.mat
    scipy_io.savemat(folder / "imagelabels.mat", {"labels": labels})
    scipy_io.savemat(folder / "setid.mat", {"trnid": np.array([[1, 4]]), "valid": np.array([[2, 6]]),
                                            "tstid": np.array([[3, 5]])})

    train = load_images("flowers102", tmp_path, "train")
    assert train.images.shape == (2, 3, 32, 32) and train.labels.tolist() == [2, 2]
    assert train.num_classes == 102 and train.classes[0] == "pink primrose"
    assert load_images("flowers102", tmp_path, "test").labels.tolist() == [101, 6]
    trainval = load_images("flowers102", tmp_path, "trainval")
    assert trainval.labels.tolist() == [2, 2, 0, 49]
    # Same pixels as torchvision's Resize(32) + CenterCrop(32) on the decoded image.
    with Image.open(folder / "jpg" / "image_00002.jpg") as image:
        reference = TF.pil_to_tensor(TF.center_crop(TF.resize(image.convert("RGB"), 32), 32))
    assert torch.equal(trainval.images[2], reference)
    assert load_images("flowers102", tmp_path, "val", image_size=24).images.shape == (2, 3, 24, 24)


def test_flowers_image_folder_resizes_and_concatenates_trainval(tmp_path):
    base = tmp_path / "flowers102"
    for split, count in (("train", 2), ("val", 3), ("test", 1)):
        images = _random_images(count, seed=count, side=48)[:, :, :40]  # 40 high, 48 wide
        _write_image_folder(base, split, images, torch.arange(count) % 2, ["daisy", "rose"])
    trainval = load_images("flowers102", tmp_path, "trainval")
    assert trainval.images.shape == (5, 3, 32, 32) and trainval.classes == ["daisy", "rose"]
    assert trainval.labels.tolist() == [0, 1, 0, 0, 1]  # train's classes, then val's
    train = load_images("flowers102", tmp_path, "train")
    assert torch.equal(trainval.images[[0, 1]], train.images)


# ---- missing data and cache ----

def test_missing_data_is_one_line_naming_the_path(tmp_path):
    with pytest.raises(DataError) as error:
        load_images("cifar10", tmp_path / "nowhere", "train")
    message = str(error.value)
    assert "\n" not in message and str(tmp_path / "nowhere") in message
    assert "cifar-10-batches-py" in message and "--download" in message
    with pytest.raises(DataError):
        load_images("flowers102", None, "train")


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading cifar-10-python.tar.gz:\n[Errno -3] no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError) as error:
        load_images("cifar10", tmp_path, "train", download=True)
    assert "\n" not in str(error.value) and "cifar-10-batches-py" in str(error.value)


def test_incomplete_torchvision_layout_names_the_missing_file(tmp_path):
    _write_fake_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        load_images("cifar10", tmp_path, "train")


def test_unknown_split_or_name_is_a_value_error():
    with pytest.raises(ValueError):
        load_images("cifar10", None, "val")
    with pytest.raises(ValueError):
        load_images("imagenet", None, "train")


def test_cache_hit_returns_identical_tensors_and_tracks_changes(tmp_path, monkeypatch):
    written = _write_fake_cifar10(tmp_path)
    first = load_images("cifar10", tmp_path, "test")
    assert (tmp_path / ".cache" / "cifar10_test_32.pt").is_file()

    def no_decoding(path):
        raise AssertionError(f"{path} decoded again despite the cache")

    with monkeypatch.context() as patch:
        patch.setattr(image_data, "_unpickle", no_decoding)
        second = load_images("cifar10", tmp_path, "test")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert second.classes == first.classes

    # A rewritten source file invalidates the cache.
    new_images = written["test"][0].flip(0)
    _write_pickle(tmp_path / "cifar-10-batches-py" / "test_batch",
                  {"data": new_images.reshape(-1, 3072).numpy(), "labels": [0] * len(new_images)})
    assert torch.equal(load_images("cifar10", tmp_path, "test").images, new_images)


# ---- batched augmentation against torchvision ----

def _torchvision_crop(image: torch.Tensor, top: int, left: int, padding: int = 4) -> torch.Tensor:
    """RandomCrop(32, padding) at (top, left), on a PIL image like the usual pipeline."""
    pil_image = TF.to_pil_image(image)
    cropped = TF.crop(TF.pad(pil_image, padding), top, left, image.shape[1], image.shape[2])
    return TF.pil_to_tensor(cropped)


def test_one_gather_crop_and_flip_matches_torchvision_pixel_by_pixel():
    """Every corner and edge offset, each with and without the flip."""
    batch, padding = _random_images(18, seed=1), 4
    offsets = torch.tensor([[0, 0], [8, 8], [0, 8], [8, 0], [4, 4], [1, 7], [6, 2], [3, 0], [8, 5]] * 2)
    mask = torch.arange(18) >= 9
    result = crop_and_flip_padded(F.pad(batch, (padding,) * 4), offsets, mask, padding)
    for image, (top, left), flip, got in zip(batch, offsets.tolist(), mask.tolist(), result):
        expected = _torchvision_crop(image, top, left, padding)
        assert torch.equal(got, TF.hflip(expected) if flip else expected)


def test_loader_without_augment_equals_to_tensor_and_normalize():
    images, labels = _random_images(10, seed=4), torch.arange(10)
    mean, std = MEAN_STD["cifar10"]
    loader = ImageLoader(images, labels, batch_size=4, shuffle=False, augment=False, mean=mean, std=std,
                         device="cpu", seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    output = torch.cat([x for x, _ in batches])
    reference = torch.stack([TF.normalize(TF.to_tensor(TF.to_pil_image(image)), mean, std)
                             for image in images])
    assert torch.allclose(output, reference, atol=1e-5)
    assert torch.equal(torch.cat([y for _, y in batches]), labels)


def test_loader_augmentation_is_a_torchvision_crop_and_flip_of_each_image():
    images, labels = _random_images(12, seed=5), torch.arange(12)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    loader = ImageLoader(images, labels, batch_size=5, shuffle=True, augment=True, mean=mean, std=std,
                         device="cpu", seed=3)
    for batch, batch_labels in loader:
        for output, label in zip(batch, batch_labels.tolist()):
            raw = (output * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)) * 255
            raw = raw.round().to(torch.uint8)
            candidates = [_torchvision_crop(images[label], top, left)
                          for top in range(9) for left in range(9)]
            assert any(torch.equal(raw, c) or torch.equal(raw, TF.hflip(c)) for c in candidates)


def test_loader_dtype_and_channels_last():
    loader = ImageLoader(_random_images(4, seed=6), torch.zeros(4, dtype=torch.int64), 4, False, True,
                         (0.5,) * 3, (0.25,) * 3, "cpu", 0, channels_last=True, dtype=torch.bfloat16)
    images, _ = next(iter(loader))
    assert images.dtype == torch.bfloat16 and images.is_contiguous(memory_format=torch.channels_last)


# ---- loader seeding and DDP shards ----

def _epoch(loader: ImageLoader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.set_epoch(epoch)
    return list(loader)


def test_same_seed_same_batches_and_new_epoch_new_order():
    images, labels = _random_images(40, seed=7), torch.arange(40)

    def make(seed):
        return ImageLoader(images, labels, 8, True, True, (0.5,) * 3, (0.25,) * 3, "cpu", seed)

    first, second = _epoch(make(1), 0), _epoch(make(1), 0)
    for (x1, y1), (x2, y2) in zip(first, second):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    loader = make(1)
    order_0 = torch.cat([y for _, y in _epoch(loader, 0)])
    order_1 = torch.cat([y for _, y in _epoch(loader, 1)])
    assert not torch.equal(order_0, order_1) and torch.equal(order_0.sort().values, order_1.sort().values)
    assert torch.equal(torch.cat([y for _, y in _epoch(loader, 0)]), order_0)
    assert not torch.equal(torch.cat([y for _, y in _epoch(make(2), 0)]), order_0)


@pytest.mark.parametrize("count", [12, 10])
def test_ddp_shards_partition_the_epoch(count):
    world_size, labels = 3, torch.arange(count)
    shards = []
    for rank in range(world_size):
        loader = ImageLoader(_random_images(count, seed=8), labels, 2, True, False, (0.5,) * 3, (0.25,) * 3,
                             "cpu", seed=4, rank=rank, world_size=world_size)
        shards.append(torch.cat([y for _, y in _epoch(loader, 2)]))
        assert len(loader) == 2
    assert len({len(shard) for shard in shards}) == 1  # equal lengths: no rank waits for another
    union = torch.cat(shards)
    assert set(union.tolist()) == set(range(count))
    if count % world_size == 0:
        assert len(union) == count  # disjoint
    else:
        assert len(union) == count + (-count) % world_size  # only the padding repeats


# ---- subsets and splits ----

def test_stratified_subset_sizes_and_determinism():
    labels = torch.tensor([0] * 10 + [1] * 7 + [2] * 3 + [3] * 25)[torch.randperm(45)]
    subset = stratified_subset(labels, 0.3, seed=0)
    counts = torch.bincount(labels[subset], minlength=4).tolist()
    assert counts == [round(0.3 * n) for n in (10, 7, 3, 25)]
    assert len(set(subset.tolist())) == len(subset)
    assert torch.equal(subset, stratified_subset(labels, 0.3, seed=0))
    assert not torch.equal(subset, stratified_subset(labels, 0.3, seed=1))
    assert set(stratified_subset(labels, 0.1, seed=0).tolist()) <= set(subset.tolist())
    assert len(stratified_subset(labels, 1.0, seed=0)) == 45


def test_train_val_split():
    train, val = train_val_split(50, 10, seed=0)
    assert len(train) == 40 and len(val) == 10
    assert sorted(train.tolist() + val.tolist()) == list(range(50))
    assert torch.equal(val, train_val_split(50, 10, seed=0)[1])


# ---- built-in sets ----

@pytest.fixture(scope="module")
def builtin_sets():
    return {(name, split): load_images(name, None, split)
            for name in ("builtin10", "builtin100") for split in ("train", "test")}


def test_builtin_sets_are_deterministic_and_well_formed(builtin_sets):
    for (name, split), image_set in builtin_sets.items():
        expected = {"builtin10": {"train": 5000, "test": 1000}, "builtin100": {"train": 10000, "test": 2000}}
        assert image_set.images.shape == (expected[name][split], 3, 32, 32)
        assert image_set.images.dtype == torch.uint8 and image_set.labels.dtype == torch.int64
        counts = torch.bincount(image_set.labels, minlength=image_set.num_classes)
        assert counts.max() - counts.min() <= 1  # balanced
    small = load_images("builtin10", None, "test", size=200)
    assert torch.equal(small.images, load_images("builtin10", None, "test", size=200).images)
    assert len(small) == 200
    assert not torch.equal(builtin_sets["builtin10", "train"].images[:1000],
                           builtin_sets["builtin10", "test"].images)
    assert builtin_sets["builtin10", "train"].classes[3] == "coarse3"
    assert builtin_sets["builtin100", "train"].classes[37] == "coarse3_fine7"


def _pixel_features(image_set) -> torch.Tensor:
    return F.avg_pool2d(image_set.images.float() / 255, 4).flatten(1)  # 3 x 8 x 8


def _linear_accuracy(train_x, train_y, test_x, test_y, num_classes: int) -> float:
    """Multinomial logistic regression on standardised features, fitted by L-BFGS."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    weight = torch.zeros(train_x.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(train_x @ weight + bias, train_y) + 1e-3 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return ((test_x @ weight + bias).argmax(1) == test_y).float().mean().item()


def test_builtin10_is_learnable_by_a_linear_model(builtin_sets):
    train, test = builtin_sets["builtin10", "train"], builtin_sets["builtin10", "test"]
    accuracy = _linear_accuracy(_pixel_features(train), train.labels, _pixel_features(test), test.labels, 10)
    assert accuracy > 0.4  # chance is 0.1


def test_builtin100_fine_classes_group_into_builtin10_coarse_classes(builtin_sets):
    # A coarse classifier fitted on builtin100 with labels f // 10 classifies builtin10.
    fine, coarse = builtin_sets["builtin100", "train"], builtin_sets["builtin10", "test"]
    accuracy = _linear_accuracy(_pixel_features(fine), fine.labels // 10,
                                _pixel_features(coarse), coarse.labels, 10)
    assert accuracy > 0.4


def test_digits_split():
    train, test = load_images("digits", None, "train"), load_images("digits", None, "test")
    assert len(train) + len(test) == 1797 and abs(len(test) - 0.2 * 1797) < 10
    assert train.images.shape[1:] == (3, 32, 32) and train.num_classes == 10
    assert torch.equal(test.images, load_images("digits", None, "test").images)
