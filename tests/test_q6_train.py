"""q6_cnn_wandb/train.py in-process on the built-in data: the kept checkpoint is the argmax epoch,
the confusion matrix covers the test split, W&B objects are logged without failure, --val-split
selects on validation, --resume ends where an uninterrupted run ends, and missing data is one line."""

import json
import warnings

import numpy as np
import pytest
import torch

from q6_cnn_wandb import train

TINY = ["--smoke", "--train-size", "400", "--test-size", "100", "--bs", "16"]



def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_smoke_run_keeps_the_argmax_epoch_and_logs_wandb_objects(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train.main(["--config", "2", *TINY, "--epochs", "3", "--out-dir", str(tmp_path),
                              "--wandb-mode", "offline", "--samples", "8", "--select-on", "test"])
    wandb_failures = [str(w.message) for w in caught if "W&B" in str(w.message)]
    assert wandb_failures == []  # the confusion-matrix plot and the image table were accepted
    run_dir = tmp_path / "q6_cnn_wandb" / "smoke-config2-adam-ce-lr0.01-bs16-selecttest-seed0"
    assert summary["selected_on"] == "test" and summary["train_size"] == 400  # nothing held out
    accuracies = [m["test_accuracy"] for m in metrics(run_dir)]
    assert len(accuracies) == 3
    best = int(np.argmax(accuracies)) + 1  # first maximum, as the strict '>' keeps the earlier epoch
    assert summary["best_epoch"] == best
    assert torch.load(run_dir / "checkpoints" / "best.pt", weights_only=False)["epoch"] == best
    # The reloaded best checkpoint scores exactly what was logged at that epoch.
    assert summary["test_accuracy"] == pytest.approx(accuracies[best - 1], abs=1e-9)
    matrix = np.array(summary["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == summary["test_size"] == 100
    assert np.trace(matrix) / matrix.sum() == pytest.approx(summary["test_accuracy"])
    assert {summary["best_class"], summary["worst_class"]} <= set(summary["class_names"])
    assert summary["test_accuracy"] > 0.3  # learns: chance is 0.1
    for name in ("confusion_matrix.png", "sample_predictions.png", "tables/sample_predictions.csv"):
        assert (run_dir / name).is_file(), name
    assert len((run_dir / "tables" / "sample_predictions.csv").read_text().splitlines()) == 1 + 8
    assert list((run_dir / "wandb").glob("offline-run-*"))


def test_val_split_selects_on_validation_and_resume_matches_an_uninterrupted_run(tmp_path):
    common = ["--config", "1", *TINY, "--val-split", "0.25", "--wandb-mode", "disabled"]
    whole = train.main([*common, "--epochs", "2", "--out-dir", str(tmp_path / "a")])
    assert whole["selected_on"] == "validation"
    run_dir = tmp_path / "a" / "q6_cnn_wandb" / "smoke-config1-sgd-ce-lr0.001-bs16-val0.25-seed0"
    assert whole["train_size"] == 300
    logged = metrics(run_dir)
    assert whole["best_epoch"] == int(np.argmax([m["val_accuracy"] for m in logged])) + 1
    assert whole["best_selection_accuracy"] == pytest.approx(logged[whole["best_epoch"] - 1]["val_accuracy"])

    train.main([*common, "--epochs", "1", "--out-dir", str(tmp_path / "b")])
    for other in (["--seed", "1"], ["--conv1", "8"]):  # other settings are refused before loading
        with pytest.raises(SystemExit) as refused:
            train.main([*common, "--epochs", "2", *other, "--resume", "--out-dir", str(tmp_path / "b"),
                        "--run-name", run_dir.name])
        assert refused.value.code == 1
    resumed = train.main([*common, "--epochs", "2", "--resume", "--out-dir", str(tmp_path / "b")])
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    assert resumed["confusion_matrix"] == whole["confusion_matrix"]
    resumed_logged = metrics(tmp_path / "b" / "q6_cnn_wandb" / run_dir.name)
    assert [m["train_loss"] for m in resumed_logged] == [m["train_loss"] for m in logged]


def test_the_validation_split_does_not_move_with_the_seed(tmp_path):
    args = train.parse_args(["--config", "1", *TINY, "--val-split", "0.25"])
    _, validation, _ = train.load_data(args)
    other_seed = train.parse_args(["--config", "1", *TINY, "--val-split", "0.25", "--seed", "5"])
    _, same, _ = train.load_data(other_seed)
    other_split = train.parse_args(["--config", "1", *TINY, "--val-split", "0.25", "--split-seed", "5"])
    _, moved, _ = train.load_data(other_split)
    assert torch.equal(validation.images, same.images) and not torch.equal(validation.images, moved.images)


def test_missing_cifar10_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--config", "1", "--data-root", str(tmp_path), "--out-dir", str(tmp_path),
                    "--wandb-mode", "disabled"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(tmp_path) in err[0]


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_tiny_cifar10(root, layout, per_class=(3, 2)):
    """A CIFAR-10 with per_class[0] train and per_class[1] test images of every class, in
    torchvision's pickled layout or as an ImageFolder of PNGs."""
    import pickle

    from PIL import Image

    generator = np.random.default_rng(0)
    for split, count in zip(("train", "test"), per_class):
        labels = [c for c in range(10) for _ in range(count)]
        images = generator.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
        if layout == "torchvision":
            folder = root / "cifar-10-batches-py"
            folder.mkdir(parents=True, exist_ok=True)
            names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
            for index, name in enumerate(names):  # the training images spread over the five batches
                part = slice(index, None, len(names))
                with open(folder / name, "wb") as handle:
                    pickle.dump({"data": images[part].reshape(-1, 3072), "labels": labels[part]}, handle)
            with open(folder / "batches.meta", "wb") as handle:
                pickle.dump({"label_names": CIFAR10_CLASSES}, handle)
        else:
            for i, (image, label) in enumerate(zip(images, labels)):
                folder = root / "cifar10" / split / CIFAR10_CLASSES[label]
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i}.png")


@pytest.mark.parametrize("layout", ["torchvision", "imagefolder"])
def test_real_cifar10_path_reads_either_layout(tmp_path, layout):
    write_tiny_cifar10(tmp_path / "data", layout)
    summary = train.main(["--config", "2", "--data-root", str(tmp_path / "data"), "--epochs", "1",
                          "--bs", "8", "--threads", "1", "--out-dir", str(tmp_path / "runs"),
                          "--wandb-mode", "disabled"])
    assert summary["dataset"] == "cifar10" and not summary["smoke"]
    assert summary["class_names"] == CIFAR10_CLASSES
    assert summary["train_size"] == 27 and summary["test_size"] == 20  # 3 of 30 held out for validation
    assert np.array(summary["confusion_matrix"]).sum() == 20
    assert (tmp_path / "runs" / "q6_cnn_wandb" / "config2-adam-ce-lr0.01-bs8-val0.1-seed0").is_dir()
