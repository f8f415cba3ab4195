"""Classic augmentation of real images (data.augment): flip, crop, rotate, color.

Pure functions on a float batch of images in [-1, 1], (N, C, H, W). All randomness comes from a
CPU torch.Generator the caller owns (so a run's augmentation is seeded and resumable); the
draws are made on the CPU and moved to x's device, so CPU and GPU runs draw the same
parameters. `augment_images(x, ops, generator)` applies the named ops in the fixed order of
AUGMENTS, whatever order `ops` lists them in:

- jitter: pix2pix's random jitter: resize to round(H * 286/256) (36 at 32), crop back to H x W
          at a random offset (the reference's load size / crop size).
- flip:   horizontal mirror, each image with p = 0.5.
- crop:   pad by reflection, then crop back to H x W at a random offset: a random translation
          of up to pad pixels each way, pad = max(1, H // 8) (4 px at 32x32, 3 at 28x28).
- rotate: rotation by an angle uniform in [-10, 10] degrees about the image center, bilinear
          (affine_grid + grid_sample), border padding (edge pixels extend outward).
- color:  brightness: add U(-0.2, 0.2) (in the [-1, 1] scale); saturation (RGB only): blend
          with the luma image by a factor U(0.8, 1.2); contrast: scale about the image's mean
          by U(0.8, 1.2). Grayscale images get brightness and contrast only. Clamped to [-1, 1].

Caveat: augmenting the real images changes the distribution G is trained to match. A generator
fed flipped, rotated or recoloured reals learns to produce flipped, rotated or recoloured
images (the augmentation "leaks" into G's samples). That is harmless for flips of data that is
mirror-symmetric anyway (faces, most natural images) and wrong for digits or text. DiffAugment
(stabilize.diffaugment) is different: it augments both real and fake images, only inside D's
view, with differentiable ops, so D sees more varied data while G's target stays the real
distribution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError, unknown_name

AUGMENTS = ("jitter", "flip", "crop", "rotate", "color")  # also the order they are applied in
JITTER_LOAD = 286 / 256  # pix2pix/CycleGAN: load at 286, random crop 256 (Isola et al. 6.1)
FLIP_P = 0.5
MAX_DEGREES = 10.0
BRIGHTNESS = 0.2  # additive, in the [-1, 1] scale
CONTRAST = (0.8, 1.2)
SATURATION = (0.8, 1.2)
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as data.transforms


def check_batch(x: torch.Tensor) -> None:
    """Raise unless x is a float image batch (N, C, H, W); vectors get a GanforgeError."""
    if x.ndim != 4:
        raise GanforgeError(
            f"data.augment only applies to images (N, C, H, W); this data has examples of "
            f"shape {tuple(x.shape[1:])}. Remove data.augment (for vector data, e.g. the 2D "
            "mixtures, there is nothing to flip or crop)."
        )
    if not x.is_floating_point():
        raise ValueError(f"augment expects float images in [-1, 1]; got {x.dtype}")


def check_generator(generator: torch.Generator) -> None:
    """The generator must be a CPU one: draws happen on the CPU, then move to x's device."""
    if generator.device.type != "cpu":
        raise ValueError(f"augment draws from a CPU generator; got one on {generator.device}")


def uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """n float32 draws uniform in [low, high) on the CPU."""
    return low + (high - low) * torch.rand(n, generator=generator)


# ---------------------------------------------------------------------------------------------
# deterministic kernels: the transform given its parameters


