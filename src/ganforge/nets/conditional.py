"""Class-conditioning for any architecture: wrappers around an unconditional G and D.

Three ways to feed a class label y (int64 indices in [0, K)) to the pair:

- "concat" (Mirza & Osindero 2014): G reads [z, one_hot(y)]; D reads x with one_hot(y) attached
  as K extra channels (constant label maps for images, K extra entries for vectors).
- "projection" (Miyato & Koyama 2018): every BatchNorm of G becomes a class-conditional
  BatchNorm (per-class gamma and beta); D's score gains the projection term <embed(y), h>.
- "acgan" (Odena et al. 2017): G reads [z, one_hot(y)]; D is unconditional and gains an
  auxiliary classifier head, class_logits(h) -> (N, K).

The base nets are built by the architecture's own module (nets/__init__.build_nets decides the
base's noise size and input shape); nothing here knows an architecture by name. New layers
follow the base's `init_std`: a float means DCGAN init (weights ~ N(0, std), norm scales
~ N(1, std)); None or absent means PyTorch-style defaults (see each class).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.nets.layers import linear_head

CONDITIONS = ("concat", "projection", "acgan")
LABEL_INPUT_G = ("concat", "acgan")  # conditions whose G reads one_hot(y) next to z


def check_num_classes(num_classes: int, condition: str) -> None:
    """Raise a GanforgeError unless there are at least two classes to condition on."""
    if num_classes < 2:
        raise GanforgeError(
            f"Config key 'model.condition' is {condition!r}, which needs labelled data with at "
            f"least 2 classes; this data has num_classes={num_classes}. Use a labelled source "
            "(e.g. one subfolder per class), or train the unconditional task."
        )


def label_input_shape(data_shape: tuple[int, ...], num_classes: int) -> tuple[int, ...]:
    """Data shape with the one-hot label attached: (C, H, W) -> (C + K, H, W), (D,) -> (D + K,)."""
    return (data_shape[0] + num_classes, *data_shape[1:])


def attach_labels(x: Tensor, y: Tensor, num_classes: int) -> Tensor:
    """Concatenate one_hot(y) to x along dim 1, broadcast over any trailing (spatial) dims.

    (N, D) -> (N, D + K); (N, C, H, W) -> (N, C + K, H, W) with constant label maps.
    """
    onehot = F.one_hot(y, num_classes).to(x.dtype)
    onehot = onehot.view(*onehot.shape, *([1] * (x.dim() - 2)))
    return torch.cat([x, onehot.expand(-1, -1, *x.shape[2:])], dim=1)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine, then a per-sample affine: gamma(y) * x_hat + beta(y).

    With class labels (y int64 (N,)), gamma and beta are nn.Embedding(K, C) tables: gamma
    starts at 1 (init_std None) or ~ N(1, init_std) (DCGAN-style, which also makes the classes
    differ from the first step), beta at 0. With continuous codes (`codes=True`, y float
    (N, K)), they are linear maps of the code, gamma = 1 + W_g y and beta = W_b y (the affine
    text fusion of DF-GAN, Tao et al. 2022), W ~ N(0, init_std) or 0 when init_std is None.
    The labels are not a forward argument, so that an architecture need not thread y through
    its layers: `bind_labels` sets them for the duration of one forward call
    (ConditionalGenerator and TextGenerator do this). Called without bound labels it raises.
    """

    def __init__(self, bn: nn.BatchNorm1d | nn.BatchNorm2d, num_classes: int,
                 init_std: float | None = None, codes: bool = False) -> None:
        super().__init__()
        self.bn = type(bn)(bn.num_features, bn.eps, bn.momentum, affine=False,
                           track_running_stats=bn.track_running_stats)
        table = nn.Linear if codes else nn.Embedding
        self.gamma: nn.Module = table(num_classes, bn.num_features)
        self.beta: nn.Module = table(num_classes, bn.num_features)
        with torch.no_grad():
            if codes:
                for layer, bias in ((self.gamma, 1.0), (self.beta, 0.0)):
                    if init_std is None:
                        nn.init.zeros_(layer.weight)
                    else:
                        nn.init.normal_(layer.weight, 0.0, init_std)
                    nn.init.constant_(layer.bias, bias)
            elif init_std is None:
                nn.init.ones_(self.gamma.weight)
                nn.init.zeros_(self.beta.weight)
            else:
                nn.init.normal_(self.gamma.weight, 1.0, init_std)
                nn.init.zeros_(self.beta.weight)
        self.labels: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, ...) -> normalized and scaled per sample by its label's gamma and beta."""
        if self.labels is None:
            raise RuntimeError(
                "ConditionalBatchNorm has no labels bound: call the network inside "
                "bind_labels(net, y), as ConditionalGenerator.forward does."
            )
        shape = (x.shape[0], x.shape[1], *([1] * (x.dim() - 2)))
        gamma = self.gamma(self.labels).view(shape)
        return self.bn(x) * gamma + self.beta(self.labels).view(shape)


