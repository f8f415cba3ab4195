"""The labelled subset of a semi-supervised run: a few examples per class, drawn with a seed."""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


def balanced_subset(
    labels: torch.Tensor, per_class: int | None, seed: int, class_names: list[str] | None = None
) -> torch.Tensor:
    """Sorted indices of `per_class` examples of every class, drawn uniformly without
    replacement by a generator seeded with `seed`; per_class None keeps every example.

    Raises a GanforgeError naming the class when one has fewer examples than asked for.
    """
    labels = labels.cpu()
    if per_class is None:
        return torch.arange(labels.shape[0])
    generator = torch.Generator().manual_seed(seed)
    counts = torch.bincount(labels)
    names = class_names or [str(k) for k in range(len(counts))]
    chosen = []
    for k, count in enumerate(counts.tolist()):
        if count < per_class:
            raise GanforgeError(
                f"data.labels_per_class={per_class}, but class '{names[k]}' (index {k}) has "
                f"only {count} examples. Set data.labels_per_class to at most "
                f"{int(counts.min())} (the smallest class)."
            )
        members = torch.nonzero(labels == k).squeeze(1)
        chosen.append(members[torch.randperm(count, generator=generator)[:per_class]])
    return torch.sort(torch.cat(chosen)).values
