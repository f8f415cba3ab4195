"""The small CNN behind the `classifier` feature extractor: architecture only, no training.

Three conv blocks (3x3 conv, BatchNorm, ReLU, 2x2 max-pool) halve the image three times; a
hidden fully connected layer gives the penultimate features, a linear layer the class logits.
At 28x28 input with the default widths it costs about 8 MMAC per image, so a full epoch of
Fashion-MNIST takes about a minute on a laptop CPU.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass
class ClassifierArch:
    """Everything that fixes the network's shapes; stored in the classifier file."""

    in_channels: int
    num_classes: int
    input_size: int = 28
    widths: list[int] = field(default_factory=lambda: [32, 64, 128])
    hidden: int = 128
    dropout: float = 0.3

    def to_dict(self) -> dict:
        """Plain dict for the file's JSON metadata."""
        return asdict(self)

    @property
    def final_size(self) -> int:
        """Spatial size after the conv blocks (each max-pool floors size / 2)."""
        size = self.input_size
        for _ in self.widths:
            size //= 2
        return size


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 conv (no bias: BatchNorm follows), BatchNorm, ReLU, 2x2 max-pool."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ClassifierNet(nn.Module):
    """conv blocks -> flatten -> dropout -> fc hidden + ReLU (features) -> dropout -> logits."""

    def __init__(self, arch: ClassifierArch) -> None:
        """Build the layers that `arch` describes."""
        super().__init__()
        if arch.final_size < 1:
            raise ValueError(f"input_size {arch.input_size} is too small for {arch.widths}")
        self.arch = arch
        widths = [arch.in_channels, *arch.widths]
        self.convs = nn.Sequential(*(conv_block(a, b) for a, b in itertools.pairwise(widths)))
        flat = widths[-1] * arch.final_size**2
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(arch.dropout),
            nn.Linear(flat, arch.hidden),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Dropout(arch.dropout), nn.Linear(arch.hidden, arch.num_classes)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized float (N, C, S, S) -> (penultimate features (N, hidden), logits (N, K))."""
        features = self.fc(self.convs(x))
        return features, self.head(features)
