"""Training speed: ganforge's loop vs plain textbook PyTorch loops, same nets, batch and loss.

DCGAN at 28x28 on Fashion-MNIST, non-saturating loss, Adam 2e-4 (0.5, 0.999). Variants:
  textbook   pytorch/examples dcgan/main.py style: DataLoader(TensorDataset, shuffle), BCE
  tensor     the same loop drawing batches by indexing one in-memory tensor (a strong baseline)
  ganforge   ganforge's own Trainer.fit (logging, grad norms on log steps, NaN checks, final
             checkpoint and loss plot included)
Each variant runs in its own process (so peak memory is its own), repeats interleaved
(A B C A B C ...) to share machine noise; the table reports the median images/s of each and
ratios of ganforge to each baseline. Peak memory: max RSS of the process on CPU, and
torch.cuda.max_memory_allocated on CUDA.

    python benchmarks/train_speed.py --steps 200 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

VARIANTS = ("textbook", "tensor", "ganforge")


def settings(args: argparse.Namespace) -> list[str]:
    """The config both sides share, as ganforge --set overrides."""
    return [
        "data.source=fashion-mnist",
        "model.arch=dcgan",
        f"model.g_width={args.width}",
        f"model.d_width={args.width}",
        "model.z_dim=100",
        "loss.name=non-saturating",
        f"train.batch_size={args.batch}",
        f"train.device={args.device}",
        "train.sample_every=1000000",
        "train.checkpoint_every=1000000",
        "log.progress=false",
    ]


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: GPU allocations on CUDA, max RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_plain(args: argparse.Namespace, use_loader: bool) -> dict:
    """The textbook loop (pytorch/examples dcgan), with ganforge's networks for equal work."""
    from ganforge import config as configlib
    from ganforge import nets
    from ganforge.data import build_dataset
    from ganforge.training.loop import pick_device

    config = configlib.load(None, settings(args))
    device = pick_device(config.train.device)
    torch.manual_seed(0)
    data = build_dataset(config.data)
    G, D = nets.build_nets(config.model, data.shape, d_norm="batch", out_act="tanh")
    G, D = G.to(device), D.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    images = data.x.float().div(127.5).sub(1)
    if use_loader:
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(images), batch_size=args.batch, shuffle=True,
            drop_last=True,
        )

        def batches():
            while True:
                for (real,) in loader:
                    yield real.to(device)
    else:
        images = images.to(device)

        def batches():
            while True:
                order = torch.randperm(len(images), device=device)
                for i in range(0, len(order) - args.batch + 1, args.batch):
                    yield images[order[i : i + args.batch]]

    stream = batches()

    def step() -> None:
        real = next(stream)
        n = real.shape[0]
        ones = torch.ones(n, device=device)
        zeros = torch.zeros(n, device=device)
        opt_d.zero_grad()
        fake = G(torch.randn(n, 100, device=device))
        loss_d = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = bce(D(fake), ones)
        loss_g.backward()
        opt_g.step()

    for _ in range(args.warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync(device)
    seconds = time.perf_counter() - start
    return {"img_per_s": args.steps * args.batch / seconds, "peak_mb": peak_memory_mb(device)}


def run_ganforge(args: argparse.Namespace) -> dict:
    """ganforge's Trainer: warm up, then time fit() over the measured steps."""
    from ganforge import config as configlib
    from ganforge.training.loop import Trainer
    from ganforge.training.rundir import RunDir

    with tempfile.TemporaryDirectory() as tmp:
        config = configlib.load(None, settings(args) + [f"train.steps={args.warmup}"])
        run = RunDir(Path(tmp))
        run.prepare_new()
        trainer = Trainer(config, run)
        trainer.fit(progress=False)
        trainer.config.train.steps = args.warmup + args.steps
        sync(trainer.device)
        start = time.perf_counter()
        trainer.fit(progress=False)
        sync(trainer.device)
        seconds = time.perf_counter() - start
        device = trainer.device
    return {"img_per_s": args.steps * args.batch / seconds, "peak_mb": peak_memory_mb(device)}


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads) if args.threads else None
    if args.variant == "ganforge":
        result = run_ganforge(args)
    else:
        result = run_plain(args, use_loader=args.variant == "textbook")
    print(json.dumps(result))


def parent(args: argparse.Namespace) -> None:
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    base = [sys.executable, __file__, "--steps", str(args.steps), "--warmup", str(args.warmup),
            "--batch", str(args.batch), "--width", str(args.width), "--device", args.device,
            "--threads", str(args.threads)]
    for repeat in range(args.repeats):
        for variant in VARIANTS:
            out = subprocess.run(
                base + ["--variant", variant], capture_output=True, text=True, check=True
            )
            results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  repeat {repeat + 1} {variant:<9} "
                  f"{results[variant][-1]['img_per_s']:8.1f} img/s", file=sys.stderr)
    median = {v: statistics.median(r["img_per_s"] for r in results[v]) for v in VARIANTS}
    peak = {v: max(r["peak_mb"] for r in results[v]) for v in VARIANTS}
    device = "cuda" if args.device == "cuda" or (
        args.device == "auto" and torch.cuda.is_available()) else "cpu"
    what = "GPU max allocated" if device == "cuda" else "max RSS"
    print(f"\nDCGAN 28x28 Fashion-MNIST, batch {args.batch}, width {args.width}, "
          f"{args.steps} timed steps after {args.warmup} warm-up, {args.repeats} repeats, "
          f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"| variant   | images/s (median) | ganforge / variant | peak memory MB ({what}) |")
    print("|-----------|------------------:|-------------------:|---------------:|")
    for v in VARIANTS:
        print(f"| {v:<9} | {median[v]:17.1f} | {median['ganforge'] / median[v]:18.3f} | "
              f"{peak[v]:14.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    child(args) if args.variant else parent(args)


if __name__ == "__main__":
    main()
