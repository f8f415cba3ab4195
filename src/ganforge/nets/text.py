"""Text-conditioning for the mlp and dcgan nets: G(z, text) and a matching-aware D(x, text).

- Conditioning augmentation (StackGAN, Zhang et al. 2017, sec. 3.1): the sentence code s gives
  the mean and log-variance of a Gaussian, and G reads c = mu + sigma * eps rather than s, so
  that nearby captions give overlapping codes. eps is part of G's input z (its last c_dim
  columns), so the noise that drives G stays one seeded tensor; the KL term that keeps the
  Gaussian near N(0, I) is penalties.ca_kl.
- Affine text fusion (fusion="affine"; DF-GAN, Tao et al. 2022, sec. 3.3): besides reading c
  at its input, every BatchNorm of G's base takes its scale and shift from c (a linear map
  of c per layer: the class-conditional BatchNorm of nets/conditional.py fed a continuous
  code), so the caption acts at every level rather than only through the first layer.
- Word-level attention (AttnGAN, Xu et al. 2018, sec. 3.1): every position of G's last hidden
  features attends over the caption's word features, and the context joins the features
  (concatenation, 1x1 conv, norm, ReLU) before the output layer. Needs a G with `stem` and
  `tail` (mlp, dcgan) and an encoder with word features (the trainable one).
- D: base features h(x); score = head(h) + <W s, h>, the projection discriminator (Miyato &
  Koyama 2018) with a linear map of the continuous sentence code in place of a class
  embedding. D holds the trainable text encoder, so D's loss (with mismatched captions: the
  matching-aware D of GAN-CLS, Reed et al. 2016) is what trains it; G reads its codes detached.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.nets.conditional import bind_labels, condition_batchnorm_
from ganforge.nets.text_encoder import EncodedText, TextEncoder

FUSIONS = ("input", "affine")  # how G reads the text code (model.text_fusion)


class ConditioningAugmentation(nn.Module):
    """s (N, text_dim) -> (mu, logvar), each (N, c_dim): the Gaussian G's text code is drawn from."""

    def __init__(self, text_dim: int, c_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(text_dim, 2 * c_dim)

    def forward(self, sentence: Tensor) -> tuple[Tensor, Tensor]:
        """The Gaussian's mean and log-variance for each caption."""
        mu, logvar = self.fc(sentence).chunk(2, dim=1)
        return mu, logvar


class WordAttention(nn.Module):
    """Each position of h (N, C, *spatial) attends over words (N, D, L): softmax over words."""

    def __init__(self, channels: int, word_dim: int) -> None:
        super().__init__()
        self.project = nn.Conv1d(word_dim, channels, 1, bias=False)  # words into G's space
        self.scale = 1.0 / math.sqrt(channels)

    def weights(self, h: Tensor, words: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(attention (N, Q, L) summing to 1 over real words, projected words (N, C, L))."""
        keys = self.project(words)
        query = h.reshape(*h.shape[:2], -1).transpose(1, 2)  # (N, Q, C); Q = 1 for vectors
        scores = torch.bmm(query, keys) * self.scale
        mask = mask.clone()
        mask[:, 0] |= ~mask.any(1)  # an all-padding caption attends to its first slot
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        return scores.softmax(dim=-1), keys

    def forward(self, h: Tensor, words: Tensor, mask: Tensor) -> Tensor:
        """The word context at every position of h, shaped like h."""
        attention, keys = self.weights(h, words, mask)
        context = torch.bmm(keys, attention.transpose(1, 2))  # (N, C, Q)
        return context.view_as(h)


class AttentionJoin(nn.Module):
    """h, context -> ReLU(norm(1x1 map of [h, context])): G's features with the words joined."""

    def __init__(self, channels: int, spatial: bool) -> None:
        super().__init__()
        if spatial:
            self.mix = nn.Conv2d(2 * channels, channels, 1, bias=False)
            self.norm: nn.Module = nn.BatchNorm2d(channels)
        else:
            self.mix = nn.Linear(2 * channels, channels, bias=False)
            self.norm = nn.BatchNorm1d(channels)
        self.act = nn.ReLU()

    def forward(self, h: Tensor, context: Tensor) -> Tensor:
        """Joined features, shaped like h."""
        return self.act(self.norm(self.mix(torch.cat([h, context], dim=1))))


class TextGenerator(nn.Module):
    """G(z, sentence[, words, mask]) -> images; z = [image noise, CA's eps] (z_dim columns)."""

    def __init__(
        self, base: nn.Module, noise_dim: int, text_dim: int, c_dim: int,
        word_dim: int | None = None, fusion: str = "input",
    ) -> None:
        super().__init__()
        self.base, self.noise_dim, self.c_dim = base, noise_dim, c_dim
        self.z_dim = noise_dim + c_dim  # what samplers draw: noise, then CA's eps
        self.ca = ConditioningAugmentation(text_dim, c_dim)
        self.affine = fusion == "affine"
        init_std = getattr(base, "init_std", None)
        if self.affine and condition_batchnorm_(base, c_dim, init_std, codes=True) == 0:
            raise GanforgeError(
                f"model.text_fusion=affine takes BatchNorm's scale and shift from the text "
                f"code, but this generator ({type(base).__name__}) has no BatchNorm. Use "
                "model.text_fusion=input, or a G with BatchNorm (dcgan, or mlp with "
                "model.g_norm=batch)."
            )
        self.attention: WordAttention | None = None
        if word_dim is not None:
            width = base.hidden_width
            self.attention = WordAttention(width, word_dim)
            self.join = AttentionJoin(width, spatial=not hasattr(base, "data_shape"))

    def code(self, z: Tensor, sentence: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(G's base input [noise, c], mu, logvar) with c = mu + exp(logvar / 2) * eps."""
        noise, eps = z.split([self.noise_dim, self.c_dim], dim=1)
        mu, logvar = self.ca(sentence)
        c = mu + torch.exp(0.5 * logvar) * eps
        return torch.cat([noise, c], dim=1), mu, logvar

    def forward(
        self, z: Tensor, sentence: Tensor, words: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> Tensor:
        """(N, z_dim) noise and the caption codes -> (N, *data_shape) samples."""
        base_input, _, _ = self.code(z, sentence)
        if not self.affine:
            return self.generate(base_input, words, mask)
        with bind_labels(self.base, base_input[:, self.noise_dim:]):  # c modulates every BN
            return self.generate(base_input, words, mask)

    def generate(self, base_input: Tensor, words: Tensor | None, mask: Tensor | None) -> Tensor:
        """The base G on [noise, c], attending over the words between stem and tail if on."""
        if self.attention is None:
            return self.base(base_input)
        if words is None or mask is None:
            raise ValueError("this G attends over words: pass the caption's words and mask")
        h = self.base.stem(base_input)
        return self.base.tail(self.join(h, self.attention(h, words, mask)))


class TextDiscriminator(nn.Module):
    """D(x, sentence) = head(h) + <W sentence, h>, h = base features of x; holds the encoder."""

    def __init__(self, base: nn.Module, text_dim: int, encoder: TextEncoder | None) -> None:
        super().__init__()
        self.base = base
        self.encoder = encoder
        self.feature_dim: int = base.head.in_features
        self.text_proj = nn.Linear(text_dim, self.feature_dim, bias=False)
        init_std = getattr(base, "init_std", None)
        if init_std is not None:
            nn.init.normal_(self.text_proj.weight, 0.0, init_std)

    def encode(self, tokens: Tensor) -> EncodedText:
        """Token ids (N, L) -> the trainable encoder's codes (trained by D's loss)."""
        if self.encoder is None:
            raise RuntimeError("this D has no text encoder (the pretrained one lives outside)")
        return self.encoder(tokens)

    def features(self, x: Tensor, sentence: Tensor, *words_and_mask: Tensor) -> Tensor:
        """(N, F) features of x; the caption enters only through the score."""
        return self.base.features(x)

    def score(self, h: Tensor, sentence: Tensor) -> Tensor:
        """(N,) raw scores: unconditional head plus the projection of the sentence code."""
        return self.base.head(h).squeeze(1) + (self.text_proj(sentence) * h).sum(1)

    def forward(self, x: Tensor, sentence: Tensor, *words_and_mask: Tensor) -> Tensor:
        """(N, *data_shape) images and (N, text_dim) codes -> (N,) raw scores (logits)."""
        return self.score(self.base.features(x), sentence)
