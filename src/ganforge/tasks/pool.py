"""CycleGAN's image pool: D is updated on a history of generated images, not only the newest
(Zhu et al. 2017, sec. 4, after Shrivastava et al. 2017), to reduce model oscillation.

For each image of a fake batch, in order: while the pool holds fewer than `size` images the
image is stored and returned; once full, with probability 1/2 a uniformly chosen stored image
is returned and the new one takes its slot, else the new image is returned (and not stored).
This is the reference's ImagePool.query; tasks/replay.py is the batch-level variant the other
tasks use. Randomness comes from the caller's CPU generator (resume is exact); the pool's
images are saved with checkpoints.
"""

from __future__ import annotations

import torch
from torch import Tensor

RETURN_PAST_P = 0.5


class ImagePool:
    """A pool of up to `size` past fakes; size 0 passes every batch through unchanged."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: Tensor | None = None  # (filled, C, H, W), detached

    @property
    def filled(self) -> int:
        """How many images the pool holds."""
        return 0 if self.images is None else int(self.images.shape[0])

    def query(self, fakes: Tensor, generator: torch.Generator) -> Tensor:
        """The batch D should see for these fakes (see the module docstring)."""
        if self.size == 0:
            return fakes
        fakes = fakes.detach()
        out = []
        for image in fakes:
            if self.filled < self.size:
                stored = image.unsqueeze(0).clone()
                self.images = stored if self.images is None else torch.cat([self.images, stored])
                out.append(image)
            elif float(torch.rand((), generator=generator)) < RETURN_PAST_P:
                slot = int(torch.randint(self.size, (), generator=generator))
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state_tensors(self) -> dict[str, Tensor]:
        """The stored images (nothing while empty)."""
        return {} if self.images is None else {"images": self.images.detach().cpu().clone()}

    def load_state_tensors(self, tensors: dict[str, Tensor], device: torch.device) -> None:
        """Restore what state_tensors returned."""
        self.images = tensors["images"].to(device) if "images" in tensors else None
