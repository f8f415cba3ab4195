"""DCGAN (Radford et al. 2016), one implementation for every supported resolution.

Resolution R is 28 (base 7x7, two x2 upsamplings) or a power of two from 16 to 256 (base 4x4,
log2(R) - 2 upsamplings). Feature maps run from the base to R/2, channels doubling at each
level down from `width` at R/2 and capped at 8 * width; the last layer maps R/2 to the image.
At R = 64, width = 64 the layer shapes are those of the DCGAN paper and pytorch/examples, with
three differences, all in layers without BatchNorm after them: G's last transposed conv, D's
first conv and D's score layer have biases (pytorch/examples uses bias=False everywhere), and
D's score is a Linear over the base-level features (equal to the paper's base x base conv) that
outputs raw logits (the losses apply the sigmoid). Convolutions followed by a norm have no bias.
"""

from __future__ import annotations

from itertools import pairwise

from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.nets.init import dcgan_init_
from ganforge.nets.layers import ScoredDiscriminator, add_noise, norm_2d, out_activation

RESOLUTIONS = (16, 28, 32, 64, 128, 256)
INIT_STD = 0.02  # weights ~ N(0, 0.02), norm scales ~ N(1, 0.02) (Radford et al. 2016)


def plan(resolution: int, name: str = "DCGAN") -> tuple[int, int]:
    """(base size, number of x2 upsamplings) that produce an image of `resolution`.

    `name` is the architecture named in the error (ResNet shares this plan).
    """
    if resolution == 28:
        return 7, 2
    if resolution in RESOLUTIONS:
        return 4, resolution.bit_length() - 3
    raise GanforgeError(
        f"{name} cannot make {resolution}x{resolution} images; valid sizes: "
        f"{', '.join(map(str, RESOLUTIONS))}. Set data.resolution to one of them "
        "(images are resized on load)."
    )


def level_channels(width: int, levels: int) -> list[int]:
    """Channels of the feature maps from the base level up to R/2 (width at R/2, capped 8x)."""
    return [min(width * 2 ** (levels - 1 - i), 8 * width) for i in range(levels)]


def image_shape(data_shape: tuple[int, ...], name: str = "DCGAN") -> tuple[int, int]:
    """(channels, resolution) of a square image data shape, or a GanforgeError naming `name`."""
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise GanforgeError(
            f"{name} needs square images of shape (C, R, R); got data shape {tuple(data_shape)}. "
            f"Valid sizes R: {', '.join(map(str, RESOLUTIONS))}; set data.resolution, or use "
            "model.arch=mlp for vector data."
        )
    plan(data_shape[1], name)
    return data_shape[0], data_shape[1]


def _up(c_in: int, c_out: int) -> list[nn.Module]:
    """One x2 generator level: ConvTranspose2d(4, 2, 1) -> BatchNorm2d -> ReLU."""
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


def _down(c_in: int, c_out: int, norm: str) -> list[nn.Module]:
    """One /2 discriminator level: Conv2d(4, 2, 1) -> norm -> LeakyReLU(0.2)."""
    conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none")
    return [conv, norm_2d(norm, c_out), nn.LeakyReLU(0.2)]


class DCGANGenerator(nn.Module):
    """z -> ConvTranspose to base x base -> x2 levels (BN, ReLU) -> ConvTranspose to image."""

    init_std: float = INIT_STD  # DCGAN init; layers added around this net follow it

    def __init__(self, z_dim: int, channels: int, resolution: int, width: int, out_act: str):
        super().__init__()
        self.z_dim = z_dim
        base, ups = plan(resolution)
        chs = level_channels(width, ups)
        layers = [nn.ConvTranspose2d(z_dim, chs[0], base, 1, 0, bias=False)]
        layers += [nn.BatchNorm2d(chs[0]), nn.ReLU()]
        for c_in, c_out in pairwise(chs):
            layers += _up(c_in, c_out)
        layers += [nn.ConvTranspose2d(chs[-1], channels, 4, 2, 1), out_activation(out_act)]
        self.net = nn.Sequential(*layers)
        dcgan_init_(self, self.init_std)

        self.hidden_width = chs[-1]  # channels of what stem() gives (attention joins there)

    def forward(self, z: Tensor) -> Tensor:
        """(N, z_dim) noise -> (N, C, R, R) images."""
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))

    def stem(self, z: Tensor) -> Tensor:
        """(N, z_dim) -> (N, hidden_width, R/2, R/2): every layer but the last up-convolution."""
        return self.net[:-2](z.view(z.shape[0], self.z_dim, 1, 1))

    def tail(self, h: Tensor) -> Tensor:
        """(N, hidden_width, R/2, R/2) -> (N, C, R, R); tail(stem(z)) = G(z)."""
        return self.net[-2:](h)


class DCGANDiscriminator(ScoredDiscriminator):
    """Image -> /2 conv levels (no norm on the first) down to base x base -> linear score.

    input_noise / hidden_noise > 0 add Gaussian noise of that std to the image and after every
    level, in training mode only (the semi-supervised D's regularizer, as in the MLP D).
    """

    init_std: float = INIT_STD  # DCGAN init; layers added around this net follow it

    def __init__(
        self, channels: int, resolution: int, width: int, d_norm: str,
        input_noise: float = 0.0, hidden_noise: float = 0.0,
    ):
        super().__init__()
        base, downs = plan(resolution)
        chs = level_channels(width, downs)[::-1]  # R/2 first, base last
        layers = [nn.Conv2d(channels, chs[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for c_in, c_out in pairwise(chs):
            layers += _down(c_in, c_out, d_norm)
        layers = add_noise(layers, input_noise, hidden_noise)
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(chs[-1] * base * base, 1)  # = the paper's base x base conv to 1
        dcgan_init_(self, self.init_std)


def build(
    z_dim: int, data_shape: tuple[int, ...], g_width: int, d_width: int, d_norm: str,
    out_act: str,
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The DCGAN pair for square images of a supported size."""
    channels, resolution = image_shape(data_shape)
    generator = DCGANGenerator(z_dim, channels, resolution, g_width, out_act)
    return generator, DCGANDiscriminator(channels, resolution, d_width, d_norm)
