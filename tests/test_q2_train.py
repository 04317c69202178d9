"""q2_transfer.train end to end on the built-in sets: both stages learn, the epoch is selected on
validation accuracy only, the reported test and forgetting figures match an independent
evaluation of the saved models, and --resume reproduces an uninterrupted run exactly."""

import json
import re

import pytest
import torch

import q2_transfer.train
from common.data.images import MEAN_STD, load_images
from q2_transfer.models import BACKBONES
from q2_transfer.train import main

LINE = re.compile(r"^\[(CIFAR100|CIFAR10)\] Epoch (\d+)/2 \| Loss: \d+\.\d{3} \| Acc: \d+\.\d{2}% "
                  r"\| Val acc: \d+\.\d{2}% \| Test acc: \d+\.\d{2}%$")
QUIET = ["--wandb-mode", "disabled"]


def _metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("time")
    return lines


def _accuracy(model_state, head, dataset):
    """Test accuracy, in plain torch, of the saved backbone with the saved head `head`, on the
    whole test split of `dataset`, normalised as torchvision's ToTensor + Normalize would."""
    backbone = BACKBONES["smallcnn"]().eval()
    backbone.load_state_dict({key[len("backbone."):]: value for key, value in model_state.items()
                              if key.startswith("backbone.")})
    weight, bias = model_state[f"heads.{head}.weight"], model_state[f"heads.{head}.bias"]
    test = load_images(dataset, None, "test")
    mean, std = (torch.tensor(values).view(1, 3, 1, 1) for values in MEAN_STD[dataset])
    correct = 0
    with torch.no_grad():
        for images, labels in zip(test.images.split(500), test.labels.split(500)):
            logits = backbone((images.float() / 255 - mean) / std) @ weight.T + bias
            correct += (logits.argmax(1) == labels).sum().item()
    return correct / len(test)


def test_short_run_learns_and_its_figures_match_an_independent_evaluation(tmp_path, capsys):
    summary = main(["--order", "c100-c10", "--smoke", "--epochs", "2", "--out-dir", str(tmp_path), *QUIET])
    # Chance is 1% on the 100-class source and 10% on the 10-class target.
    assert summary["CIFAR100_test_accuracy"] > 0.03 and summary["CIFAR10_test_accuracy"] > 0.30
    assert summary["source"] == "CIFAR100" and summary["target"] == "CIFAR10"

    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [LINE.match(line).groups() for line in lines] == [
        ("CIFAR100", "1"), ("CIFAR100", "2"), ("CIFAR10", "1"), ("CIFAR10", "2")]
    run_dir = tmp_path / "q2_transfer" / "smoke-c100-c10-smallcnn-e2-sub0.1-val0.1-seed0"
    metrics = _metrics(run_dir)
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]  # the global step keeps counting
    for tag, line in (("CIFAR100", metrics[1]), ("CIFAR10", metrics[3])):
        keys = {f"{tag}_{key}" for key in ("loss", "accuracy", "val_accuracy", "test_accuracy")}
        assert keys <= line.keys()
    config = json.loads((run_dir / "config.json").read_text())
    # builtin100 / builtin10: 10000 / 5000 train images, a 0.1 subset, a tenth of it for validation.
    assert {key: config[key] for key in ("batch_size", "epochs", "lr", "subset_ratio", "val_split", "order",
                                         "train_sizes", "val_sizes", "test_sizes")} == {
        "batch_size": 64, "epochs": 2, "lr": 1e-3, "subset_ratio": 0.1, "val_split": 0.1, "order": "c100-c10",
        "train_sizes": {"CIFAR100": 900, "CIFAR10": 450}, "val_sizes": {"CIFAR100": 100, "CIFAR10": 50},
        "test_sizes": {"CIFAR100": 2000, "CIFAR10": 1000}}

    # The saved selected models, evaluated here without the code under test. A near-tie may
    # fall the other way in another summation order: one image of slack.
    source = torch.load(run_dir / "checkpoints" / "best_CIFAR100.pt", weights_only=False)["model"]
    target = torch.load(run_dir / "checkpoints" / "best_CIFAR10.pt", weights_only=False)["model"]
    for key in ("weight", "bias"):  # the source head went through fine-tuning untouched
        assert torch.equal(source[f"heads.CIFAR100.{key}"], target[f"heads.CIFAR100.{key}"])
    before = _accuracy(source, "CIFAR100", "builtin100")
    after = _accuracy(target, "CIFAR100", "builtin100")
    assert summary["source_test_accuracy_before"] == pytest.approx(before, abs=1 / 2000)
    assert summary["source_test_accuracy_after"] == pytest.approx(after, abs=1 / 2000)
    assert summary["forgetting"] == pytest.approx(before - after, abs=2 / 2000)
    target_accuracy = _accuracy(target, "CIFAR10", "builtin10")
    assert summary["target_test_accuracy"] == pytest.approx(target_accuracy, abs=1 / 1000)


