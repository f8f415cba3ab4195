"""Words and their ids: the tokenizer and the vocabulary a trainable text encoder reads.

Tokenizing (`words`): lowercase the text, then take the runs of letters, digits, apostrophes
and hyphens; hyphens and apostrophes at a word's ends are dropped, inside a word they stay
("A T-shirt, dark!" -> ["a", "t-shirt", "dark"]; "men's" stays one word). Everything else
(spaces, punctuation, underscores) separates words.

Ids: 0 is padding (PAD), 1 an unknown word (UNK); the caption words follow, the most frequent
first (ties alphabetically), so one set of captions always gives the same vocabulary. The
word list is all a checkpoint needs to rebuild it (`to_meta` / `from_meta`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from ganforge.errors import GanforgeError

PAD = 0
UNK = 1
SPECIALS = ("<pad>", "<unk>")
_WORD = re.compile(r"(?:[^\W_]|['-])+")  # letters or digits (any script), ' and -


def words(text: str) -> list[str]:
    """The words of a text: lowercase, runs of letters/digits/'/-, ends stripped of ' and -."""
    found = (match.strip("'-") for match in _WORD.findall(text.lower()))
    return [word for word in found if word]


def check_max_words(max_words: int) -> None:
    """Refuse a caption length below one word (data.max_words)."""
    if max_words < 1:
        raise GanforgeError(
            f"data.max_words is {max_words}; a caption needs room for at least one word. "
            "Set data.max_words to 1 or more (default 24)."
        )


class Vocabulary:
    """The words a text encoder knows; a word's id is its index in `words`."""

    def __init__(self, words: Sequence[str]) -> None:
        """A vocabulary over `words`, which must start with SPECIALS (see from_meta)."""
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, captions: Iterable[str]) -> Vocabulary:
        """Every word of the captions, most frequent first, ties in alphabetical order."""
        counts: Counter[str] = Counter()
        for caption, repeats in Counter(captions).items():  # tokenize each distinct text once
            for word in words(caption):
                counts[word] += repeats
        ranked = sorted(counts, key=lambda word: (-counts[word], word))
        return cls(list(SPECIALS) + ranked)

    def __len__(self) -> int:
        """The number of ids, the specials included."""
        return len(self.words)

    def __eq__(self, other: object) -> bool:
        """Equal when both hold the same words in the same order."""
        return isinstance(other, Vocabulary) and self.words == other.words

    def __repr__(self) -> str:
        """Short form: the size and the first few words."""
        return f"Vocabulary({len(self)} words: {self.words[2:8]}...)"

    def encode(self, text: str, max_words: int) -> tuple[list[int], list[str], bool]:
        """(ids of the first max_words words, the distinct unknown words among them in
        first-seen order, whether words were cut); unknown words get UNK."""
        check_max_words(max_words)
        found = words(text)
        kept = found[:max_words]
        ids = [self.index.get(word, UNK) for word in kept]
        unknown = [word for word, i in zip(kept, ids) if i == UNK]
        return ids, list(dict.fromkeys(unknown)), len(found) > max_words

    def encode_batch(
        self, texts: Sequence[str], max_words: int
    ) -> tuple[torch.Tensor, list[str], int]:
        """(ids (N, max_words) int64 padded with PAD, the distinct unknown words in first-seen
        order, how many texts were cut to max_words)."""
        check_max_words(max_words)
        rows, unknown, cut = [], {}, 0
        done: dict[str, tuple[list[int], list[str], bool]] = {}  # each distinct text once
        for text in texts:
            if text not in done:
                done[text] = self.encode(text, max_words)
            encoded, missing, was_cut = done[text]
            rows.append(encoded + [PAD] * (max_words - len(encoded)))
            unknown.update(dict.fromkeys(missing))
            cut += was_cut
        ids = torch.tensor(rows, dtype=torch.int64).reshape(len(texts), max_words)
        return ids, list(unknown), cut

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """The words of ids joined by one space: PAD skipped, UNK shown as '<unk>'."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        out = []
        for i in values:
            if not 0 <= i < len(self.words):
                raise ValueError(f"token id {i} is outside this vocabulary of {len(self)} ids")
            if i != PAD:
                out.append(self.words[i])
        return " ".join(out)

    def to_meta(self) -> list[str]:
        """The word list, for a checkpoint's JSON metadata."""
        return list(self.words)

    @classmethod
    def from_meta(cls, words: Sequence[str]) -> Vocabulary:
        """Inverse of to_meta; refuses lists that are not a vocabulary's word list."""
        words = list(words)
        if not all(isinstance(word, str) for word in words):
            raise GanforgeError(
                "The vocabulary in this metadata holds a non-string entry: it is damaged. Use "
                "the metadata.json that came with the checkpoint, or retrain to write a new one."
            )
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise GanforgeError(
                f"The vocabulary in this metadata starts with {words[:2]}, not {list(SPECIALS)}"
                ": it was not written by ganforge or is damaged. Use the metadata.json that "
                "came with the checkpoint, or retrain to write a new one."
            )
        repeated = [word for word, n in Counter(words).items() if n > 1]
        if repeated:
            raise GanforgeError(
                f"The vocabulary in this metadata repeats {repeated[:5]}: it is damaged. Use the "
                "metadata.json that came with the checkpoint, or retrain to write a new one."
            )
        return cls(words)