def flip_images(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x with the images where mask (N,) is true mirrored left-right."""
    mask = mask.to(x.device).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(3), x)


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad: int) -> torch.Tensor:
    """Shift image i by (dy[i], dx[i]) pixels, |d| <= pad, filling from a reflection pad.

    out[i, :, r, c] = x[i, :, r - dy[i], c - dx[i]] wherever that lies inside the image.
    """
    n, c, h, w = x.shape
    mode = "reflect" if pad < min(h, w) else "replicate"  # reflect needs pad < size
    padded = F.pad(x, (pad, pad, pad, pad), mode=mode)
    top = (pad - dy).to(x.device).long()  # crop origin in the padded image
    left = (pad - dx).to(x.device).long()
    rows = (top.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (left.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chans = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, chans, rows, cols]


def rotate_degrees(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate image i by degrees[i] counter-clockwise (as displayed, row 0 on top) about its
    center; bilinear, border padding. Correct for non-square images (pixel-space rotation)."""
    n, _, h, w = x.shape
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    angle = degrees.to(device=x.device, dtype=work.dtype) * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(angle)
    # output (u, v) in normalized coordinates samples the input at R(-angle) (u, v) in pixels;
    # with y pointing down, a counter-clockwise turn on screen is this matrix
    theta = torch.stack(
        [
            torch.stack([cos, -sin * (h / w), zero], dim=1),
            torch.stack([sin * (w / h), cos, zero], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, [n, x.shape[1], h, w], align_corners=False)
    out = F.grid_sample(work, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.to(x.dtype)


def adjust_color(
    x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor
) -> torch.Tensor:
    """Add brightness (N,), blend with luma by saturation (N,) when RGB, scale about the
    image mean by contrast (N,); clamped to [-1, 1]."""
    view = (-1, 1, 1, 1)
    x = x + brightness.to(x.device, x.dtype).view(view)
    if x.shape[1] == 3:
        weights = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        gray = (x * weights).sum(dim=1, keepdim=True)
        x = gray + (x - gray) * saturation.to(x.device, x.dtype).view(view)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * contrast.to(x.device, x.dtype).view(view)
    return x.clamp(-1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# random ops: draw the parameters, apply the kernel


def flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability FLIP_P."""
    return flip_images(x, torch.rand(x.shape[0], generator=generator) < FLIP_P)


def crop_pad(height: int) -> int:
    """Reflection pad (= largest shift) of `crop` at this image height: max(1, H // 8)."""
    return max(1, height // 8)


def crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Reflection-pad by crop_pad(H) and crop back at a random offset (a random translation)."""
    pad = crop_pad(x.shape[2])
    shifts = torch.randint(-pad, pad + 1, (2, x.shape[0]), generator=generator)
    return translate(x, shifts[0], shifts[1], pad)


def jitter_size(height: int) -> int:
    """The load size `jitter` resizes to before cropping back: round(H * 286 / 256)."""
    return max(height + 1, round(height * JITTER_LOAD))


def jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """pix2pix's random jitter: resize (bilinear) to jitter_size(H), crop H x W at a random
    offset per image."""
    n, _, h, w = x.shape
    size = jitter_size(h)
    big = F.interpolate(x, size=(size, size * w // h), mode="bilinear", align_corners=False)
    dy = torch.randint(0, big.shape[2] - h + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, big.shape[3] - w + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (N, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (N, 1, W)
    picked = big[torch.arange(n, device=x.device)[:, None, None], :, rows, cols]  # N,H,W,C
    return picked.permute(0, 3, 1, 2).contiguous()


def rotate(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotate each image by an angle uniform in [-MAX_DEGREES, MAX_DEGREES]."""
    return rotate_degrees(x, uniform(x.shape[0], -MAX_DEGREES, MAX_DEGREES, generator))


def color(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random brightness, saturation (RGB only) and contrast; clamped to [-1, 1].

    The saturation factor is drawn for gray images too (and unused), so the draws that follow
    do not depend on the channel count.
    """
    n = x.shape[0]
    brightness = uniform(n, -BRIGHTNESS, BRIGHTNESS, generator)
    saturation = uniform(n, *SATURATION, generator)
    contrast = uniform(n, *CONTRAST, generator)
    return adjust_color(x, brightness, contrast, saturation)


OPS = {"jitter": jitter, "flip": flip, "crop": crop, "rotate": rotate, "color": color}


def augment_pair(
    x: torch.Tensor, x_b: torch.Tensor, ops: list[str], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same augmentation for both images of each pair (one draw; channels stacked)."""
    both = augment_images(torch.cat([x, x_b], dim=1), ops, generator)
    return both[:, : x.shape[1]], both[:, x.shape[1] :]


def augment_images(x: torch.Tensor, ops: list[str], generator: torch.Generator) -> torch.Tensor:
    """Apply the named ops (a subset of AUGMENTS) to images in [-1, 1], in AUGMENTS order.

    Each named op runs once; an empty list returns x itself. The result is on x's device, in
    x's dtype, clamped to [-1, 1].
    """
    for op in ops:
        if op not in OPS:
            raise unknown_name(
                "data.augment op", op, list(AUGMENTS), "Set data.augment to a list of those."
            )
    check_batch(x)
    check_generator(generator)
    if not ops or x.shape[0] == 0:
        return x
    for name in AUGMENTS:
        if name in ops:
            x = OPS[name](x, generator)
    return x.clamp(-1.0, 1.0)
