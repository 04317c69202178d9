"""Q4: the from-scratch normalization layers against torch's own (forward, input and affine
gradients, running statistics), the Batch-Instance Norm identities and rho clipping, the GroupNorm
limits, and the ResNet-(6n+2) structure."""

import ast
import inspect

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from q4_normalization import norms
from q4_normalization.norms import NORMS, BatchInstanceNorm2d, clip_rho_, param_groups
from q4_normalization.resnet import ResNet, count_parameters

DTYPES = [(torch.float64, 1e-10), (torch.float32, 1e-5)]


def randomize_affine(*layers: nn.Module, seed: int = 1) -> None:
    """Give every layer the same random gamma/beta (not the trivial ones/zeros)."""
    generator = torch.Generator().manual_seed(seed)
    gamma, beta = None, None
    for layer in layers:
        if gamma is None:
            gamma = 1 + 0.5 * torch.randn(layer.weight.shape, generator=generator, dtype=layer.weight.dtype)
            beta = 0.5 * torch.randn(layer.bias.shape, generator=generator, dtype=layer.bias.dtype)
        with torch.no_grad():
            layer.weight.copy_(gamma.view_as(layer.weight))
            layer.bias.copy_(beta.view_as(layer.bias))


def forward_backward(fn, x, params, dy):
    """Output and gradients w.r.t. x and each parameter for the cotangent dy."""
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    grads = torch.autograd.grad(y, [x, *params], dy)
    return y.detach(), grads


def assert_close(actual, expected, tol):
    torch.testing.assert_close(actual, expected, atol=tol, rtol=tol)


