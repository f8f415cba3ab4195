"""Discriminator stabilizers: spectral norm, PacGAN packing, minibatch std and discrimination.

All of them act on nets built by any architecture: spectral_norm_ rewrites a module tree in
place; StabilizedDiscriminator wraps a base D (one that has `features`, `head`, `feature_dim`)
built for the packed input shape and appends minibatch statistics to its features.
nets/__init__.build_nets applies them from the model config; with every option off it builds
none of this (same modules, same random draws as without them).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from ganforge.nets.conditional import ConditionalBatchNorm
from ganforge.nets.layers import linear_head

_SPECTRAL = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
MBSTD_EPS = 1e-8  # added to the variance before the square root (Karras et al. 2018)


def spectral_norm_(module: nn.Module) -> nn.Module:
    """Spectrally normalize every linear, conv, transposed conv and embedding weight; returns it.

    Miyato et al. (2018): W / sigma(W), sigma estimated by one power iteration per forward call
    in train mode (the estimate is frozen in eval mode). Transposed convs hold their weight as
    (in, out, ...), so their output dimension is 1. The per-class gamma/beta tables of a
    ConditionalBatchNorm are left alone: they are scales, not a layer's weight matrix. Draws
    the power iteration's start vectors from the global torch RNG.
    """
    skip = {
        id(table) for layer in module.modules() if isinstance(layer, ConditionalBatchNorm)
        for table in (layer.gamma, layer.beta)
    }
    for layer in list(module.modules()):
        if id(layer) in skip:
            continue
        if isinstance(layer, _TRANSPOSED):
            parametrizations.spectral_norm(layer, n_power_iterations=1, dim=1)
        elif isinstance(layer, _SPECTRAL):
            parametrizations.spectral_norm(layer, n_power_iterations=1, dim=0)
    return module


def packed_shape(data_shape: tuple[int, ...], m: int) -> tuple[int, ...]:
    """D's input shape when m samples are packed: (C, H, W) -> (m*C, H, W), (D,) -> (m*D,)."""
    return (data_shape[0] * m, *data_shape[1:])


