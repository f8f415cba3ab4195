"""A printable table of one evaluation result: metric values, then the protocol they used.

Per-class lists (cacc_per_class, ifid_per_class) stay in the JSON result; the table shows means.
"""

from __future__ import annotations

import math
from typing import Any

# (label, value key, std key) in display order
ROWS = (
    ("FID", "fid", None),
    ("KID", "kid", "kid_std"),
    ("IS", "is", "is_std"),
    ("precision", "precision", None),
    ("recall", "recall", None),
    ("density", "density", None),
    ("coverage", "coverage", None),
    ("modes covered", "modes_covered", None),
    ("high quality %", "hq_percent", None),
    ("modes KL", "modes_kl", None),
    ("cond. accuracy", "cacc", None),
    ("intra-FID", "ifid", None),
    ("CAS", "cas", None),
    ("CAS real data", "cas_real", None),
    ("accuracy", "accuracy", None),
    ("L1 to target", "l1", None),
    ("PSNR (dB)", "psnr", None),
    ("SSIM", "ssim", None),
    ("cycle L1", "cycle_l1", None),
    ("attributes right", "attr_acc", None),
    ("brightness right", "brightness_acc", None),
    ("size right", "size_acc", None),
    ("R-precision", "rprec", "rprec_std"),
)


def _number(value: Any) -> str:
    """Compact number: integers as is, floats with 5 significant digits, NaN as n/a."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.5g}"


def _metric_lines(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) for each metric in the result, in ROWS order (per-class lists left out)."""
    lines = []
    for label, key, std_key in ROWS:
        if key not in result:
            continue
        text = _number(result[key])
        if std_key and std_key in result:
            text += f" ± {_number(result[std_key])}"
        if key == "modes_covered" and "modes_total" in result:
            text += f" / {result['modes_total']}"
        lines.append((label, text))
    return lines


def _reference(against: dict[str, Any]) -> str:
    """SOURCE:split for sources with splits, else the source and what was read of it."""
    split = str(against.get("split"))
    shown = f":{split}" if split in ("train", "test") else f", split {split}"
    size = against.get("resolution")
    read = f", read at {size}" if size else ""
    return f"{against.get('source')}{shown}{read}"


def _protocol_lines(protocol: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) for the protocol: reference, fake side and labels, features, params."""
    against = protocol.get("against", {})
    feats = protocol.get("features", {})
    digest = feats.get("digest")
    params = protocol.get("params", {})
    shown = "; ".join(
        f"{metric} " + ", ".join(f"{k}={v}" for k, v in values.items())
        for metric, values in params.items()
    )
    real = f"n_real {protocol.get('n_real')}, {protocol.get('real_selection')}"
    lines = [
        ("against", f"{_reference(against)} ({real})"),
        ("fake", f"{protocol.get('fake')} (n_fake {protocol.get('n_fake')})"),
        ("features", f"{feats.get('name')}" + (f" sha256 {digest[:12]}" if digest else "")),
        ("extractor", str(feats.get("description"))),
        ("resize", str(protocol.get("resize"))),
        ("seed", str(protocol.get("seed"))),
        ("params", shown or "-"),
    ]
    if "fake_labels" in protocol:
        lines.insert(2, ("fake labels", str(protocol["fake_labels"])))
    if "reference_cache" in protocol:
        lines.append(("ref. cache", str(protocol["reference_cache"])))
    for key, note in protocol.get("translation", {}).items():
        lines.append((key, str(note)))
    return lines


def format_table(result: dict[str, Any]) -> str:
    """Metric values and protocol lines as aligned text, ready to print."""
    metrics = _metric_lines(result)
    protocol = _protocol_lines(result.get("protocol", {}))
    width = max(len(label) for label, _ in metrics + protocol)
    out = [f"{'metric'.ljust(width)}  value", f"{'-' * width}  {'-' * 12}"]
    out += [f"{label.ljust(width)}  {text}" for label, text in metrics]
    out += ["", "protocol"]
    out += [f"  {label.ljust(width)}  {text}" for label, text in protocol]
    return "\n".join(out)
