"""Fully connected G and D (Goodfellow et al. 2014 style) for vectors and flattened images.

Layers keep PyTorch's default initialization (Kaiming-uniform); the DCGAN N(0, 0.02) init is
for the convolutional nets.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ganforge.nets.layers import ScoredDiscriminator, add_noise, norm_1d, out_activation


def hidden_stack(width: int, hidden: list[int], norm: str) -> tuple[list[nn.Module], int]:
    """[Linear -> (norm) -> LeakyReLU(0.2)] per hidden width, no norm on the first layer.

    Returns the layers and the output width; G and D both build their hidden layers here.
    """
    layers: list[nn.Module] = []
    for i, size in enumerate(hidden):
        layers.append(nn.Linear(width, size))
        if i > 0:
            layers.append(norm_1d(norm, size))
        layers.append(nn.LeakyReLU(0.2))
        width = size
    return layers, width


class MLPGenerator(nn.Module):
    """z -> [Linear -> (BatchNorm1d) -> LeakyReLU(0.2)] per hidden width -> Linear -> out_act.

    The first hidden layer has no batchnorm (it would only rescale the Gaussian input); every
    later hidden layer has one when g_norm is "batch" (the textbook G), none when "none"
    (sharper samples on low-dimensional data such as the 2D mixtures). The output is reshaped
    to data_shape.
    """

    init_std: float | None = None  # PyTorch default init; layers added around it use defaults

    def __init__(
        self, z_dim: int, hidden: list[int], data_shape: tuple[int, ...], out_act: str,
        g_norm: str = "batch",
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.data_shape = tuple(data_shape)
        layers, width = hidden_stack(z_dim, hidden, g_norm)
        layers += [nn.Linear(width, math.prod(self.data_shape)), out_activation(out_act)]
        self.net = nn.Sequential(*layers)

        self.hidden_width = width  # what stem() gives (word attention joins there)

    def forward(self, z: Tensor) -> Tensor:
        """(N, z_dim) noise -> (N, *data_shape) samples."""
        return self.net(z).view(z.shape[0], *self.data_shape)

    def stem(self, z: Tensor) -> Tensor:
        """(N, z_dim) -> (N, hidden_width): every layer but the output layer."""
        return self.net[:-2](z)

    def tail(self, h: Tensor) -> Tensor:
        """(N, hidden_width) -> (N, *data_shape): the output layer; tail(stem(z)) = G(z)."""
        return self.net[-2:](h).view(h.shape[0], *self.data_shape)


class MLPDiscriminator(ScoredDiscriminator):
    """x (flattened) -> [Linear -> (d_norm) -> LeakyReLU(0.2)] per hidden width -> Linear -> 1.

    No normalization on the first hidden layer (Radford et al. 2016: none at D's input); d_norm
    ("batch", "layer" or "none") on every later one. input_noise / hidden_noise > 0 add
    Gaussian noise of that std to the input and after every hidden layer, in training mode only
    (Salimans et al. 2016's semi-supervised MNIST D: 0.3 and 0.5).
    """

    init_std: float | None = None  # PyTorch default init; layers added around it use defaults

    def __init__(
        self, data_shape: tuple[int, ...], hidden: list[int], d_norm: str,
        input_noise: float = 0.0, hidden_noise: float = 0.0,
    ) -> None:
        super().__init__()
        layers, width = hidden_stack(math.prod(data_shape), hidden, d_norm)
        layers = add_noise(layers, input_noise, hidden_noise)
        self.body = nn.Sequential(nn.Flatten(), *layers)
        self.head = nn.Linear(width, 1)


def build(
    z_dim: int, data_shape: tuple[int, ...], g_hidden: list[int], d_hidden: list[int],
    d_norm: str, out_act: str, g_norm: str = "batch",
) -> tuple[MLPGenerator, MLPDiscriminator]:
    """The MLP pair for any data shape (vectors or images)."""
    generator = MLPGenerator(z_dim, list(g_hidden), data_shape, out_act, g_norm)
    return generator, MLPDiscriminator(data_shape, list(d_hidden), d_norm)
