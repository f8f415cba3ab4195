"""The image-text matcher behind R-precision: an image CNN and a caption encoder, one code space.

AttnGAN's DAMSM (Xu et al. 2018) scores generated images against captions with an image
encoder and a text encoder trained on real pairs; this is its small sentence-level form. Both
halves end in L2-normalized codes of size `dim`, so a dot product is the cosine similarity.
Training (symmetric InfoNCE) lives in ganforge.training.matcher; nothing here knows data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.nets.text_encoder import TextEncoder

MIN_SIZE, MAX_SIZE = 16, 128
FINAL_SIZE = 4  # downsample while the feature map is larger than this
INIT_TEMPERATURE = 0.1
MAX_LOGIT_SCALE = 100.0  # CLIP's clamp: the learned 1/temperature never passes this


@dataclass(frozen=True)
class MatcherArch:
    """Everything that fixes the matcher's shapes (stored in its JSON sidecar)."""

    channels: int
    resolution: int
    vocab_size: int
    dim: int = 64
    width: int = 16  # the image CNN's first layer width; doubles per downsampling, up to 8x
    embed_dim: int = 32  # word embedding size of the text encoder
    text_width: int = 64  # the text encoder's sentence code size, before the projection

    def to_dict(self) -> dict[str, int]:
        """Plain values for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MatcherArch:
        """Inverse of to_dict."""
        return cls(**{key: int(values[key]) for key in cls.__dataclass_fields__})


def image_cnn(channels: int, resolution: int, width: int, dim: int) -> nn.Sequential:
    """C x R x R in [-1, 1] -> (N, dim): stride-2 convs to ~4x4, global average pool, Linear."""
    if not MIN_SIZE <= resolution <= MAX_SIZE:
        raise GanforgeError(
            f"The matcher's image encoder takes {MIN_SIZE} to {MAX_SIZE} pixel images; got "
            f"{resolution}. Set data.resolution to a size in that range."
        )
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(0.2)]
    size, ch = resolution, width
    while size > FINAL_SIZE:
        out = min(2 * ch, 8 * width)
        layers += [nn.Conv2d(ch, out, 3, 2, 1), nn.LeakyReLU(0.2)]
        size, ch = (size + 1) // 2, out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, dim)]
    return nn.Sequential(*layers)


class Matcher(nn.Module):
    """Images and token ids -> unit-length codes in one space, plus a learned temperature."""

    def __init__(self, arch: MatcherArch) -> None:
        """Build the image CNN, the text encoder with its projection, and the logit scale."""
        super().__init__()
        self.arch = arch
        self.image = image_cnn(arch.channels, arch.resolution, arch.width, arch.dim)
        self.text = TextEncoder(arch.vocab_size, arch.embed_dim, arch.text_width)
        self.text_proj = nn.Linear(arch.text_width, arch.dim)
        # log(1 / temperature), learned as in CLIP; clamped in logit_scale()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / INIT_TEMPERATURE)))

    def image_codes(self, x: Tensor) -> Tensor:
        """Float images (N, C, R, R) in [-1, 1] -> (N, dim) unit-length codes."""
        expected = (self.arch.channels, self.arch.resolution, self.arch.resolution)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise GanforgeError(
                f"This matcher reads images of shape (N, {', '.join(map(str, expected))}); got "
                f"{tuple(x.shape)}. Match the channels and resolution it was trained on."
            )
        return F.normalize(self.image(x), dim=1)

    def text_codes(self, tokens: Tensor) -> Tensor:
        """Token ids (N, L), 0-padded -> (N, dim) unit-length codes."""
        return F.normalize(self.text_proj(self.text(tokens).sentence), dim=1)

    def logit_scale(self) -> Tensor:
        """1 / temperature, at most MAX_LOGIT_SCALE."""
        return self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE)
