"""q2_transfer: one head per task on a shared backbone, and the stratified, seeded train/val/test
subsets the runs use."""

import pytest
import torch
from torch import nn

from q2_transfer.models import BACKBONES, TransferNet
from q2_transfer.train import TASKS, epochs_to_reach, load_task, main, parse_args


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_training_one_task_leaves_the_other_head_untouched(name):
    net = TransferNet(BACKBONES[name](), {"source": 100, "target": 10})
    source_head = {key: value.clone() for key, value in net.heads["source"].state_dict().items()}
    backbone = {key: value.clone() for key, value in net.backbone.state_dict().items()}
    # As in train.py: one Adam over every parameter, a loss on the target task's network only.
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    images = torch.randn(4 if name == "smallcnn" else 2, 3, 32, 32)
    logits = net.for_task("target")(images)
    assert logits.shape == (len(images), 10)
    torch.testing.assert_close(logits, net.heads["target"](net.backbone(images)))
    nn.functional.cross_entropy(logits, torch.arange(len(images))).backward()
    optimizer.step()

    for key, value in net.heads["source"].state_dict().items():
        assert torch.equal(value, source_head[key]), key
    changed = [key for key, value in net.backbone.state_dict().items()
               if not torch.equal(value, backbone[key])]
    assert "features.0.weight" in changed or "stem.0.weight" in changed  # the shared backbone did train


def test_resnet18_is_the_cifar_variant():
    backbone = BACKBONES["resnet18"]()
    stem = backbone.stem[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in backbone.modules())
    # 11,173,962 parameters with a 10-class head: the figure usually quoted for CIFAR ResNet-18
    # (kuangliu/pytorch-cifar), i.e. 11,168,832 in the backbone + 512 * 10 + 10 in the head.
    net = TransferNet(backbone, {"CIFAR10": 10})
    assert sum(p.numel() for p in net.parameters()) == 11_173_962


def _images(image_set):
    """Each image's bytes, a key that tells images apart (the built-in images are all distinct)."""
    return [image.numpy().tobytes() for image in image_set.images]


def test_subsets_are_stratified_disjoint_and_seeded_by_the_split_seed():
    def task(*flags):
        return load_task(TASKS["c10"], parse_args(["--order", "c10", "--smoke", *flags]))

    data = task("--train-size", "1000", "--val-split", "0.2", "--test-size", "200")
    # builtin10: 5000 train images (500 per class) -> 100 per class, of which 20 held out;
    # 1000 test images -> 20 per class.
    assert torch.bincount(data.train.labels).tolist() == [80] * 10
    assert torch.bincount(data.val.labels).tolist() == [20] * 10
    assert torch.bincount(data.test.labels).tolist() == [20] * 10
    train, val = _images(data.train), _images(data.val)
    assert len(set(train)) == 800 and not set(train) & set(val)

    # --seed changes initialisation and batch order only; --split-seed changes the images.
    same = task("--train-size", "1000", "--val-split", "0.2", "--test-size", "200", "--seed", "5")
    assert _images(same.train) == train and _images(same.val) == val
    other = task("--train-size", "1000", "--val-split", "0.2", "--test-size", "200", "--split-seed", "1")
    assert _images(other.train) != train and _images(other.val) != val
    assert torch.bincount(other.val.labels).tolist() == [20] * 10
    # Without sizes --smoke takes a 0.1 subset: 50 per class, 5 of them for validation; the
    # test split stays whole.
    default = task()
    assert torch.bincount(default.train.labels).tolist() == [45] * 10
    assert len(default.val) == 50 and len(default.test) == 1000


def test_a_validation_split_that_holds_out_nothing_is_a_one_line_error(tmp_path, capsys):
    # 200 builtin100 images are 2 per class; 10% of 2 rounds to none.
    with pytest.raises(SystemExit) as exit_info:
        main(["--order", "c100", "--smoke", "--train-size", "200", "--wandb-mode", "disabled",
              "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: builtin100: --val-split 0.1 of 200 training images holds out 0")
    assert len(err.splitlines()) == 1


def test_epochs_to_reach_90_percent_of_the_best_accuracy():
    # Best 0.80 -> threshold 0.72: first reached at epoch 3 (0.75), by hand.
    assert epochs_to_reach([0.10, 0.70, 0.75, 0.60, 0.80]) == 3
    assert epochs_to_reach([0.5]) == 1
    assert epochs_to_reach([0.2, 0.9, 0.5]) == 2  # the best, 0.9, not the last, 0.5, sets the bar
