"""q2_transfer: head replacement, the stratified subsets the runs train on, and forgetting measured
with the kept source head."""

import pytest
import torch
from torch import nn

from common.distributed import DistContext
from q2_transfer.models import MODELS, TransferNet, replace_head
from q2_transfer.train import TASKS, epochs_to_reach, load_task, measure_forgetting, parse_args
from tests.q2_data import cached_images  # noqa: F401  (fixture)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_head_replacement_keeps_every_backbone_weight(name):
    net = MODELS[name](100)
    with torch.no_grad():  # make the batch-norm buffers non-default too, so they are compared for real
        for module in net.backbone.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    before = {key: value.clone() for key, value in net.backbone.state_dict().items()}
    old_head = net.head
    old_weight = old_head.weight.detach().clone()

    kept = replace_head(net, 10)

    after = net.backbone.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    assert kept is old_head and torch.equal(kept.weight, old_weight)  # the source head, untouched
    assert net.head is not old_head and net.head.out_features == 10
    assert net.head.in_features == old_head.in_features
    if name == "smallcnn":  # a ResNet-18 forward pass costs seconds on a busy CPU
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet18_is_the_cifar_variant():
    net = MODELS["resnet18"](10)
    stem = net.backbone.stem[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    # 11,173,962 parameters for 10 classes: the figure usually quoted for CIFAR ResNet-18
    # (kuangliu/pytorch-cifar), i.e. 11,168,832 in the backbone + 512 * 10 + 10 in the head.
    assert sum(p.numel() for p in net.parameters()) == 11_173_962


def test_stratified_subset_has_the_right_size_per_class_and_is_seeded(cached_images):
    def subset(order, seed, ratio="0.1"):
        args = parse_args(["--order", order, "--smoke", "--subset-ratio", ratio, "--seed", str(seed)])
        return load_task(TASKS["c10"], args, DistContext())

    first = subset("c10", 0)
    # builtin10 has 500 train images per class, so a 0.1 subset holds exactly 50 of each.
    assert torch.bincount(first.train.labels, minlength=10).tolist() == [50] * 10
    assert first.train_size == 500 and first.test_size == 1000  # the test split stays whole
    # Same seed -> the same images, whichever order the task appears in; another seed -> others.
    again = subset("c100-c10", 0)
    assert torch.equal(first.train_indices, again.train_indices)
    assert torch.equal(first.train.labels, again.train.labels)
    other = subset("c10", 1)
    assert not torch.equal(first.train_indices, other.train_indices)
    assert torch.bincount(other.train.labels).tolist() == [50] * 10
    assert torch.bincount(subset("c10", 0, "0.25").train.labels).tolist() == [125] * 10


def _argmax_data():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(200, 2, generator=generator)
    features = features[(features[:, 0] - features[:, 1]).abs() > 0.1]  # no near-ties
    labels = features.argmax(1)
    return [(features[i:i + 50], labels[i:i + 50]) for i in range(0, len(features), 50)]


def test_forgetting_is_measured_with_the_kept_source_head():
    # Backbone: a 2x2 linear map; source head: the identity, so the source task "label =
    # argmax of the features" is solved exactly while the backbone is the identity.
    backbone = nn.Linear(2, 2, bias=False)
    source_head = nn.Linear(2, 2)
    with torch.no_grad():
        backbone.weight.copy_(torch.eye(2))
        source_head.weight.copy_(torch.eye(2))
        source_head.bias.zero_()
    net = TransferNet(backbone, source_head)
    batches = _argmax_data()
    kept = replace_head(net, 3)  # the target task's 3-way head replaces it

    # A backbone scaled by 2 keeps every argmax: by hand, accuracy 1, nothing forgotten.
    with torch.no_grad():
        backbone.weight.copy_(2 * torch.eye(2))
    result = measure_forgetting(net, kept, batches, accuracy_before=1.0, ctx=DistContext())
    assert result == {"source_test_accuracy_before": 1.0, "source_test_accuracy_after": 1.0, "forgetting": 0.0}

    # "Fine-tuning" that swaps the two features turns every argmax into the argmin: accuracy 0,
    # everything forgotten. Using the new 3-way head or the pre-fine-tuning backbone could not
    # give these numbers.
    with torch.no_grad():
        backbone.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    result = measure_forgetting(net, kept, batches, accuracy_before=1.0, ctx=DistContext())
    assert result["source_test_accuracy_after"] == 0.0 and result["forgetting"] == 1.0
    assert net.head.out_features == 3  # measuring did not touch the target model


def test_epochs_to_reach_90_percent_of_the_final_accuracy():
    # Final 0.80 -> threshold 0.72: first reached at epoch 3 (0.75), by hand.
    assert epochs_to_reach([0.10, 0.70, 0.75, 0.60, 0.80]) == 3
    assert epochs_to_reach([0.5]) == 1
    assert epochs_to_reach([0.9, 0.2, 0.5]) == 1  # 0.9 >= 0.45 already at epoch 1
