"""Training speed: ganforge's loop vs plain textbook PyTorch loops, same nets, batch and loss.

DCGAN on Fashion-MNIST (28x28, or upsampled with --resolution 64), non-saturating loss, Adam
2e-4 (0.5, 0.999). Variants:
  textbook        pytorch/examples dcgan/main.py style: DataLoader(TensorDataset, shuffle), BCE,
                  fp32
  tensor          the same loop drawing batches by indexing one in-memory tensor on the device
  ganforge        ganforge's own Trainer.fit, fp32 (logging, grad norms on log steps, NaN
                  checks, final checkpoint and loss plot included)
  ganforge-bf16   the same with train.precision=bf16
  ganforge-bf16-compile   ... and train.compile=true
  ganforge-graphs, ganforge-bf16-graphs   fp32 / bf16 compiled with
                  train.compile_mode=reduce-overhead (CUDA graphs); ganforge-bf16-graphs-nhwc
                  the bf16 one with train.channels_last=true (fp32 + compile +
                  channels_last is refused on CUDA: it crashed in torch.compile)
  ganforge-fp16   train.precision=fp16 (GradScalers)
  ganforge-nhwc, ganforge-bf16-nhwc   fp32 / bf16 with train.channels_last=true
Each variant runs in its own process (so peak memory is its own), repeats interleaved
(A B C A B C ...) to share machine noise; the table reports the median images/s of each and
its ratio to the textbook loop. Peak memory: max RSS of the process on CPU, and
torch.cuda.max_memory_allocated on CUDA. Default variants: the three fp32 ones on the CPU (half
precision has no fast CPU kernels), all of them on CUDA. Warm-up steps (compilation included)
are not timed.

--ddp N instead measures ganforge under torchrun with 1 and N processes (gloo on the CPU, NCCL
on GPUs), same global batch: images/s of the whole run and the speed-up.

    python benchmarks/train_speed.py --steps 200 --repeats 3
    python benchmarks/train_speed.py --device cuda --resolution 64 --steps 500
    python benchmarks/train_speed.py --ddp 2 --threads 1 --steps 200
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

import torch

GANFORGE_VARIANTS = {  # name: extra overrides
    "ganforge": [],
    "ganforge-bf16": ["train.precision=bf16"],
    "ganforge-bf16-compile": ["train.precision=bf16", "train.compile=true"],
    "ganforge-graphs": ["train.compile=true", "train.compile_mode=reduce-overhead"],
    "ganforge-bf16-graphs": [
        "train.precision=bf16", "train.compile=true", "train.compile_mode=reduce-overhead"
    ],
    "ganforge-bf16-graphs-nhwc": [
        "train.precision=bf16", "train.compile=true", "train.compile_mode=reduce-overhead",
        "train.channels_last=true",
    ],
    "ganforge-fp16": ["train.precision=fp16"],
    "ganforge-nhwc": ["train.channels_last=true"],
    "ganforge-bf16-nhwc": ["train.precision=bf16", "train.channels_last=true"],
}
VARIANTS = ("textbook", "tensor", *GANFORGE_VARIANTS)
CPU_DEFAULT = ("textbook", "tensor", "ganforge", "ganforge-nhwc")
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "fashion_mnist_dcgan.yaml"


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
        f"data.resolution={args.resolution}",
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

    extra = GANFORGE_VARIANTS[args.variant]
    with tempfile.TemporaryDirectory() as tmp:
        config = configlib.load(None, settings(args) + extra + [f"train.steps={args.warmup}"])
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
    if args.variant in GANFORGE_VARIANTS:
        result = run_ganforge(args)
    else:
        result = run_plain(args, use_loader=args.variant == "textbook")
    print(json.dumps(result))


def child_args(args: argparse.Namespace) -> list[str]:
    """The flags every child process shares."""
    return ["--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch),
            "--width", str(args.width), "--device", args.device, "--threads", str(args.threads),
            "--resolution", str(args.resolution)]


def parent(args: argparse.Namespace) -> None:
    device = "cuda" if args.device.startswith("cuda") or (
        args.device == "auto" and torch.cuda.is_available()) else "cpu"
    variants = args.variants.split(",") if args.variants else (
        VARIANTS if device == "cuda" else CPU_DEFAULT)
    results: dict[str, list[dict]] = {v: [] for v in variants}
    base = [sys.executable, __file__, *child_args(args)]
    for repeat in range(args.repeats):
        for variant in variants:
            out = subprocess.run(
                base + ["--variant", variant], capture_output=True, text=True, check=False
            )
            if out.returncode:  # one failing variant must not cost the others
                print(f"  {variant} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                results[variant].append({"img_per_s": float("nan"), "peak_mb": float("nan")})
                continue
            results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  repeat {repeat + 1} {variant:<9} "
                  f"{results[variant][-1]['img_per_s']:8.1f} img/s", file=sys.stderr)
    median = {v: statistics.median(r["img_per_s"] for r in results[v]) for v in variants}
    peak = {v: max(r["peak_mb"] for r in results[v]) for v in variants}
    what = "GPU max allocated" if device == "cuda" else "max RSS"
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    side = args.resolution
    print(f"\nDCGAN {side}x{side} Fashion-MNIST, batch {args.batch}, width {args.width}, "
          f"{args.steps} timed steps after {args.warmup} warm-up, {args.repeats} repeats, "
          f"device {device} ({name}), torch {torch.__version__}, "
          f"threads per process {args.threads or torch.get_num_threads()}")
    base_name = variants[0]
    print(f"| variant | images/s (median) | / {base_name} | peak memory MB ({what}) |")
    print("|---|---:|---:|---:|")
    for v in variants:
        print(f"| {v} | {median[v]:.1f} | {median[v] / median[base_name]:.3f} | "
              f"{peak[v]:.1f} |")


def ddp_parent(args: argparse.Namespace) -> None:
    """ganforge under torchrun with 1 and N processes, same global batch: run images/s."""
    rows = {}
    for procs in (1, args.ddp):
        rates = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                every = max(args.steps // 5, 1)
                overrides = settings(args) + [f"train.steps={args.steps}", f"log.every={every}"]
                command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={procs}", "-m", "ganforge", "train",
                           str(CONFIG), "--out", f"{tmp}/run", "--no-progress"]
                for o in overrides:
                    command += ["--set", o]
                env = dict(os.environ, OMP_NUM_THREADS=str(args.threads or 1))
                done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
                if done.returncode:
                    sys.exit(f"torchrun failed:\n{done.stdout}\n{done.stderr}")
                lines = Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()
                logged = [json.loads(line)["img_per_s"] for line in lines]
                rates.append(statistics.median(logged[1:]))  # the first interval warms up
        rows[procs] = statistics.median(rates)
        print(f"  {procs} process(es): {rows[procs]:.1f} img/s", file=sys.stderr)
    print(f"\nganforge DCGAN {args.resolution}x{args.resolution} Fashion-MNIST under torchrun, "
          f"global batch {args.batch}, width {args.width}, {args.steps} steps per run (images/s "
          f"as the run logs it, median of its log intervals after the first), "
          f"{args.repeats} repeats, "
          f"{args.threads or 1} thread(s) per process, device {args.device}, "
          f"torch {torch.__version__}")
    print("| processes | images/s (median) | speed-up |")
    print("|---:|---:|---:|")
    for procs, rate in rows.items():
        print(f"| {procs} | {rate:.1f} | {rate / rows[1]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--resolution", type=int, default=28, help="28 or 64 (upsampled)")
    parser.add_argument("--variants", default="", help="comma-separated subset of: "
                        + ", ".join(VARIANTS))
    parser.add_argument("--ddp", type=int, default=0, help="compare 1 and N torchrun processes")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child(args)
    elif args.ddp:
        ddp_parent(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
