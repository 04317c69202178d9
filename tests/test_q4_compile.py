"""The compiled path (torch.compile, inductor's CPU backend) of ResNet-(6n+2) with the
from-scratch normalizations gives the eager path's outputs, gradients and running statistics."""

import copy

import pytest
import torch

from q4_normalization.resnet import ResNet


# Batch-Instance Norm runs every branch of the from-scratch normalization (batch and instance
# statistics, running statistics, the rho mix); one inductor compile costs about a minute of CPU.
@pytest.mark.parametrize("norm", ["bin"])
def test_compiled_training_step_matches_eager(norm):
    torch.manual_seed(0)
    eager = ResNet(n=1, r=10, norm=norm).double()
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model, backend="inductor")
    images = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    labels = torch.tensor([0, 3, 7, 9])
    for model in (eager, compiled):
        model.train()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
    for (name, ours), (_, reference) in zip(compiled_model.named_parameters(), eager.named_parameters()):
        assert torch.allclose(ours.grad, reference.grad, rtol=1e-8, atol=1e-10), name
    for (name, ours), (_, reference) in zip(compiled_model.named_buffers(), eager.named_buffers()):
        assert torch.allclose(ours, reference, rtol=1e-8, atol=1e-10), name
    eager.eval(), compiled.eval()
    with torch.no_grad():
        assert torch.allclose(compiled(images), eager(images), rtol=1e-8, atol=1e-10)