@contextmanager
def bind_labels(module: nn.Module, y: Tensor) -> Iterator[None]:
    """Bind labels y to every ConditionalBatchNorm in module for the block; always unbound after."""
    layers = [m for m in module.modules() if isinstance(m, ConditionalBatchNorm)]
    for layer in layers:
        layer.labels = y
    try:
        yield
    finally:
        for layer in layers:
            layer.labels = None


def condition_batchnorm_(module: nn.Module, num_classes: int,
                         init_std: float | None = None, codes: bool = False) -> int:
    """Replace every BatchNorm1d/2d inside module by a ConditionalBatchNorm; returns how many.

    num_classes is K: the number of classes, or the size of the codes when codes is True.
    """
    count = 0
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, name, ConditionalBatchNorm(child, num_classes, init_std, codes))
            count += 1
        else:
            count += condition_batchnorm_(child, num_classes, init_std, codes)
    return count


class Conditioned(nn.Module):
    """A base net wrapped to take class labels: what G and D wrappers share."""

    def __init__(self, base: nn.Module, num_classes: int, condition: str) -> None:
        super().__init__()
        check_num_classes(num_classes, condition)
        self.base = base
        self.num_classes = num_classes
        self.condition = condition


class ConditionalGenerator(Conditioned):
    """G(z, y): an unconditional generator made class-conditional.

    For "concat" and "acgan" the base was built with z_dim + K inputs and reads
    [z, one_hot(y)]. For "projection" the base was built normally; its BatchNorm layers are
    replaced here by ConditionalBatchNorm, and forward binds y to them for the one call.
    `z_dim` is the noise size (without the label).
    """

    def __init__(self, base: nn.Module, num_classes: int, condition: str,
                 init_std: float | None = None) -> None:
        super().__init__(base, num_classes, condition)
        self.label_input = condition in LABEL_INPUT_G
        self.z_dim = base.z_dim - num_classes if self.label_input else base.z_dim
        if not self.label_input and condition_batchnorm_(base, num_classes, init_std) == 0:
            raise GanforgeError(
                f"Config key 'model.condition' is {condition!r}, which conditions G through "
                f"its BatchNorm layers (class-conditional BatchNorm, Miyato & Koyama 2018), but "
                f"this generator ({type(base).__name__}) has none. Use model.condition=concat "
                "or acgan, or a G with BatchNorm (dcgan, resnet, or mlp with "
                "model.g_norm=batch)."
            )

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        """(N, z_dim) noise and (N,) int64 class indices -> (N, *data_shape) samples."""
        if self.label_input:
            return self.base(attach_labels(z, y, self.num_classes))
        with bind_labels(self.base, y):
            return self.base(z)


class ConditionalDiscriminator(Conditioned):
    """D(x, y) = score(features(x, y), y): an unconditional discriminator made class-conditional.

    - "concat": the base reads x with one_hot(y) attached as K extra channels (built for
      label_input_shape); score = head(h).
    - "projection": score = head(h) + <embed(y), h> with embed = nn.Embedding(K, F) (Miyato &
      Koyama 2018, eq. 3), init ~ N(0, init_std), or Xavier-uniform when init_std is None (as
      the authors' code).
    - "acgan": features and score ignore y; class_logits(h) = Linear(F, K)(h), the auxiliary
      classifier (DCGAN init, or PyTorch's Linear default when init_std is None).
    """

    def __init__(self, base: nn.Module, num_classes: int, condition: str,
                 init_std: float | None = None) -> None:
        super().__init__(base, num_classes, condition)
        self.feature_dim: int = base.head.in_features
        self.has_classifier = condition == "acgan"
        self.embed: nn.Embedding | None = None
        self.classifier: nn.Linear | None = None
        if condition == "projection":
            self.embed = nn.Embedding(num_classes, self.feature_dim)
            with torch.no_grad():
                if init_std is None:
                    nn.init.xavier_uniform_(self.embed.weight)
                else:
                    nn.init.normal_(self.embed.weight, 0.0, init_std)
        elif self.has_classifier:
            self.classifier = linear_head(self.feature_dim, num_classes, init_std)

    def features(self, x: Tensor, y: Tensor) -> Tensor:
        """(N, *data_shape), (N,) labels -> (N, feature_dim); y is read only by "concat"."""
        if self.condition == "concat":
            x = attach_labels(x, y, self.num_classes)
        return self.base.features(x)

    def score(self, h: Tensor, y: Tensor) -> Tensor:
        """(N, F) features, (N,) labels -> (N,) raw scores (logits)."""
        out = self.base.head(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(1)
        return out

    def class_logits(self, h: Tensor) -> Tensor:
        """(N, F) features -> (N, K) auxiliary-classifier logits; only when has_classifier."""
        if self.classifier is None:
            raise RuntimeError(
                f"class_logits needs the auxiliary classifier of condition 'acgan'; this "
                f"discriminator is {self.condition!r} (check has_classifier first)."
            )
        return self.classifier(h)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """(N, *data_shape) data and (N,) int64 class indices -> (N,) raw scores."""
        return self.score(self.features(x, y), y)
