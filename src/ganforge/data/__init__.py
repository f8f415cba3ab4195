"""Where training examples come from: `build_dataset(cfg.data)` and `list_sources()`.

Sources (data.source): fashion-mnist, mnist (IDX files, found locally or downloaded),
stacked-mnist (three mnist digits as RGB, 1,000 modes; data/stacked.py), ring8 and
grid25 (PacGAN 2D mixtures), folder:PATH (image folders), npz:PATH / npy:PATH (arrays).
Images come back as uint8 (N, C, H, W), vectors as float32 (N, D); see data/dataset.py.
data.augment's ops on model-scale image batches: `augment_images` (data/augment.py).
"""

from ganforge.data.augment import AUGMENTS, augment_images
from ganforge.data.dataset import DataInfo, Dataset, to_data_scale
from ganforge.data.mixtures import MIXTURES, Mixture
from ganforge.data.registry import SourceInfo, build_dataset, has_splits, list_sources

__all__ = [
    "AUGMENTS",
    "MIXTURES",
    "DataInfo",
    "Dataset",
    "Mixture",
    "SourceInfo",
    "augment_images",
    "build_dataset",
    "has_splits",
    "list_sources",
    "to_data_scale",
]
