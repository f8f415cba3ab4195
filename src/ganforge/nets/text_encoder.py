"""A trainable text encoder: word embedding -> 1D convolutions -> pooled sentence code.

The seeds' text encoder ("embedding + 1D convolution"): token ids (N, L) with 0 as padding
become word vectors, two same-length 1D convolutions (kernel 3, ReLU) mix neighbouring words,
and the sentence code is a linear map of the masked mean of the word features. The word
features stay available for word-level attention (AttnGAN, Xu et al. 2018) as (N, D, L) with
a mask of real words. Unknown words (UNK) are masked like padding: every training caption's
words are in the vocabulary, so UNK's embedding is never trained, and a prompt with an unknown
word should read as the same prompt without it, not as noise. Nothing here knows a
vocabulary's words, only its size.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

PAD, UNK = 0, 1  # the padding and unknown-word ids (text/vocab.py)


@dataclass
class EncodedText:
    """One batch of captions encoded: what G, D and the matcher read."""

    sentence: Tensor  # (N, E) one code per caption
    words: Tensor | None = None  # (N, D, L) word features, None for sentence-only encoders
    mask: Tensor | None = None  # (N, L) True at real words

    def detach(self) -> EncodedText:
        """The same codes cut from the encoder's graph (what G reads)."""
        words = None if self.words is None else self.words.detach()
        return EncodedText(self.sentence.detach(), words, self.mask)

    def index(self, rows: Tensor) -> EncodedText:
        """The captions at `rows` (e.g. a shuffled batch for mismatched pairs)."""
        words = None if self.words is None else self.words[rows]
        mask = None if self.mask is None else self.mask[rows]
        return EncodedText(self.sentence[rows], words, mask)


class TextEncoder(nn.Module):
    """(N, L) int64 token ids -> EncodedText(sentence (N, out_dim), words (N, out_dim, L), mask)."""

    def __init__(
        self, vocab_size: int, embed_dim: int = 128, out_dim: int = 128, kernel: int = 3,
    ) -> None:
        super().__init__()
        self.vocab_size, self.out_dim = vocab_size, out_dim
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        pad = kernel // 2
        self.convs = nn.Sequential(
            nn.Conv1d(embed_dim, out_dim, kernel, padding=pad), nn.ReLU(),
            nn.Conv1d(out_dim, out_dim, kernel, padding=pad), nn.ReLU(),
        )
        self.sentence = nn.Linear(out_dim, out_dim)

    def forward(self, tokens: Tensor) -> EncodedText:
        """Token ids (N, L), 0-padded -> sentence codes, word features and the word mask."""
        mask = tokens > UNK  # padding and unknown words carry nothing
        words = self.convs(self.embed(tokens).transpose(1, 2))  # (N, D, L)
        words = words * mask.unsqueeze(1)  # padding positions carry nothing
        count = mask.sum(1, keepdim=True).clamp(min=1)
        pooled = words.sum(2) / count  # masked mean over real words
        return EncodedText(self.sentence(pooled), words, mask)