def make_input(dtype, shape=(6, 8, 5, 7), offset=0.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = offset + 2 * torch.randn(shape, generator=generator, dtype=torch.float64)
    dy = torch.randn(shape, generator=generator, dtype=torch.float64)
    return x.to(dtype), dy.to(dtype)


# ---- registry ------------------------------------------------------------------------------------

def test_registry_names_and_types():
    assert set(NORMS) == {"nn", "bn", "in", "bin", "ln", "gn", "torch_bn"}
    assert isinstance(NORMS["nn"](16), nn.Identity)
    assert type(NORMS["torch_bn"](16)) is nn.BatchNorm2d
    assert NORMS["gn"](32).groups == 16 and NORMS["gn"](32, groups=4).groups == 4
    assert isinstance(NORMS["bin"](8), BatchInstanceNorm2d)


def test_from_scratch_layers_do_not_call_torch_normalization_functions():
    # The study forbids them inside the from-scratch layers: no attribute of that name is used
    # anywhere in the module's code (docstrings may mention them).
    tree = ast.parse(inspect.getsource(norms))
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not used & {"batch_norm", "group_norm", "layer_norm", "instance_norm", "native_batch_norm",
                       "native_group_norm", "native_layer_norm"}


# ---- BatchNorm -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_bn_matches_torch_in_train_and_eval_mode(dtype, tol):
    ours, ref = NORMS["bn"](8).to(dtype), nn.BatchNorm2d(8).to(dtype)
    randomize_affine(ours, ref)
    for step in range(3):  # three training batches update the running statistics
        x, dy = make_input(dtype, seed=step, offset=step)
        y_ours, g_ours = forward_backward(ours, x, [ours.weight, ours.bias], dy)
        y_ref, g_ref = forward_backward(ref, x, [ref.weight, ref.bias], dy)
        assert_close(y_ours, y_ref, tol)
        for a, b in zip(g_ours, g_ref):  # input, gamma and beta gradients
            assert_close(a, b, tol)
    assert_close(ours.running_mean, ref.running_mean, tol)
    assert_close(ours.running_var, ref.running_var, tol)  # unbiased, momentum 0.1
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 3

    ours.eval(), ref.eval()
    x, dy = make_input(dtype, seed=7)
    y_ours, g_ours = forward_backward(ours, x, [ours.weight, ours.bias], dy)
    y_ref, g_ref = forward_backward(ref, x, [ref.weight, ref.bias], dy)
    assert_close(y_ours, y_ref, tol)
    for a, b in zip(g_ours, g_ref):
        assert_close(a, b, tol)
    assert int(ours.num_batches_tracked) == 3  # eval mode leaves the statistics alone


def test_bn_running_var_is_unbiased_by_hand():
    # One batch from zero/one buffers: running_var = 0.9 * 1 + 0.1 * var(x, unbiased).
    layer = NORMS["bn"](2).double()
    x = torch.arange(2 * 2 * 3 * 1, dtype=torch.float64).view(2, 2, 3, 1)
    layer(x)
    values = x.transpose(0, 1).reshape(2, -1)
    assert torch.allclose(layer.running_mean, 0.1 * values.mean(1))
    assert torch.allclose(layer.running_var, 0.9 + 0.1 * values.var(1, unbiased=True))


# ---- InstanceNorm, LayerNorm, GroupNorm ----------------------------------------------------------

@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_in_matches_functional_instance_norm(dtype, tol):
    ours = NORMS["in"](8).to(dtype)
    randomize_affine(ours)
    x, dy = make_input(dtype)
    y_ours, g_ours = forward_backward(ours, x, [ours.weight, ours.bias], dy)
    ref = lambda t: F.instance_norm(t, weight=w, bias=b, eps=1e-5)  # noqa: E731
    w, b = ours.weight.detach().clone().requires_grad_(), ours.bias.detach().clone().requires_grad_()
    y_ref, g_ref = forward_backward(ref, x, [w, b], dy)
    assert_close(y_ours, y_ref, tol)
    for a, r in zip(g_ours, g_ref):
        assert_close(a, r, tol)
    ours.eval()  # no running statistics: eval mode is the same function
    assert_close(ours(x), y_ref, tol)


@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_ln_matches_functional_layer_norm(dtype, tol):
    ours = NORMS["ln"](8).to(dtype)
    randomize_affine(ours)
    x, dy = make_input(dtype)
    _, c, h, w_ = x.shape
    y_ours, g_ours = forward_backward(ours, x, [ours.weight, ours.bias], dy)
    # torch's LayerNorm affine is elementwise over (C, H, W); ours is per channel, so the
    # reference gets the per-channel values broadcast and its gradients summed over (H, W).
    w = ours.weight.detach().clone().requires_grad_()
    b = ours.bias.detach().clone().requires_grad_()
    ref = lambda t: F.layer_norm(t, [c, h, w_], w.view(c, 1, 1).expand(c, h, w_),  # noqa: E731
                                 b.view(c, 1, 1).expand(c, h, w_), eps=1e-5)
    y_ref, g_ref = forward_backward(ref, x, [w, b], dy)
    assert_close(y_ours, y_ref, tol)
    for a, r in zip(g_ours, g_ref):
        assert_close(a, r, tol)


@pytest.mark.parametrize("channels,groups", [(8, 4), (16, 16), (32, 16), (8, 1)])
@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_gn_matches_functional_group_norm(channels, groups, dtype, tol):
    ours = NORMS["gn"](channels, groups=groups).to(dtype)
    randomize_affine(ours)
    x, dy = make_input(dtype, shape=(5, channels, 4, 6))
    y_ours, g_ours = forward_backward(ours, x, [ours.weight, ours.bias], dy)
    w, b = ours.weight.detach().clone().requires_grad_(), ours.bias.detach().clone().requires_grad_()
    y_ref, g_ref = forward_backward(lambda t: F.group_norm(t, groups, w, b, eps=1e-5), x, [w, b], dy)
    assert_close(y_ours, y_ref, tol)
    for a, r in zip(g_ours, g_ref):
        assert_close(a, r, tol)


def test_gn_with_one_channel_per_group_is_in_and_with_one_group_is_ln():
    x, dy = make_input(torch.float64, shape=(4, 12, 5, 5))
    pairs = [(NORMS["gn"](12, groups=12), NORMS["in"](12)), (NORMS["gn"](12, groups=1), NORMS["ln"](12))]
    for gn, other in pairs:
        gn.double(), other.double()
        randomize_affine(gn, other)
        y_gn, g_gn = forward_backward(gn, x, [gn.weight, gn.bias], dy)
        y_other, g_other = forward_backward(other, x, [other.weight, other.bias], dy)
        assert_close(y_gn, y_other, 1e-12)
        for a, b in zip(g_gn, g_other):
            assert_close(a, b, 1e-12)


def test_gn_rejects_groups_that_do_not_divide_channels():
    with pytest.raises(ValueError, match="groups"):
        NORMS["gn"](12, groups=5)


@pytest.mark.parametrize("name,twin", [("bn", nn.BatchNorm2d(16)), ("in", nn.InstanceNorm2d(16, affine=True)),
                                       ("gn", nn.GroupNorm(4, 16)), ("bin", None)])
def test_output_takes_an_in_place_relu_like_torch_layers(name, twin):
    # ResNets often follow the norm with ReLU(inplace=True); autograd refuses that on a view
    # returned by a custom function, and the gradients must be those of the out-of-place ReLU.
    x, dy = make_input(torch.float64, shape=(4, 16, 5, 5))
    ours = NORMS[name](16, groups=4).double()
    reference = ours if twin is None else twin.double()
    randomize_affine(ours, reference)
    y, grads = forward_backward(lambda t: torch.relu_(ours(t)), x, [ours.weight, ours.bias], dy)
    y_ref, grads_ref = forward_backward(lambda t: F.relu(reference(t)), x,
                                        [reference.weight, reference.bias], dy)
    assert_close(y, y_ref, 1e-10)
    for a, b in zip(grads, grads_ref):
        assert_close(a, b, 1e-10)


def test_float32_statistics_stay_accurate_with_a_large_offset():
    # Rows with mean 50 and std 2: the single-pass row variance loses a few digits but the
    # output must still match torch's to 1e-3 (x_hat is O(1)).
    x, dy = make_input(torch.float32, shape=(8, 16, 16, 16), offset=50.0)
    for name, ref in (("bn", nn.BatchNorm2d(16)), ("gn", nn.GroupNorm(4, 16))):
        ours = NORMS[name](16, groups=4)
        assert_close(ours(x), ref(x), 1e-3)


# ---- Batch-Instance Norm -------------------------------------------------------------------------

def bin_reference(x, gamma, beta, rho, running_mean, running_var, training):
    """gamma * (rho * x_bn + (1 - rho) * x_in) + beta from torch's functional norms."""
    x_bn = F.batch_norm(x, running_mean, running_var, training=training, momentum=0.1, eps=1e-5)
    x_in = F.instance_norm(x, eps=1e-5)
    shape = (1, -1, 1, 1)
    return gamma.view(shape) * (rho.view(shape) * x_bn + (1 - rho.view(shape)) * x_in) + beta.view(shape)


@pytest.mark.parametrize("training", [True, False])
def test_bin_matches_its_formula_for_any_rho(training):
    layer = NORMS["bin"](8).double()
    randomize_affine(layer)
    with torch.no_grad():
        layer.rho.copy_(torch.linspace(0, 1, 8, dtype=torch.float64))
        layer.running_mean.uniform_(-1, 1)
        layer.running_var.uniform_(0.5, 2)
    running_mean, running_var = layer.running_mean.clone(), layer.running_var.clone()
    layer.train(training)
    x, dy = make_input(torch.float64)
    params = [layer.weight, layer.bias, layer.rho]
    y_ours, g_ours = forward_backward(layer, x, params, dy)
    g, b, r = (p.detach().clone().requires_grad_() for p in params)
    y_ref, g_ref = forward_backward(lambda t: bin_reference(t, g, b, r, running_mean, running_var, training),
                                    x, [g, b, r], dy)
    assert_close(y_ours, y_ref, 1e-10)
    for a, ref in zip(g_ours, g_ref):  # input, gamma, beta and rho gradients
        assert_close(a, ref, 1e-10)
    assert_close(layer.running_mean, running_mean, 1e-12)  # the reference updated the same way
    assert_close(layer.running_var, running_var, 1e-12)


@pytest.mark.parametrize("rho,twin", [(1.0, "bn"), (0.0, "in")])
def test_bin_is_bn_at_rho_one_and_in_at_rho_zero(rho, twin):
    layer, other = NORMS["bin"](8).double(), NORMS[twin](8).double()
    randomize_affine(layer, other)
    with torch.no_grad():
        layer.rho.fill_(rho)
    for step in range(2):
        x, dy = make_input(torch.float64, seed=step)
        y_bin, g_bin = forward_backward(layer, x, [layer.weight, layer.bias], dy)
        y_other, g_other = forward_backward(other, x, [other.weight, other.bias], dy)
        assert_close(y_bin, y_other, 1e-10)
        for a, b in zip(g_bin, g_other):
            assert_close(a, b, 1e-10)
    if twin == "bn":
        assert_close(layer.running_var, other.running_var, 1e-12)
        layer.eval(), other.eval()
        assert_close(layer(x), other(x), 1e-10)


@pytest.mark.parametrize("start,target_sign", [(1.0, 1.0), (0.0, -1.0)])
def test_rho_is_clipped_after_a_step_that_pushes_it_out(start, target_sign):
    # loss = -sign * sum(y * x_bn): its rho-gradient is -sign * gamma * sum(x_bn * (x_bn - x_in)),
    # and sum(x_bn^2) >= sum(x_bn * x_in) (equal norms, Cauchy-Schwarz), so a plain SGD step
    # raises rho above 1 (sign +1) or lowers it below 0 (sign -1).
    model = nn.Sequential(nn.Conv2d(3, 8, 3), NORMS["bin"](8))
    with torch.no_grad():
        model[1].rho.fill_(start)
    groups = param_groups(model, weight_decay=1e-4)
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0]
    assert groups[1]["params"] == [model[1].rho]
    optimizer = torch.optim.SGD(groups, lr=10.0, momentum=0.9)
    x = torch.randn(4, 3, 10, 10)
    y = model(x)
    x_bn = F.batch_norm(model[0](x).detach(), None, None, training=True)
    (-target_sign * (y * x_bn).sum()).backward()
    optimizer.step()
    rho = model[1].rho.detach()
    assert (rho > 1).any() if target_sign > 0 else (rho < 0).any()  # the step left [0, 1]
    clip_rho_(model)
    assert rho.min() >= 0 and rho.max() <= 1
    assert torch.all(rho == (1.0 if target_sign > 0 else 0.0))


