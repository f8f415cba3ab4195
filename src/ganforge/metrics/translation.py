"""Paired image metrics of a translator's outputs against their targets, as pure functions.

Inputs are uint8 image batches (N, C, H, W) of one shape, read in [0, 1] (x / 255):
- l1:   mean absolute difference per pixel and channel, in [0, 1] units;
- psnr: peak signal-to-noise ratio, 10 log10(1 / MSE) per image (data range 1), then the mean
        over images (torchmetrics' peak_signal_noise_ratio with dim=(1, 2, 3));
- ssim: structural similarity (Wang et al. 2004) with torchmetrics' defaults (Gaussian window
        11, sigma 1.5, K1 0.01, K2 0.03, data range 1), the mean over images.
The cycle error of CycleGAN is l1 of the reconstruction G_BA(G_AB(a)) against a.
"""

from __future__ import annotations

import torch

PIXEL_METRICS = ("l1", "psnr", "ssim")
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
CHUNK = 256  # images per SSIM call: torchmetrics' SSIM holds large temporaries per call


def unit_scale(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float64 in [0, 1] (float64: sums over 10,000 images stay exact)."""
    return x.double() / 255.0


def check_pair(outputs: torch.Tensor, targets: torch.Tensor) -> None:
    """Outputs and targets must be uint8 batches of one shape."""
    if outputs.shape != targets.shape or outputs.dtype != torch.uint8:
        raise ValueError(
            f"paired metrics need uint8 batches of one shape; got {tuple(outputs.shape)} "
            f"{outputs.dtype} and {tuple(targets.shape)} {targets.dtype}"
        )


def l1_error(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean |output - target| in [0, 1] units."""
    check_pair(outputs, targets)
    return float((unit_scale(outputs) - unit_scale(targets)).abs().mean())


def psnr(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean per-image PSNR in dB (data range 1); identical images count as 100 dB."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    check_pair(outputs, targets)
    per_image = peak_signal_noise_ratio(
        unit_scale(outputs), unit_scale(targets), data_range=1.0, reduction="none",
        dim=(1, 2, 3),
    )
    return float(per_image.clamp(max=100.0).mean())


def ssim(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean SSIM over images (torchmetrics, Gaussian window 11, sigma 1.5, data range 1),
    in float32 (float64 convolutions are 15x slower on CPUs), CHUNK images at a time (the
    per-image values do not depend on the chunking)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    check_pair(outputs, targets)
    per_image = [
        structural_similarity_index_measure(
            unit_scale(outputs[i : i + CHUNK]).float(), unit_scale(targets[i : i + CHUNK]).float(),
            gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_WINDOW, data_range=1.0,
            reduction="none",
        )
        for i in range(0, outputs.shape[0], CHUNK)
    ]
    return float(torch.cat(per_image).mean())


def pixel_metrics(names: list[str], outputs: torch.Tensor, targets: torch.Tensor) -> dict:
    """The named paired metrics (a subset of PIXEL_METRICS) of outputs vs targets."""
    fns = {"l1": l1_error, "psnr": psnr, "ssim": ssim}
    return {name: fns[name](outputs, targets) for name in names if name in fns}
