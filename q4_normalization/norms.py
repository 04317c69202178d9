"""Six normalization layers written from scratch, and a registry that names them.

    from q4_normalization.norms import NORMS
    layer = NORMS["gn"](64, groups=16)      # constructor(num_channels, **kw) -> nn.Module

Keys: `nn` (none), `bn`, `in`, `bin` (Batch-Instance), `ln`, `gn` and `torch_bn` (torch's own).
The from-scratch layers use tensor operations only (no F.batch_norm and kin) and share one
autograd function, `normalize`, over groups of (sample, channel) rows with the closed-form backward

    dx = rstd / M * (M * g - sum(g) - x_hat * sum(g * x_hat)),   g = dy * gamma,

M being a group's size. BatchNorm keeps running statistics as torch does (unbiased variance in
`running_var`, momentum 0.1, eps 1e-5). Speed against torch and the departures (LayerNorm's
per-channel affine, BIN's rho): q4_normalization/README.md.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn


# ---- the shared autograd function ---------------------------------------------------------------
# x (N, C, H, W) is viewed as (N, G, C/G, H*W): G channel groups of C/G channels each. A
# normalization takes its statistics over dims (2, 3) of that view, per sample and group, or also
# over the batch (dim 0):
#     bn: G = C, over the batch    in: G = C    ln: G = 1    gn: G = groups
# Batch-Instance Norm mixes two of them on the same view (G = C, with and without the batch).
# Every reduction runs over the contiguous trailing dim; channels and the batch are summed
# afterwards, on tensors of one value per (sample, channel).


def _pool(t: torch.Tensor, channels_per_group: int, over_batch: bool) -> torch.Tensor:
    """Sum a (N, G, C/G, 1) tensor of per-(sample, channel) values over each group's channels,
    and also over the batch when `over_batch`: one value per statistics group."""
    if channels_per_group > 1:
        t = t.sum(2, keepdim=True)
    return t.sum(0, keepdim=True) if over_batch else t


class _MixedNormalize(torch.autograd.Function):
    """y = sum_k weight_k * normalize_k(x) + bias, for x (N, C, *) and per-channel (C,) weights.

    Channels form `groups` groups; `over_batch[k]` says whether grouping k also pools the batch.
    One grouping is an ordinary norm layer; Batch-Instance Norm is two (batch with gamma * rho,
    instance with gamma * (1 - rho)). Every term is affine in x on each (sample, channel) row, so
    the forward pass is one scale-and-shift, and the closed-form backward

        dx = rstd / M * (M * g - sum(g) - x_hat * sum(g * x_hat)),   g = dy * weight

    summed over the groupings is again dx = a * dy + b * x + c per row, from two per-row sums of
    the backward pass (of dy and of dy * x). Also returns the first grouping's mean and (biased)
    variance, which BatchNorm needs for its running statistics.

    The views to and from the grouped layout happen inside, so that autograd records one node
    for the whole layer rather than one per view. With `mix`, the weights given are Batch-Instance
    Norm's (gamma, rho), and the two groupings' weights gamma * rho and gamma * (1 - rho) are
    formed inside, their gradients mapped back to gamma and rho in the backward pass: at batch 8
    the three small autograd nodes this saves per layer are a measurable share of a step.
    """

    @staticmethod
    def forward(ctx, x, bias, groups, over_batch, eps, mix, *weights):
        shape = x.shape
        mix_params = ()
        if mix:
            gamma, rho = mix_params = weights
            mixed = gamma * rho
            weights = (mixed, gamma - mixed)
        channels_per_group = shape[1] // groups
        n, length = shape[0], x[0, 0].numel()
        grouped = (n, groups, channels_per_group, 1)  # the per-row statistics' shape
        param_view = (1, groups, channels_per_group, 1)
        weights = [w.view(param_view) for w in weights]
        # Half-precision input (bf16 under CPU autocast): x stays as it is (its memory format too)
        # and every sum, statistic and the scale-and-shift are computed in float32.
        stat = _statistics_dtype(x.dtype)
        low = stat != x.dtype
        xv = x if low else x.contiguous().view(n, groups, channels_per_group, -1)
        rows_dims = (2, 3) if low else 3
        # Per (sample, channel) row: mean and mean square, one read of x each. The variance of a
        # row is E[x^2] - E[x]^2 (the single-pass formula; it loses digits only when a row's mean
        # is many times its spread); rows are then pooled into groups with Chan's exact formula.
        row_mean = xv.mean(rows_dims, keepdim=True, dtype=stat).view(grouped)
        row_var = (torch.linalg.vector_norm(xv, dim=rows_dims, keepdim=True, dtype=stat).view(grouped)
                   .square_().div_(length) - row_mean.square()).clamp_(min=0)
        means, variances, rstds = [], [], []
        for pooled in over_batch:
            if channels_per_group == 1 and not pooled:  # the statistics are the rows' own
                mean, var = row_mean, row_var
            else:
                rows = channels_per_group * (n if pooled else 1)
                mean = _pool(row_mean, channels_per_group, pooled) / rows
                var = _pool(row_var + (row_mean - mean).square(), channels_per_group, pooled) / rows
            means.append(mean)
            variances.append(var)
            rstds.append((var + eps).rsqrt_())
        # y = x * scale + shift with scale = sum_k rstd_k * weight_k, one pass over x.
        scale = rstds[0] * weights[0]
        shift = bias.view(param_view) - scale * means[0]
        for mean, rstd, weight in zip(means[1:], rstds[1:], weights[1:]):
            scale_k = rstd * weight
            scale = scale + scale_k
            shift = shift - scale_k * mean
        # (torch.addcmul with two broadcast operands takes a slow, unvectorised path on the CPU.)
        # y is allocated in x's shape, not returned as a view: autograd forbids in-place ops
        # (such as ReLU(inplace=True)) on a custom function's output that is a view.
        if low:  # a new tensor in x's layout; one fused pass under torch.compile
            y = (x.to(stat) * _per_channel(scale, groups, shape)
                 + _per_channel(shift, groups, shape)).to(x.dtype)
        else:
            y = torch.empty(shape, dtype=xv.dtype, device=xv.device)
            torch.mul(xv, scale, out=y.view(xv.shape)).add_(shift)
        ctx.grouped = (n, groups, channels_per_group, length)
        ctx.save_for_backward(xv, *weights, *means, *rstds, *mix_params)
        ctx.over_batch = over_batch
        ctx.mix = mix
        ctx.set_materialize_grads(False)  # the statistics outputs get no gradient
        stats = (means[0].flatten(), variances[0].flatten())
        ctx.mark_non_differentiable(*stats)
        return (y, *stats)

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        over_batch = ctx.over_batch
        k = len(over_batch)
        xv, saved = ctx.saved_tensors[0], ctx.saved_tensors[1:]
        weights, means, rstds = saved[:k], saved[k:2 * k], saved[2 * k:3 * k]
        n, groups, channels_per_group, length = ctx.grouped
        stat = _statistics_dtype(xv.dtype)
        low = stat != xv.dtype
        if low:  # xv is x itself (see forward); sums in float32
            dyv = dy.to(xv.dtype)
            sum_dy = dyv.sum((2, 3), keepdim=True, dtype=stat).view(n, groups, channels_per_group, 1)
            sum_dy_x = (dyv.to(stat) * xv.to(stat)).sum((2, 3), keepdim=True).view(sum_dy.shape)
        else:
            dyv = dy.contiguous().view(xv.shape)
            sum_dy = dyv.sum(3, keepdim=True)                              # per (sample, channel)
            buffer = torch.mul(dyv, xv)  # reused below for grad_x, which saves one allocation of x's size
            sum_dy_x = buffer.sum(3, keepdim=True)
        coef_dy = coef_x = offset = 0
        weight_grads = []
        for pooled, weight, mean, rstd in zip(over_batch, weights, means, rstds):
            count = length * channels_per_group * (n if pooled else 1)
            sum_dy_xhat = (sum_dy_x - mean * sum_dy).mul_(rstd)          # per (sample, channel)
            weight_grads.append(sum_dy_xhat.sum(0).flatten())
            sum_g = _pool(sum_dy * weight, channels_per_group, pooled)
            sum_g_xhat = _pool(sum_dy_xhat * weight, channels_per_group, pooled)
            rstd_by_count = rstd / -count
            b = rstd_by_count * rstd * sum_g_xhat
            coef_dy = coef_dy + rstd * weight
            coef_x = coef_x + b
            offset = offset + (rstd_by_count * sum_g - b * mean)
        grad_x = None
        if ctx.needs_input_grad[0] and low:  # in float32 (its terms cancel), stored in x's precision
            shape = xv.shape
            grad_x = (xv.to(stat) * _per_channel(coef_x, groups, shape) + _per_channel(offset, groups, shape)
                      + dyv.to(stat) * _per_channel(coef_dy, groups, shape)).to(xv.dtype)
        elif ctx.needs_input_grad[0]:
            grad_x = torch.mul(xv, coef_x, out=buffer).add_(offset).addcmul_(dyv, coef_dy).view(dy.shape)
        grad_bias = sum_dy.sum(0).flatten() if ctx.needs_input_grad[1] else None
        if ctx.mix:  # d/dgamma = rho * g_bn + (1 - rho) * g_in, d/drho = gamma * (g_bn - g_in)
            gamma, rho = saved[3 * k:]
            gap = weight_grads[0] - weight_grads[1]
            weight_grads = [torch.addcmul(weight_grads[1], rho, gap), gamma * gap]
        grad_weights = [g if ctx.needs_input_grad[6 + i] else None for i, g in enumerate(weight_grads)]
        return (grad_x, grad_bias, None, None, None, None, *grad_weights)


def _statistics_dtype(dtype: torch.dtype) -> torch.dtype:
    """The precision of the statistics: float32 for half-precision input, else the input's."""
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def _per_channel(t: torch.Tensor, groups: int, shape: torch.Size) -> torch.Tensor:
    """A per-(sample, channel) or per-(sample, group) tensor, (N or 1, G, C/G or 1, 1), as
    (N or 1, C, 1, 1), to broadcast against x of `shape` (N, C, H, W) in whatever memory format."""
    t = t.expand(t.shape[0], groups, shape[1] // groups, 1)
    return t.reshape(t.shape[0], shape[1], *([1] * (len(shape) - 2)))


@torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
def normalize(x: torch.Tensor, weights: tuple[torch.Tensor, ...], bias: torch.Tensor, groups: int,
              over_batch: tuple[bool, ...], eps: float = 1e-5, mix: bool = False) -> tuple[torch.Tensor, ...]:
    """sum_k weights[k] * normalize_k(x) + bias for x (N, C, *) and per-channel (C,) weights/bias.

    Channels form `groups` groups; grouping k takes statistics per sample and group, and also
    over the batch where over_batch[k]. Returns (y, mean, var): y shaped like x, and grouping 0's
    mean and biased variance per group (flattened, no gradient). With `mix` (two groupings),
    `weights` is (gamma, rho) and the groupings get gamma * rho and gamma * (1 - rho). Under CUDA
    autocast it runs in float32, as torch's own layer_norm and group_norm do. Under CPU autocast
    it takes bf16 input as it comes and returns bf16, with every sum, statistic and the
    scale-and-shift in float32 (as torch's CPU batch_norm does for bf16): casting every
    activation to float32 and back cost the bf16 step most of its speed."""
    if mix and (len(weights) != 2 or len(over_batch) != 2):
        raise ValueError("normalize(mix=True) takes weights (gamma, rho) and two groupings")
    return _MixedNormalize.apply(x, bias, groups, tuple(over_batch), eps, mix, *weights)


# ---- the layers ---------------------------------------------------------------------------------
class _AffineNorm(nn.Module):
    """Per-channel gamma (ones) and beta (zeros), shared by every from-scratch layer."""

    def __init__(self, num_channels: int, eps: float = 1e-5):
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"


class BatchNorm2d(_AffineNorm):
    """Statistics over (N, H, W) per channel; running statistics as torch keeps them."""

    def __init__(self, num_channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(num_channels, eps)
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(num_channels))
        self.register_buffer("running_var", torch.ones(num_channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self._eval_scale(x, self.weight) + self.bias.view(1, -1, 1, 1)
        y, mean, var = normalize(x, (self.weight,), self.bias, self.num_channels, (True,), self.eps)
        self._update_running_stats(mean, var, x.numel() // x.shape[1])
        return y

    def _eval_scale(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """weight * (x - running_mean) / sqrt(running_var + eps), per channel."""
        shape = (1, -1, 1, 1)
        scale = torch.rsqrt(self.running_var + self.eps) * weight
        return (x - self.running_mean.view(shape)) * scale.view(shape)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        # torch normalises with the biased variance but stores the unbiased one.
        unbiased = var * (count / max(count - 1, 1))
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
        self.num_batches_tracked += 1


class InstanceNorm2d(_AffineNorm):
    """Statistics over (H, W) per sample and channel; no running statistics (as torch's
    default `track_running_stats=False`), so train and eval behave alike."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, (self.weight,), self.bias, self.num_channels, (False,), self.eps)[0]


class LayerNorm2d(_AffineNorm):
    """Statistics over (C, H, W) per sample; per-channel affine."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, (self.weight,), self.bias, 1, (False,), self.eps)[0]


class GroupNorm2d(_AffineNorm):
    """Channels split into `groups` groups; statistics over (C/G, H, W) per sample and group.
    groups == channels is InstanceNorm, groups == 1 is LayerNorm."""

    def __init__(self, num_channels: int, groups: int = 16, eps: float = 1e-5):
        super().__init__(num_channels, eps)
        if groups < 1 or num_channels % groups:
            raise ValueError(f"GroupNorm: {num_channels} channels do not split into {groups} groups")
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, (self.weight,), self.bias, self.groups, (False,), self.eps)[0]

    def extra_repr(self) -> str:
        return f"{self.num_channels}, groups={self.groups}, eps={self.eps}"


class BatchInstanceNorm2d(BatchNorm2d):
    """gamma * (rho * x_bn + (1 - rho) * x_in) + beta; rho per channel, starts at 1.

    The batch part keeps running statistics like BatchNorm2d (used in eval mode); the instance
    part always uses the sample's own statistics. Keep rho in [0, 1] with `clip_rho_`."""

    def __init__(self, num_channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(num_channels, eps, momentum)
        self.rho = nn.Parameter(torch.ones(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = self.num_channels
        if self.training:
            # Both parts in one scale-and-shift: gamma*rho*x_bn + gamma*(1-rho)*x_in + beta.
            y, mean, var = normalize(x, (self.weight, self.rho), self.bias, channels, (True, False), self.eps,
                                     mix=True)
            self._update_running_stats(mean, var, x.numel() // x.shape[1])
            return y
        batch_weight = self.weight * self.rho
        instance_weight = self.weight * (1 - self.rho)
        instance_part = normalize(x, (instance_weight,), self.bias, channels, (False,), self.eps)[0]
        return instance_part + self._eval_scale(x, batch_weight)

    def clip_rho_(self) -> None:
        """Clamp rho into [0, 1] in place."""
        with torch.no_grad():
            self.rho.clamp_(0.0, 1.0)


# ---- the registry and the optimizer helpers ------------------------------------------------------
def _identity(num_channels: int, **_: object) -> nn.Module:
    return nn.Identity()


def _group_norm(num_channels: int, groups: int = 16, **_: object) -> nn.Module:
    return GroupNorm2d(num_channels, groups=groups)


def _ignore_kw(cls: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Constructors take the same keywords (e.g. `groups`), ignoring the ones they do not use."""
    def build(num_channels: int, **_: object) -> nn.Module:
        return cls(num_channels)
    build.__name__ = getattr(cls, "__name__", "build")
    return build


NORMS: dict[str, Callable[..., nn.Module]] = {
    "nn": _identity,
    "bn": _ignore_kw(BatchNorm2d),
    "in": _ignore_kw(InstanceNorm2d),
    "bin": _ignore_kw(BatchInstanceNorm2d),
    "ln": _ignore_kw(LayerNorm2d),
    "gn": _group_norm,
    "torch_bn": _ignore_kw(nn.BatchNorm2d),
}


def clip_rho_(model: nn.Module) -> None:
    """Clamp every Batch-Instance Norm rho in `model` into [0, 1]; call after optimizer.step()."""
    for module in model.modules():
        if isinstance(module, BatchInstanceNorm2d):
            module.clip_rho_()


def param_groups(model: nn.Module, weight_decay: float,
                 decay_norm_bias: bool = True) -> list[dict[str, object]]:
    """Optimizer parameter groups: the weights with `weight_decay`, and every BIN rho in a group of
    its own without weight decay (decay would pull rho towards 0, i.e. towards InstanceNorm).
    With `decay_norm_bias=False` every other one-dimensional parameter (normalization weights and
    biases, convolution and classifier biases) joins rho's group: decaying a norm's gain only
    fights the normalization, and biases are not what overfits."""
    rho_ids = {id(m.rho) for m in model.modules() if isinstance(m, BatchInstanceNorm2d)}
    params: Iterable[nn.Parameter] = [p for p in model.parameters() if p.requires_grad]
    undecayed = [p for p in params if id(p) in rho_ids or (not decay_norm_bias and p.ndim <= 1)]
    undecayed_ids = {id(p) for p in undecayed}
    groups: list[dict[str, object]] = [{"params": [p for p in params if id(p) not in undecayed_ids],
                                        "weight_decay": weight_decay}]
    if undecayed:
        groups.append({"params": undecayed, "weight_decay": 0.0})
    return groups