def pack_inputs(x: Tensor, m: int) -> Tensor:
    """PacGAN packing (Lin et al. 2018): (N, C, ...) -> (N/m, m*C, ...), consecutive samples.

    Pack j holds samples j*m ... j*m + m - 1 concatenated along dim 1, so D judges m samples
    jointly and a mode-collapsed G is easier to spot. m = 1 returns x unchanged.
    """
    if m == 1:
        return x
    if x.shape[0] % m:
        raise ValueError(
            f"PacGAN packing needs a batch that is a multiple of model.pack={m}; got a batch "
            f"of {x.shape[0]}. Use a batch size divisible by {m}."
        )
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018): (N, F) -> (N, F + 1).

    Lets D see a batch's diversity: a collapsed G yields batches with small spread. The batch
    is split into N / group groups with StyleGAN's layout: sample i belongs to group
    i % (N / group), i.e. members are strided, not consecutive. Per group, the biased std of
    each feature over its members (sqrt(var + 1e-8)) is averaged over features to one scalar,
    appended to each member. A group larger than N uses N (one group).
    """

    def __init__(self, group: int) -> None:
        super().__init__()
        if group < 1:
            raise ValueError(f"MinibatchStd group must be >= 1; got {group}.")
        self.group = group

    def statistic(self, f: Tensor) -> Tensor:
        """(N, F) features -> (N, 1): the mean std of each sample's group."""
        n = f.shape[0]
        group = min(self.group, n)
        if n % group:
            raise ValueError(
                f"Minibatch std with model.mbstd_group={self.group} needs a batch of D inputs "
                f"divisible by it; got {n}. Use a batch size (divided by model.pack) that is a "
                f"multiple of {self.group}, or change model.mbstd_group."
            )
        y = f.reshape(group, n // group, -1)  # y[g, k] is sample g * (n // group) + k
        var = (y - y.mean(0)).square().mean(0)  # (n // group, F), biased
        std = (var + MBSTD_EPS).sqrt().mean(1)  # (n // group,)
        return std.repeat(group).unsqueeze(1)  # sample i gets std[i % (n // group)]

    def forward(self, f: Tensor) -> Tensor:
        """(N, F) -> (N, F + 1): features with the group's std appended."""
        return torch.cat([f, self.statistic(f)], dim=1)

    def extra_repr(self) -> str:
        """The group size, for print(module)."""
        return f"group={self.group}"


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, sec. 3.2): (N, F) -> (N, F + kernels).

    Each sample learns how close it is to the rest of the batch: M = f @ T viewed as
    (N, B, C); c_b(i, j) = exp(-||M_i,b - M_j,b||_1); o_b(i) = sum over j != i of c_b(i, j).
    Near-identical samples (mode collapse) give large o, which D can learn to flag.
    T ~ N(0, 0.05), the scale of the authors' code (their weight norm and bias are left out).
    """

    def __init__(self, in_features: int, kernels: int, kernel_dim: int = 5) -> None:
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.empty(in_features, kernels * kernel_dim))
        with torch.no_grad():
            nn.init.normal_(self.T, 0.0, 0.05)

    def statistic(self, f: Tensor) -> Tensor:
        """(N, F) features -> (N, B): o_b for each sample and kernel."""
        m = (f @ self.T).view(f.shape[0], self.kernels, self.kernel_dim).transpose(0, 1)
        # L1 distances by broadcasting, not torch.cdist: cdist has no double backward, which
        # the input-gradient penalties (GP, R1, DRAGAN) need
        c = torch.exp(-(m.unsqueeze(2) - m.unsqueeze(1)).abs().sum(3))  # (B, N, N)
        others = 1.0 - torch.eye(f.shape[0], dtype=c.dtype, device=c.device)
        return (c * others).sum(2).transpose(0, 1)

    def forward(self, f: Tensor) -> Tensor:
        """(N, F) -> (N, F + B): features with o(f) appended."""
        return torch.cat([f, self.statistic(f)], dim=1)

    def extra_repr(self) -> str:
        """Sizes, for print(module)."""
        return f"in_features={self.T.shape[0]}, kernels={self.kernels}, " \
               f"kernel_dim={self.kernel_dim}"


class StabilizedDiscriminator(nn.Module):
    """A base D with PacGAN packing and minibatch features: D(x) = head(extras(f(pack(x)))).

    The base is built for packed_shape(data_shape, pack), so with pack = m it reads N/m
    packs and returns N/m scores (the adversarial losses are means, so they take it as is).
    Minibatch discrimination (o, B columns) and then minibatch std (1 column) are computed
    from the base features and appended. The base's own head is removed (it would be an
    unused parameter) and replaced by head = Linear(F + extra, 1), initialized like the base
    (init_std float: N(0, std) weights, zero bias; None: PyTorch's default).
    """

    def __init__(self, base: nn.Module, pack: int = 1, mbstd_group: int = 0,
                 minibatch_disc: int = 0) -> None:
        super().__init__()
        base_dim: int = base.feature_dim
        del base.head
        self.base, self.pack = base, pack
        self.init_std: float | None = getattr(base, "init_std", None)
        extras: list[nn.Module] = []
        if minibatch_disc > 0:
            extras.append(MinibatchDiscrimination(base_dim, minibatch_disc))
        if mbstd_group > 0:
            extras.append(MinibatchStd(mbstd_group))
        self.extras = nn.ModuleList(extras)
        self.feature_dim: int = base_dim + minibatch_disc + (1 if mbstd_group > 0 else 0)
        self.head = linear_head(self.feature_dim, 1, self.init_std)

    def features(self, x: Tensor) -> Tensor:
        """(N, *data_shape) -> (N / pack, feature_dim): base features plus minibatch columns."""
        f = self.base.features(pack_inputs(x, self.pack))
        if not self.extras:
            return f
        return torch.cat([f, *(extra.statistic(f) for extra in self.extras)], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, *data_shape) -> (N / pack,) raw scores (logits)."""
        return self.head(self.features(x)).squeeze(1)
