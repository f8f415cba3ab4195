"""Markup for a self-contained HTML page: escaped text, tables, PNGs as data URIs, one style
sheet inline. No scripts; a Content-Security-Policy forbids loading anything from outside."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Nothing may load from outside the file: images only as data: URIs, styles only inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 0 24px 48px;
       max-width: 1600px; color: #1d2330; background: #fff; }
header { border-bottom: 1px solid #d5d9e0; margin-bottom: 12px; }
h1 { font-size: 24px; margin: 20px 0 4px; }
h2 { font-size: 20px; margin: 28px 0 6px; padding-top: 8px; border-top: 3px solid #3b6fb6; }
h3 { font-size: 16px; margin: 18px 0 6px; }
nav a { margin-right: 14px; }
.muted { color: #5f6b7a; }
.note { background: #fff6dc; border-left: 4px solid #e0a800; padding: 6px 10px; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { border: 1px solid #d5d9e0; padding: 3px 8px; text-align: left; vertical-align: top; }
th, table.kv td:first-child { background: #f1f3f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.changed { background: #ffe1a8; font-weight: 600; }
pre { background: #f6f8fa; border: 1px solid #d5d9e0; padding: 8px; overflow-x: auto;
      max-height: 480px; font-size: 12px; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; }
figcaption { font-size: 12px; color: #5f6b7a; text-align: center; }
img.grid { image-rendering: pixelated; width: 220px; height: auto; border: 1px solid #d5d9e0; }
img.plot { max-width: 560px; width: 100%; height: auto; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr));
         gap: 8px; }
"""


def esc(text: object) -> str:
    """Any value as HTML-escaped text (quotes too, so it is safe in attributes)."""
    return html.escape(str(text), quote=True)


def data_uri(png: bytes) -> str:
    """A PNG's bytes as a data: URI (refused unless they are a PNG)."""
    if not png.startswith(PNG_MAGIC):
        raise ValueError("not PNG data")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img(png: bytes, alt: str, cls: str) -> str:
    """An <img> holding the PNG itself."""
    return f'<img class="{esc(cls)}" alt="{esc(alt)}" src="{data_uri(png)}">'


def figure(png: bytes, caption: str, cls: str) -> str:
    """An image with a caption under it."""
    return f"<figure>{img(png, caption, cls)}<figcaption>{esc(caption)}</figcaption></figure>"


def table(
    headers: list[str] | None, rows: Iterable[list[str]], numeric: Iterable[int] = (),
    changed: Iterable[tuple[int, int]] = (),
) -> str:
    """A table of escaped text (no header row when headers is None); cells (row, column) in
    `changed` are highlighted, columns in `numeric` right-aligned."""
    numeric, changed = set(numeric), set(changed)
    head = "" if headers is None else (
        "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>")
    body = []
    for r, row in enumerate(rows):
        cells = []
        for c, cell in enumerate(row):
            classes = [n for n, on in (("num", c in numeric), ("changed", (r, c) in changed))
                       if on]
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{esc(cell)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    kind = ' class="kv"' if headers is None else ""
    return f"<table{kind}>{head}<tbody>{''.join(body)}</tbody></table>"


def note(text: str) -> str:
    """A highlighted one-paragraph notice (e.g. 'no metrics logged yet')."""
    return f'<p class="note">{esc(text)}</p>'


def section(anchor: str, kind: str, title: str, body: str, level: int = 3) -> str:
    """A titled section; data-section names its kind (the same in every run) for readers and
    tests, the id is unique in the page."""
    return (f'<section id="{esc(anchor)}" data-section="{esc(kind)}">'
            f"<h{level}>{esc(title)}</h{level}>{body}</section>")


def page(title: str, header: str, body: str) -> str:
    """The whole document: meta, inline style, header, body."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header>{header}</header>\n{body}\n</body>\n</html>\n"
    )
