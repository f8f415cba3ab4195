"""Text for text-to-image GANs: the tokenizer and vocabulary (text/vocab.py)."""

from ganforge.text.vocab import PAD, SPECIALS, UNK, Vocabulary, words

__all__ = ["PAD", "SPECIALS", "UNK", "Vocabulary", "words"]
