"""Captions: read from a folder's caption files, and turned into the `text` batch field.

A folder:PATH source has captions when its root holds a caption table or any image has a
caption file beside it (the layouts of Hugging Face's "imagefolder"):
- metadata.jsonl: one JSON object per line, {"file_name": "a/b.png", "text": "a caption"}
  (file_name relative to the root; text a string or a list of strings; several lines for one
  file add captions);
- metadata.csv: a header with the columns file_name and text, then one caption per row;
- IMAGE.txt beside IMAGE.png (same stem): one caption per non-empty line.
Only one of the two tables may exist; a .txt file's captions come after the table's. A caption
with no words (see ganforge.text.words) is ignored. Captions are read on every build (they are
cheap); the decoded images stay in the folder cache.

`caption_tokens` turns a dataset's captions (one list per example) into ids (N, K, L): K the
most captions any example has, L = data.max_words; the slots an example lacks are all PAD.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import torch

from ganforge.errors import GanforgeError
from ganforge.text.vocab import PAD, Vocabulary, check_max_words, words

TABLES = ("metadata.jsonl", "metadata.csv")
SHOW_FIRST = 5  # names listed in a message
LAYOUT = (
    "Give each image a caption: a line {\"file_name\": \"IMAGE.png\", \"text\": \"a caption\"} "
    "in metadata.jsonl, a row in metadata.csv, or IMAGE.txt beside IMAGE.png"
)


def read_text(path: Path) -> str:
    """A caption file's text (UTF-8, a byte-order mark allowed); a clear error otherwise."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise GanforgeError(
            f"Cannot read the caption file '{path}': {exc}. Save it as UTF-8 text."
        ) from None


def add(table: dict[str, list[str]], name: str, texts: list[str]) -> None:
    """Append the captions that have words to name's list."""
    kept = [text.strip() for text in texts if words(text)]
    if kept:
        table.setdefault(name, []).extend(kept)


def clean_name(name: str) -> str:
    """A file_name as the relative POSIX path the folder scan gives ('./a\\b.png' -> 'a/b.png')."""
    return Path(name.replace("\\", "/")).as_posix().removeprefix("./")


def read_jsonl(path: Path) -> dict[str, list[str]]:
    """file name -> captions from metadata.jsonl; errors name the line."""
    table: dict[str, list[str]] = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            entry, why = None, f"not valid JSON ({exc.msg})"
        else:
            why = "not a JSON object"
        if isinstance(entry, dict):
            missing = [key for key in ("file_name", "text") if key not in entry]
            text = entry.get("text")
            texts = [text] if isinstance(text, str) else text
            if missing:
                why = f"it lacks {' and '.join(repr(k) for k in missing)}"
            elif not isinstance(entry["file_name"], str):
                why = "its file_name is not a string"
            elif not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                why = "its text is neither a string nor a list of strings"
            else:
                add(table, clean_name(entry["file_name"]), texts)
                continue
        raise GanforgeError(
            f"'{path}' line {number}: {why}. Each line must be one JSON object like "
            '{"file_name": "a.png", "text": "a caption"}; fix or remove that line.'
        )
    return table


def read_csv(path: Path) -> dict[str, list[str]]:
    """file name -> captions from metadata.csv (columns file_name, text)."""
    rows = csv.DictReader(read_text(path).splitlines())
    columns = rows.fieldnames or []
    if "file_name" not in columns or "text" not in columns:
        raise GanforgeError(
            f"'{path}' has the columns {columns}; a caption table needs a header row with "
            "the columns file_name and text (e.g. 'file_name,text'). Add or rename them."
        )
    table: dict[str, list[str]] = {}
    for row in rows:
        name, text = row.get("file_name"), row.get("text")
        if name and text:
            add(table, clean_name(name), [text])
    return table


def read_table(root: Path) -> dict[str, list[str]] | None:
    """The captions of the root's metadata.jsonl or metadata.csv, None when it has neither."""
    found = [root / name for name in TABLES if (root / name).is_file()]
    if len(found) > 1:
        raise GanforgeError(
            f"'{root}' holds both metadata.jsonl and metadata.csv; ganforge reads captions "
            "from one table. Keep one of them (move or delete the other)."
        )
    if not found:
        return None
    return read_jsonl(found[0]) if found[0].suffix == ".jsonl" else read_csv(found[0])


def check_named(root: Path, table: dict[str, list[str]], images: set[str]) -> None:
    """Refuse a caption table that names images the folder does not hold."""
    missing = sorted(set(table) - images)
    if not missing:
        return
    shown = ", ".join(f"'{name}'" for name in missing[:SHOW_FIRST])
    more = f" and {len(missing) - SHOW_FIRST} more" if len(missing) > SHOW_FIRST else ""
    raise GanforgeError(
        f"The caption table under '{root}' names {len(missing)} image(s) that are not in the "
        f"folder: {shown}{more}. file_name is the path relative to '{root}' (e.g. "
        "'shoes/a.png'); fix those names, add the images, or remove their rows."
    )


def report_uncaptioned(root: Path, names: list[str], total: int, strict: bool) -> None:
    """Warn about images without a caption (they are dropped), or raise with data.strict."""
    shown = ", ".join(f"'{name}'" for name in names[:SHOW_FIRST])
    more = f" and {len(names) - SHOW_FIRST} more" if len(names) > SHOW_FIRST else ""
    text = f"{len(names)} of the {total} images under '{root}' have no caption: {shown}{more}"
    if strict or len(names) == total:
        why = "data.strict is true, so ganforge stops" if strict else "nothing is left"
        raise GanforgeError(f"{text}. {why}. {LAYOUT}, or remove those images.")
    warnings.warn(
        f"{text}. They are left out (set data.strict=true to stop instead). {LAYOUT}.",
        stacklevel=3,
    )


def folder_captions(root: Path, files: list[Path], strict: bool) -> dict[str, list[str]] | None:
    """Relative image path -> its captions (only captioned images), or None when the folder
    has no captions at all. Reports uncaptioned images (warning, or error with strict)."""
    names = [f.relative_to(root).as_posix() for f in files]
    table = read_table(root)
    if table is not None:
        check_named(root, table, set(names))
    captions = table or {}
    has_txt = False
    for name, path in zip(names, files):
        beside = path.with_suffix(".txt")
        if beside.is_file():
            has_txt = True
            add(captions, name, read_text(beside).splitlines())
    if table is None and not has_txt:
        return None
    uncaptioned = [name for name in names if name not in captions]
    if uncaptioned:
        report_uncaptioned(root, uncaptioned, len(names), strict)
    return captions


def caption_tokens(
    captions: list[list[str]], vocabulary: Vocabulary, max_words: int
) -> tuple[torch.Tensor, list[str], int]:
    """(ids (N, K, max_words) int64, K the most captions of one example, missing slots PAD;
    the unknown words; how many captions were cut to max_words)."""
    check_max_words(max_words)
    slots = max((len(texts) for texts in captions), default=0)
    flat = [text for texts in captions for text in texts]
    ids, unknown, cut = vocabulary.encode_batch(flat, max_words)
    out = torch.full((len(captions), max(slots, 1), max_words), PAD, dtype=torch.int64)
    rows = [i for i, texts in enumerate(captions) for _ in texts]
    slot = [j for texts in captions for j in range(len(texts))]
    out[rows, slot] = ids
    return out, unknown, cut


def longest(captions: list[list[str]]) -> int:
    """The word count of the longest caption."""
    return max((len(words(text)) for texts in captions for text in texts), default=0)