def test_the_epoch_is_selected_on_validation_and_the_next_stage_starts_from_it(tmp_path, monkeypatch):
    # Scripted accuracies, told apart by split size (smoke: builtin100 100 val / 2000 test images,
    # builtin10 50 val / 1000 test): the test split always prefers another epoch than validation.
    script = {100: [0.5, 0.2], 2000: [0.1, 0.7, 0.04], 50: [0.3, 0.4], 1000: [0.6, 0.2]}
    monkeypatch.setattr(q2_transfer.train, "evaluate",
                        lambda net, loader, ctx, bf16=False: (0.0, script[len(loader.labels)].pop(0)))
    real_train = q2_transfer.train.train_one_epoch
    weights_at_start = {}

    def recording_train(model, loader, optimizer, ctx, run, where, bf16=False):
        weights_at_start[where] = {key: value.clone() for key, value in model.state_dict().items()}
        return real_train(model, loader, optimizer, ctx, run, where, bf16)

    monkeypatch.setattr(q2_transfer.train, "train_one_epoch", recording_train)
    summary = main(["--order", "c100-c10", "--smoke", "--epochs", "2", "--run-name", "r",
                    "--out-dir", str(tmp_path), *QUIET])

    assert all(not values for values in script.values())  # the source test split once more, at the end
    # CIFAR-100: best validation at epoch 1 (0.5 > 0.2), so its test figure is 0.1, not 0.7.
    # CIFAR-10: best validation at epoch 2 (0.4 > 0.3) -> test 0.2, not 0.6; 90% of 0.4 is
    # 0.36, first reached at epoch 2. Forgetting: 0.1 before, 0.04 after.
    assert {key: summary[key] for key in ("CIFAR100_selected_epoch", "CIFAR100_val_accuracy",
                                          "CIFAR100_test_accuracy", "CIFAR10_selected_epoch",
                                          "target_test_accuracy", "target_epochs_to_90pct",
                                          "source_test_accuracy_before", "source_test_accuracy_after")} == {
        "CIFAR100_selected_epoch": 1, "CIFAR100_val_accuracy": 0.5, "CIFAR100_test_accuracy": 0.1,
        "CIFAR10_selected_epoch": 2, "target_test_accuracy": 0.2, "target_epochs_to_90pct": 2,
        "source_test_accuracy_before": 0.1, "source_test_accuracy_after": 0.04}
    assert summary["forgetting"] == pytest.approx(0.06)
    # Stage 2 starts from the backbone after stage-1 epoch 1 (the weights stage-1 epoch 2 began
    # with), not from the one after epoch 2.
    selected = weights_at_start["CIFAR100 epoch 2"]
    stage2 = weights_at_start["CIFAR10 epoch 1"]
    backbone_keys = [key for key in selected if key.startswith("0.")]
    assert backbone_keys and all(torch.equal(selected[key], stage2[key]) for key in backbone_keys)
    checkpoints = tmp_path / "q2_transfer" / "r" / "checkpoints"
    best_source = torch.load(checkpoints / "best_CIFAR100.pt", weights_only=False)
    assert best_source["epoch"] == 1 and best_source["best_metric"] == 0.5
    assert all(torch.equal(best_source["model"]["backbone." + key[2:]], selected[key])
               for key in backbone_keys)
    assert torch.load(checkpoints / "best_CIFAR10.pt", weights_only=False)["epoch"] == 2


class Interrupted(Exception):
    pass


# builtin100: 3 images per class, 1 held out; builtin10: 30 per class, 10 held out.
TINY = ["--smoke", "--train-size", "300", "--val-split", "0.34", "--test-size", "200", "--run-name", "r",
        *QUIET]
