"""MNIST-like datasets stored as IDX files (Fashion-MNIST, MNIST): find, download, parse.

Files are looked up in the shared order of ganforge.data.paths (data.dir, $GANFORGE_DATA, the
user cache, /usr/share/datasets). When none holds them and data.download is true, they are
fetched from the dataset's mirrors into the user cache, SHA-256-checked before being written.
The base URLs can be replaced with $GANFORGE_FASHION_MNIST_URL / $GANFORGE_MNIST_URL.

Checksums (SHA-256; a file passes if either its own digest or its gzip content's matches):
- Fashion-MNIST .gz: the published values of the files on the canonical S3 bucket (the same in
  TensorFlow Datasets and many other projects). Content digests: computed here from Debian's
  dataset-fashion-mnist copies, which are re-gzipped (different .gz bytes, identical content).
- MNIST .gz: the published values of the files served by ossci-datasets / cvdf-datasets /
  yann.lecun.com (agreed on by many independent projects); content digests: the published
  SHA-256 of the uncompressed IDX files (likewise agreed on by several projects).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganforge.config import DataConfig
from ganforge.data.dataset import Dataset
from ganforge.data.download import DownloadError, download_verified, mirror_list
from ganforge.data.paths import find_in, locate, search_dirs, user_cache_dir
from ganforge.errors import GanforgeError

# IDX type codes (third byte of the magic number) -> numpy big-endian dtypes
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class IdxSource:
    """A dataset of four IDX files: {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz."""

    name: str
    description: str
    mirrors: tuple[str, ...]
    url_env: str
    digests: dict[str, tuple[str, ...]]  # file name -> accepted SHA-256 (file or content)
    class_names: tuple[str, ...]
    apt_package: str | None = None

    def files(self, split: str) -> list[str]:
        """The images and labels file names of a split ("train" or "test")."""
        prefix = "train" if split == "train" else "t10k"
        return [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]


FASHION_MNIST = IdxSource(
    name="fashion-mnist",
    description="Zalando's Fashion-MNIST: 28x28 gray clothing, 10 classes, 60k train / 10k test",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    url_env="GANFORGE_FASHION_MNIST_URL",
    digests={
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
    class_names=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    apt_package="dataset-fashion-mnist",
)

MNIST = IdxSource(
    name="mnist",
    description="LeCun's MNIST digits: 28x28 gray, 10 classes, 60k train / 10k test",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    url_env="GANFORGE_MNIST_URL",
    digests={
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    },
    class_names=tuple(str(d) for d in range(10)),
)

IDX_SOURCES = {s.name: s for s in (FASHION_MNIST, MNIST)}


# ---------------------------------------------------------------------------------------------
# parsing


def read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when it is gzip (by magic bytes, not by name)."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError, zlib.error) as exc:
        raise GanforgeError(
            f"Cannot read '{path}': {exc}. The file is truncated or corrupt; delete it and "
            "fetch it again (ganforge downloads missing files when data.download is true)."
        ) from None


def parse_idx(data: bytes, origin: str = "<bytes>") -> np.ndarray:
    """An IDX byte string as a numpy array (big-endian header, shape checked against length)."""
    def bad(why: str) -> GanforgeError:
        return GanforgeError(
            f"'{origin}' is not a valid IDX file: {why}. It may be truncated or corrupt; "
            "delete it and fetch it again."
        )

    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise bad(f"bad magic number {data[:4].hex() or '(empty file)'}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise bad("header too short")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[data[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise bad(f"shape {shape} needs {expected} bytes, the file holds {len(data)}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    """Parse the IDX file at path (gzipped or not)."""
    return parse_idx(read_bytes(path), str(path))


def read_pair(images_path: Path, labels_path: Path, num_classes: int) -> tuple[np.ndarray, ...]:
    """Images (N, 28, 28) uint8 and labels (N,) of an MNIST-like pair, cross-checked."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise GanforgeError(
            f"'{images_path}' should hold uint8 images (N, H, W) (IDX magic 0x00000803); it "
            f"holds {images.dtype} of shape {images.shape}. Is it a labels file?"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8 or labels.size and labels.max() >= num_classes:
        raise GanforgeError(
            f"'{labels_path}' should hold uint8 labels below {num_classes} (IDX magic "
            f"0x00000801); it holds {labels.dtype} of shape {labels.shape}."
        )
    if len(images) != len(labels):
        raise GanforgeError(
            f"'{images_path}' has {len(images)} images but '{labels_path}' has {len(labels)} "
            "labels; the files come from different datasets or splits."
        )
    return images, labels


# ---------------------------------------------------------------------------------------------
# finding and downloading


def how_to_get(spec: IdxSource, files: list[str], cfg: DataConfig) -> str:
    """The fix for a missing dataset: which files to put where, and the other ways to get them."""
    dirs = ", ".join(str(d) for d in search_dirs(spec.name, cfg.dir))
    text = (
        f"Put {' and '.join(files)} (gzipped or not) in one of: {dirs} "
        "(or point data.dir or $GANFORGE_DATA at the folder that holds them)"
    )
    if spec.apt_package:
        text += f"; on Debian/Ubuntu, `sudo apt-get install {spec.apt_package}` installs them"
    mirror = mirror_list(spec.url_env, spec.mirrors)[0]
    if cfg.download:
        return text + f"; or retry later, or set ${spec.url_env} to another mirror's base URL."
    return text + f"; or set data.download=true to fetch them from {mirror}."


def fetch_missing(spec: IdxSource, files: list[str], cfg: DataConfig) -> list[Path]:
    """Download the files of a split that the cache lacks; a clear error when that fails."""
    target = user_cache_dir() / spec.name
    split = f"{spec.name} ({cfg.split} split)"
    if not cfg.download:
        raise GanforgeError(
            f"Dataset {split} not found and data.download is false. "
            + how_to_get(spec, files, cfg)
        )
    mirrors = mirror_list(spec.url_env, spec.mirrors)
    try:
        for name in files:
            if find_in(target, name) is None:
                download_verified(name, mirrors, spec.digests[name], target / name)
    except DownloadError as exc:
        lead = "Checksum mismatch while downloading" if exc.mismatch else "Could not download"
        raise GanforgeError(
            f"{lead} dataset {split}. {exc} " + how_to_get(spec, files, cfg)
        ) from None
    return [p for p in (find_in(target, name) for name in files) if p is not None]


def find_or_fetch(spec: IdxSource, cfg: DataConfig) -> list[Path]:
    """Paths of the split's images and labels files, downloading them when allowed."""
    files = spec.files(cfg.split)
    return locate(spec.name, files, cfg.dir) or fetch_missing(spec, files, cfg)


def where(spec: IdxSource, cfg: DataConfig | None) -> tuple[bool, str]:
    """(found locally, where or how to get it) for `ganforge datasets`."""
    data_dir = cfg.dir if cfg else None
    files = spec.files("train") + spec.files("test")
    found = locate(spec.name, files, data_dir)
    if found:
        return True, f"found in {found[0].parent}"
    mirrors = mirror_list(spec.url_env, spec.mirrors)
    apt = f", or `sudo apt-get install {spec.apt_package}`" if spec.apt_package else ""
    return False, (
        f"not found; downloaded on first use from {mirrors[0]} into "
        f"{user_cache_dir() / spec.name}{apt}"
    )


def load_idx(spec: IdxSource, cfg: DataConfig) -> Dataset:
    """The split of an MNIST-like dataset as uint8 images (N, 1, 28, 28) with labels."""
    images_path, labels_path = find_or_fetch(spec, cfg)
    images, labels = read_pair(images_path, labels_path, len(spec.class_names))
    return Dataset(
        x=torch.from_numpy(images.copy()).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        name=f"{spec.name}:{cfg.split}",
        kind="image",
        num_classes=len(spec.class_names),
        class_names=list(spec.class_names),
    )
