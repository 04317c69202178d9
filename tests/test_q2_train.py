"""q2_transfer.train end to end on the built-in sets: both stages learn, the per-epoch line and
metrics have the promised format, forgetting uses the kept head, and --resume reproduces an
uninterrupted run exactly."""

import json
import re

import pytest
import torch

import q2_transfer.train
from common.data.images import MEAN_STD, ImageLoader
from common.distributed import DistContext
from q2_transfer.models import MODELS, TransferNet
from q2_transfer.train import evaluate, main
from tests.q2_data import short_test_images, small_images, use_small_images  # noqa: F401  (fixtures)

LINE = re.compile(r"^\[(CIFAR100|CIFAR10)\] Epoch (\d+)/2 \| Loss: \d+\.\d{3} \| Acc: \d+\.\d{2}% "
                  r"\| Test acc: \d+\.\d{2}%$")


def _metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("time")
    return lines


def test_short_run_beats_chance_on_both_stages(tmp_path, capsys, short_test_images):  # noqa: F811
    summary = main(["--order", "c100-c10", "--smoke", "--epochs", "2", "--wandb-mode", "disabled",
                    "--out-dir", str(tmp_path)])
    # Chance is 1% on the 100-class source and 10% on the 10-class target.
    assert summary["CIFAR100_final_test_accuracy"] > 0.03
    assert summary["CIFAR10_final_test_accuracy"] > 0.30
    assert summary["source"] == "CIFAR100" and summary["target"] == "CIFAR10"

    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [LINE.match(line).groups() for line in lines] == [
        ("CIFAR100", "1"), ("CIFAR100", "2"), ("CIFAR10", "1"), ("CIFAR10", "2")]

    run_dir = tmp_path / "q2_transfer" / "smoke-c100-c10-smallcnn-e2-sub0.1-seed0"
    metrics = _metrics(run_dir)
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]  # the global step keeps counting
    assert {"CIFAR100_loss", "CIFAR100_accuracy", "CIFAR100_test_accuracy"} <= metrics[1].keys()
    assert {"CIFAR10_loss", "CIFAR10_accuracy", "CIFAR10_test_accuracy"} <= metrics[3].keys()
    assert metrics[3]["CIFAR10_test_accuracy"] == summary["CIFAR10_final_test_accuracy"]
    config = json.loads((run_dir / "config.json").read_text())
    assert {key: config[key] for key in ("batch_size", "epochs", "lr", "subset_ratio", "order")} == {
        "batch_size": 64, "epochs": 2, "lr": 1e-3, "subset_ratio": 0.1, "order": "c100-c10"}

    # Forgetting, recomputed independently: the final backbone with the CIFAR-100 head kept in
    # the checkpoint, on the same builtin100 test split.
    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)
    net = MODELS["smallcnn"](10)
    net.load_state_dict(checkpoint["model"])
    source_head = torch.nn.Linear(net.head.in_features, 100)
    source_head.load_state_dict(checkpoint["extra"]["source_head"])
    test = q2_transfer.train.load_images("builtin100", None, "test")
    assert len(test) == 1000
    loader = ImageLoader(test.images, test.labels, 500, shuffle=False, augment=False, mean=MEAN_STD["builtin100"][0],
                         std=MEAN_STD["builtin100"][1])
    _, after = evaluate(TransferNet(net.backbone, source_head), loader, DistContext())
    assert after == summary["source_test_accuracy_after"]
    assert summary["source_test_accuracy_before"] == metrics[1]["CIFAR100_test_accuracy"]
    assert summary["forgetting"] == pytest.approx(summary["source_test_accuracy_before"] - after)


class Interrupted(Exception):
    pass


RESUME_FLAGS = ["--order", "c100-c10", "--smoke", "--epochs", "2", "--subset-ratio", "0.1",
                "--wandb-mode", "disabled", "--run-name", "r"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted 2 + 2 epoch run on small built-in sets: (summary, run folder)."""
    out_dir = tmp_path_factory.mktemp("whole")
    with pytest.MonkeyPatch.context() as patch:
        use_small_images(patch)
        summary = main(RESUME_FLAGS + ["--out-dir", str(out_dir)])
    return summary, out_dir / "q2_transfer" / "r"


@pytest.mark.parametrize("stop_after", [2, 3], ids=["at-the-stage-boundary", "inside-stage-2"])
def test_resume_ends_with_the_same_numbers_as_an_uninterrupted_run(tmp_path, monkeypatch, stop_after,
                                                                   uninterrupted, small_images):  # noqa: F811
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
    weights = [torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["model"]
               for run_dir in (whole_dir, tmp_path / "q2_transfer" / "r")]
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key


def test_resume_refuses_a_checkpoint_written_with_other_flags(tmp_path, small_images, capsys):  # noqa: F811
    flags = ["--smoke", "--epochs", "1", "--subset-ratio", "0.1", "--wandb-mode", "disabled",
             "--run-name", "r", "--out-dir", str(tmp_path)]
    main(["--order", "c10"] + flags)
    with pytest.raises(SystemExit) as exit_info:
        main(["--order", "c100"] + flags + ["--resume"])
    assert exit_info.value.code == 1
    assert "different order" in capsys.readouterr().err


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
    for split, per_class in (("train", 3), ("test", 2)):
        for label in range(10):
            folder = root / "cifar10" / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = generator.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")

    summary = main(["--order", "c100-c10", "--data-root", str(root), "--model", "smallcnn", "--epochs", "1",
                    "--bs", "32", "--wandb-mode", "disabled", "--out-dir", str(tmp_path / "runs")])
    config = json.loads((tmp_path / "runs" / "q2_transfer" / "c100-c10-smallcnn-e1-sub1-seed0" /
                         "config.json").read_text())
    assert config["datasets"] == {"CIFAR100": "cifar100", "CIFAR10": "cifar10"}
    assert config["train_sizes"] == {"CIFAR100": 200, "CIFAR10": 30}
    assert config["test_sizes"] == {"CIFAR100": 100, "CIFAR10": 20}
    assert config["smoke"] is False
    # Accuracies are fractions of the 20 CIFAR-10 test images.
    assert round(summary["CIFAR10_final_test_accuracy"] * 20, 6).is_integer()