# ---- ResNet-(6n+2) -------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("norm", ["bn", "nn", "gn"])
def test_resnet_has_6n_plus_2_weighted_layers(n, norm):
    model = ResNet(n=n, r=10, norm=norm)
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == 6 * n + 2 == model.depth
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet14_parameter_count_by_hand():
    # Convolutions 3x3 without bias: stem 3*16*9; stage 1: 4 * 16*16*9; stage 2: 16*32*9 + 3 * 32*32*9;
    # stage 3: 32*64*9 + 3 * 64*64*9. fc 64*10 + 10. BN: gamma and beta for 16 + 4*16 + 4*32 + 4*64 channels.
    convs = 3 * 16 * 9 + 4 * 16 * 16 * 9 + (16 * 32 * 9 + 3 * 32 * 32 * 9) + (32 * 64 * 9 + 3 * 64 * 64 * 9)
    fc = 64 * 10 + 10
    channels = 16 + 4 * 16 + 4 * 32 + 4 * 64
    assert count_parameters(ResNet(2, 10, "bn")) == convs + fc + 2 * channels
    assert count_parameters(ResNet(2, 10, "torch_bn")) == convs + fc + 2 * channels
    assert count_parameters(ResNet(2, 10, "bin")) == convs + fc + 3 * channels  # + rho
    assert count_parameters(ResNet(2, 10, "nn")) == convs + fc + channels  # conv biases instead


@pytest.mark.parametrize("norm", ["bn", "bin", "nn"])
def test_no_decay_on_norm_and_bias_parameters(norm):
    # ResNet-8 (n=1): 1 + 2 * 3 = 7 convolutions and the classifier. With decay_norm_bias=False
    # only their weight tensors are decayed; norm gains and shifts, rho, and the conv biases (kept
    # without normalization) and the classifier's bias are not.
    model = ResNet(n=1, r=10, norm=norm)
    decayed, undecayed = param_groups(model, weight_decay=5e-4, decay_norm_bias=False)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7
    weights = {id(m.weight) for m in convs} | {id(model.fc.weight)}
    assert {id(p) for p in decayed["params"]} == weights and decayed["weight_decay"] == 5e-4
    rest = {id(p) for p in model.parameters()} - weights
    assert {id(p) for p in undecayed["params"]} == rest and undecayed["weight_decay"] == 0.0
    # (bn: 2 per norm layer x 7 layers + fc bias; bin adds rho; nn: 7 conv biases + fc bias)
    assert len(rest) == {"bn": 15, "bin": 22, "nn": 8}[norm]
