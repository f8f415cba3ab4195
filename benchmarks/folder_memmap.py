"""folder:PATH data: batches from the memory-mapped decode cache vs the same images in memory.

Builds a synthetic folder (random RGB PNGs), decodes it once into ganforge's cache (KEY.u8 +
KEY.json), then, each variant in its own process so peak memory is its own:
  memory   build the dataset from the cache, then x.clone() into RAM (what the cache used to do)
  mapped   build the dataset from the cache, x stays memory-mapped (Dataset.mapped)
  evicted  as mapped, after dropping the cache file's pages from the OS page cache
           (posix_fadvise DONTNEED), so the first batches read from disk as data larger than
           memory would
Each variant draws random batches of --batch indices (x[idx], the copy a training step makes
before moving it to the device) and reports images/s, build time and peak RSS (after the build,
and at the end: a mapped x's touched pages count in RSS too, but they are the kernel's page
cache, shared and reclaimable, not the process's memory). Repeats interleave the variants
(A B C A B C ...) to share machine noise; the table gives medians and ratios to `memory`.

    python benchmarks/folder_memmap.py --n 20000 --size 64 --steps 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

VARIANTS = ("memory", "mapped", "evicted")


def make_folder(root: Path, n: int, size: int, seed: int = 0) -> None:
    """n random RGB PNGs of size x size under root (kept when already there)."""
    root.mkdir(parents=True, exist_ok=True)
    have = len(list(root.glob("*.png")))
    if have >= n:
        return
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for i in range(n):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        if i >= have:
            Image.fromarray(pixels).save(root / f"{i:07d}.png", compress_level=1)
    print(f"  wrote {n - have} PNGs in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def evict(cache: Path) -> None:
    """Drop the cache files' pages from the page cache (clean pages only; no root needed)."""
    for path in cache.glob("*.u8"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def child(args: argparse.Namespace) -> dict:
    """One variant in this process: build, then time random batches."""
    from ganforge.config import DataConfig
    from ganforge.data import build_dataset

    torch.set_num_threads(args.threads) if args.threads else None
    cfg = DataConfig(source=f"folder:{args.dir}", resolution=args.size)
    if args.variant == "decode":  # the cold build: decodes and writes the cache entry
        start = time.perf_counter()
        data = build_dataset(cfg)
        return {"build_s": time.perf_counter() - start, "build_mb": peak_rss_mb(),
                "n": len(data), "bytes": data.x.numel(), "mapped": data.mapped}
    if args.variant == "evicted":
        evict(Path(os.environ["XDG_CACHE_HOME"]) / "ganforge" / "folders")
    start = time.perf_counter()
    data = build_dataset(cfg)
    x = data.x.clone() if args.variant == "memory" else data.x
    build_s, build_mb = time.perf_counter() - start, peak_rss_mb()
    generator = torch.Generator().manual_seed(0)
    steps = [torch.randint(len(x), (args.batch,), generator=generator)
             for _ in range(args.steps)]
    checksum = 0
    start = time.perf_counter()
    for idx in steps:
        checksum += int(x[idx][:, 0, 0, 0].sum())  # touch the batch (the copy is the work)
    seconds = time.perf_counter() - start
    return {"img_per_s": args.steps * args.batch / seconds, "build_s": build_s,
            "build_mb": build_mb, "end_mb": peak_rss_mb(), "mapped": data.mapped,
            "checksum": checksum}


def run_child(args: argparse.Namespace, variant: str, env: dict) -> dict:
    command = [sys.executable, __file__, "--dir", str(args.dir), "--size", str(args.size),
               "--steps", str(args.steps), "--batch", str(args.batch),
               "--threads", str(args.threads), "--variant", variant]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parent(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        args.dir = Path(args.dir) if args.dir else Path(tmp) / "images"
        make_folder(args.dir, args.n, args.size)
        env = dict(os.environ, XDG_CACHE_HOME=str(Path(tmp) / "cache"))  # a private cache
        cold = run_child(args, "decode", env)
        print(f"  decode: {cold['n']} images in {cold['build_s']:.1f} s, "
              f"peak RSS {cold['build_mb']:.0f} MB", file=sys.stderr)
        results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        for repeat in range(args.repeats):
            for variant in VARIANTS:
                results[variant].append(run_child(args, variant, env))
                print(f"  repeat {repeat + 1} {variant:<8} "
                      f"{results[variant][-1]['img_per_s']:10.0f} img/s", file=sys.stderr)
    med = {v: {k: statistics.median(r[k] for r in results[v])
               for k in ("img_per_s", "build_s", "build_mb", "end_mb")} for v in VARIANTS}
    assert len({r["checksum"] for rs in results.values() for r in rs}) == 1  # same batches
    base = med["memory"]
    mb = cold["bytes"] / 2**20
    print(f"\nfolder:PATH, {cold['n']} random RGB PNGs at {args.size}x{args.size} "
          f"(x = {mb:.0f} MiB uint8), batches of {args.batch} random indices, {args.steps} "
          f"steps, {args.repeats} repeats (medians), torch {torch.__version__}, "
          f"threads {args.threads or torch.get_num_threads()}")
    print(f"cold build (decode {cold['n']} files into the cache): {cold['build_s']:.1f} s, "
          f"peak RSS {cold['build_mb']:.0f} MB, mapped={cold['mapped']}")
    print("| variant | images/s | / memory | build s | peak RSS after build MB | / memory "
          "| peak RSS at end MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for v in VARIANTS:
        m = med[v]
        print(f"| {v} | {m['img_per_s']:.0f} | {m['img_per_s'] / base['img_per_s']:.3f} | "
              f"{m['build_s']:.2f} | {m['build_mb']:.0f} | {m['build_mb'] / base['build_mb']:.3f}"
              f" | {m['end_mb']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="images in the synthetic folder")
    parser.add_argument("--size", type=int, default=64, help="image side (and resolution)")
    parser.add_argument("--dir", help="folder for the PNGs (kept; default: a temp folder)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument("--variant", choices=("decode",) + VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(child(args)))
    else:
        parent(args)


if __name__ == "__main__":
    main()
