"""Fetch a file from a list of mirrors, check its SHA-256, write it atomically.

The bytes are checked in memory before anything is written, so a corrupt or tampered download
never reaches the cache. A digest may name either the file as served or, for a gzip file, its
decompressed content: the second survives a mirror that re-compresses the same data (Debian's
dataset-fashion-mnist, for one, ships re-gzipped copies of identical IDX files).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from http.client import HTTPException
from pathlib import Path

from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write_bytes

TIMEOUT_S = 60.0


class DownloadError(GanforgeError):
    """No mirror gave a file with the expected checksum; `mismatch` if one gave wrong bytes."""

    def __init__(self, message: str, mismatch: bool) -> None:
        super().__init__(message)
        self.mismatch = mismatch


def mirror_list(env_var: str, defaults: Sequence[str]) -> list[str]:
    """Base URLs to try: those in $env_var (comma/space separated) when set, else defaults."""
    override = os.environ.get(env_var, "").replace(",", " ").split()
    return override or list(defaults)


def sha256s(data: bytes) -> set[str]:
    """SHA-256 of the bytes and, when they are gzip, of the decompressed content."""
    digests = {hashlib.sha256(data).hexdigest()}
    if data[:2] == b"\x1f\x8b":
        try:
            digests.add(hashlib.sha256(gzip.decompress(data)).hexdigest())
        except (OSError, EOFError, zlib.error):
            pass  # a broken gzip cannot match its content digest; the file digest decides
    return digests


def fetch(url: str, timeout: float = TIMEOUT_S) -> bytes:
    """The body of url (raises urllib/OS errors on failure)."""
    request = urllib.request.Request(url, headers={"User-Agent": "ganforge"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def download_verified(
    filename: str, mirrors: Sequence[str], digests: Sequence[str], dest: Path
) -> Path:
    """Download filename from the first mirror that serves bytes matching a digest, to dest."""
    problems, mismatch = [], False
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        print(f"ganforge: downloading {url}", file=sys.stderr, flush=True)
        try:
            data = fetch(url)
        except (urllib.error.URLError, OSError, HTTPException, ValueError) as exc:
            problems.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        got = sha256s(data)
        if not got & set(digests):
            mismatch = True
            problems.append(
                f"{url}: checksum mismatch (SHA-256 {hashlib.sha256(data).hexdigest()}, "
                f"expected one of {', '.join(digests)}); the download was discarded"
            )
            continue
        return atomic_write_bytes(dest, data)
    raise DownloadError(f"Could not download {filename}: " + "; ".join(problems) + ".", mismatch)
