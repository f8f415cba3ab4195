"""Feature extractors, metrics as pure functions on features, and evaluation drivers.

The drivers live in `ganforge.metrics.evaluate` (evaluate, format_table) and
`ganforge.metrics.targets` (fake_from_target); they
are not re-exported here so that name always means the module.
"""

from ganforge.metrics.conditional import conditional_accuracy, intra_fid
from ganforge.metrics.features import FeatureExtractor
from ganforge.metrics.fid import feature_stats, fid, fid_from_stats
from ganforge.metrics.inception_score import inception_score, inception_score_from_logits
from ganforge.metrics.kid import kid, mmd2_unbiased
from ganforge.metrics.manifold import density_coverage, precision_recall
from ganforge.metrics.modes import class_mode_metrics, mode_metrics_2d, stacked_mode_metrics
from ganforge.metrics.table import format_table

__all__ = [
    "FeatureExtractor",
    "class_mode_metrics",
    "conditional_accuracy",
    "density_coverage",
    "feature_stats",
    "fid",
    "fid_from_stats",
    "format_table",
    "inception_score",
    "inception_score_from_logits",
    "intra_fid",
    "kid",
    "mmd2_unbiased",
    "mode_metrics_2d",
    "precision_recall",
    "stacked_mode_metrics",
]