RESUME_FLAGS = ["--order", "c100-c10", "--epochs", "2", *TINY]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted 2 + 2 epoch run on small built-in subsets: (summary, run folder)."""
    out_dir = tmp_path_factory.mktemp("whole")
    torch.set_num_threads(1)
    summary = main(RESUME_FLAGS + ["--out-dir", str(out_dir)])
    return summary, out_dir / "q2_transfer" / "r"


@pytest.mark.parametrize("stop_after", [2, 3], ids=["at-the-stage-boundary", "inside-stage-2"])
def test_resume_ends_with_the_same_numbers_as_an_uninterrupted_run(tmp_path, monkeypatch, stop_after,
                                                                   uninterrupted):
    # Interrupt a run right after its `stop_after`-th epoch checkpoint is written, then resume it.
    real_save = q2_transfer.train.save_checkpoint
    saved = []

    def save_then_stop(path, *args, **kwargs):
        result = real_save(path, *args, **kwargs)
        if path.name == "last.pt":
            saved.append(path)
            if len(saved) == stop_after:
                raise Interrupted
        return result

    monkeypatch.setattr(q2_transfer.train, "save_checkpoint", save_then_stop)
    with pytest.raises(Interrupted):
        main(RESUME_FLAGS + ["--out-dir", str(tmp_path)])
    monkeypatch.setattr(q2_transfer.train, "save_checkpoint", real_save)
    resumed = main(RESUME_FLAGS + ["--out-dir", str(tmp_path), "--resume"])

    whole, whole_dir = uninterrupted
    assert resumed == whole
    assert _metrics(tmp_path / "q2_transfer" / "r") == _metrics(whole_dir)
    for name in ("last.pt", "best_CIFAR100.pt", "best_CIFAR10.pt"):
        weights = [torch.load(run_dir / "checkpoints" / name, weights_only=False)["model"]
                   for run_dir in (whole_dir, tmp_path / "q2_transfer" / "r")]
        for key, value in weights[0].items():
            assert torch.equal(value, weights[1][key]), (name, key)


@pytest.mark.parametrize("flag, first, second, named", [
    ("--order", "c10", "c100", "--order 'c10' (now 'c100')"), ("--seed", "0", "1", "--seed 0 (now 1)")])
def test_resume_refuses_a_checkpoint_written_with_other_settings(tmp_path, capsys, flag, first, second,
                                                                 named):
    flags = ["--epochs", "1", *TINY, "--out-dir", str(tmp_path)]
    main([flag, first] + flags)
    capsys.readouterr()
    # c10 -> c100 also changes the head's shape: loading the weights before comparing the
    # settings would fail inside load_state_dict instead of with this line.
    with pytest.raises(SystemExit) as exit_info:
        main([flag, second] + flags + ["--resume"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: --resume: ") and named in err


def test_real_data_path_reads_both_cifar_layouts(tmp_path):
    """CIFAR-100 in torchvision's pickled layout and CIFAR-10 as an ImageFolder, both under
    --data-root: the non-smoke path finds each and trains on exactly those images."""
    import pickle

    import numpy as np
    from PIL import Image

    root = tmp_path / "data"
    generator = np.random.default_rng(0)
    cifar100 = root / "cifar-100-python"
    cifar100.mkdir(parents=True)
    for split, count in (("train", 200), ("test", 100)):
        entry = {"data": generator.integers(0, 256, (count, 3072), dtype=np.uint8),
                 "fine_labels": [i % 100 for i in range(count)]}
        (cifar100 / split).write_bytes(pickle.dumps(entry))
    (cifar100 / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}))
    for split, per_class in (("train", 4), ("test", 2)):
        for label in range(10):
            folder = root / "cifar10" / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = generator.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")

    summary = main(["--order", "c100-c10", "--data-root", str(root), "--model", "smallcnn", "--epochs", "1",
                    "--bs", "32", "--val-split", "0.5", "--out-dir", str(tmp_path / "runs"), *QUIET])
    config = json.loads((tmp_path / "runs" / "q2_transfer" / "c100-c10-smallcnn-e1-sub1-val0.5-seed0" /
                         "config.json").read_text())
    assert config["datasets"] == {"CIFAR100": "cifar100", "CIFAR10": "cifar10"}
    # Half of each class held out: 1 of 2 CIFAR-100 images, 2 of 4 CIFAR-10 images.
    assert config["train_sizes"] == {"CIFAR100": 100, "CIFAR10": 20}
    assert config["val_sizes"] == {"CIFAR100": 100, "CIFAR10": 20}
    assert config["test_sizes"] == {"CIFAR100": 100, "CIFAR10": 20}
    assert config["smoke"] is False
    # Accuracies are fractions of the 20 CIFAR-10 test images.
    assert round(summary["CIFAR10_test_accuracy"] * 20, 6).is_integer()
