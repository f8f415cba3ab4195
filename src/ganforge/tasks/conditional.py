"""Class-conditional GANs: G(z, y) makes an example of class y, D judges (x, y) pairs.

How the label enters the nets is `model.condition` (nets/conditional.py):
- concat: one-hot y joined to z and to D's input (Mirza & Osindero 2014);
- projection: conditional BatchNorm in G, a class-embedding projection in D's score
  (Miyato & Koyama 2018);
- acgan: y joined to z; D scores x alone and also classifies it, and both G and D are trained
  on a class loss, weighted by loss.class_weight (Odena et al. 2017, eq. 2-3).
Fake examples take the labels of the real batch, so D sees both sides with the same classes.
Sampling switches modes: one class, several, or one row per class (`ganforge sample --class`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge import nets
from ganforge.config import Config
from ganforge.data.dataset import DataInfo
from ganforge.errors import GanforgeError
from ganforge.tasks.adversarial import AdversarialTask, Cond, Outputs
from ganforge.tasks.base import Batch, resolve_hyper
from ganforge.tasks.sampling import Drawn, Sampler, data_edge, generate


class ClassSampler(Sampler):
    """A class-conditional generator: request {"class": "Sandal,3"} or {"class": "all"}."""

    options = ("class",)
    flags = ("--class",)

    @property
    def class_names(self) -> list[str]:
        """Names of the classes, in label order."""
        return list(self.info.class_names or range(self.info.num_classes))

    def parse_classes(self, text: str) -> list[int]:
        """'all', or a comma list of class names (any case) or indices -> class indices."""
        names = [str(name) for name in self.class_names]
        if text.strip().lower() == "all":
            return list(range(len(names)))
        lookup = {name.lower(): i for i, name in enumerate(names)}
        classes = []
        for item in (part.strip() for part in str(text).split(",")):
            if item.lower() in lookup:
                classes.append(lookup[item.lower()])
            elif item.lstrip("-").isdigit():
                index = int(item)
                if not 0 <= index < len(names):
                    raise GanforgeError(
                        f"--class {index} is out of range: this run has {len(names)} classes, "
                        f"indices 0 to {len(names) - 1} ({', '.join(names)})."
                    )
                classes.append(index)
            else:
                raise GanforgeError(
                    f"--class '{item}' is not a class of this run. Valid classes: "
                    f"{', '.join(names)} (names or indices 0-{len(names) - 1}, a comma list, "
                    "or 'all' for one row per class)."
                )
        return classes

    def labels_for(self, request: dict[str, Any], n: int, generator: torch.Generator):
        """(labels, images per row): n per requested class in rows, else n uniform labels."""
        if "class" in request:
            classes = torch.tensor(self.parse_classes(str(request["class"])))
            return classes.repeat_interleave(n), (n if len(classes) > 1 else None)
        return torch.randint(self.info.num_classes, (n,), generator=generator), None

    def draw(self, n: int, seed: int, request: dict[str, Any] | None = None) -> Drawn:
        """n samples per requested class (one row each), or n samples of uniform classes.

        z is drawn first from the seeded generator, then (without --class) the labels, so the
        same seed gives the same codes whichever classes are asked for.
        """
        request = self.check_request(request)
        generator = torch.Generator().manual_seed(seed)
        if "class" in request:
            labels, nrow = self.labels_for(request, n, generator)
            z = self.noise(n, generator).repeat(labels.shape[0] // n, 1)
        else:
            z = self.noise(n, generator)
            labels, nrow = self.labels_for(request, n, generator)
        return Drawn(generate(self.G, z, labels, device=self.device), labels, nrow)

    def eval_labels(self, n: int, seed: int, mode: str) -> torch.Tensor:
        """n labels for evaluation: balanced (n/K each, the remainder to the first classes,
        shuffled) for 'uniform', drawn from the training class frequencies for 'data'."""
        generator = torch.Generator().manual_seed(seed)
        k = self.info.num_classes
        if mode == "data" and self.info.class_counts:
            weights = torch.tensor(self.info.class_counts, dtype=torch.float64)
            return torch.multinomial(weights, n, replacement=True, generator=generator)
        return (torch.arange(n) % k)[torch.randperm(n, generator=generator)]

    def generate_for(self, labels: torch.Tensor, seed: int) -> torch.Tensor:
        """One model-scale sample per requested label, z seeded by `seed`."""
        z = self.noise(labels.shape[0], torch.Generator().manual_seed(seed))
        return generate(self.G, z, labels, device=self.device)

    def eval_fn(self, labels: str = "uniform"):
        """fake(n, seed) -> (samples at the metric edge, their requested labels)."""

        def fake(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
            y = self.eval_labels(n, seed, labels)
            return data_edge(self.generate_for(y, seed), self.kind), y

        fake.description = self.describe()  # type: ignore[attr-defined]
        fake.label_description = (  # type: ignore[attr-defined]
            "data: drawn from the training class frequencies"
            if labels == "data" and self.info.class_counts
            else f"uniform: n/{self.info.num_classes} per class (balanced), shuffled"
        )
        return fake

    def labelled_fn(self):
        """fake_labelled(labels, seed) -> uint8 images of those classes (for CAS)."""
        return lambda labels, seed: data_edge(self.generate_for(labels, seed), self.kind)


class ConditionalTask(AdversarialTask):
    """G(z, y) against D(x, y) under the configured loss and conditioning."""

    name = "conditional"
    needs = ("x", "y")
    sampler_class = ClassSampler

    @classmethod
    def build_nets(cls, config: Config, info: DataInfo) -> tuple[nn.Module, nn.Module]:
        """The configured architecture, conditioned on info.num_classes classes."""
        if not info.num_classes or info.num_classes < 2:
            raise GanforgeError(
                f"task.name=conditional needs at least two classes; data.source "
                f"'{info.name}' has {info.num_classes or 0}."
            )
        hyper = resolve_hyper(config, info.kind)
        return nets.build_nets(
            config.model, info.shape, d_norm=hyper.d_norm, out_act=hyper.out_act,
            num_classes=info.num_classes, condition=config.model.condition,
        )

    @property
    def classifies(self) -> bool:
        """True when D has an auxiliary classifier (AC-GAN)."""
        return bool(getattr(self.D, "has_classifier", False))

    def conditioning(self, batch: Batch) -> Cond:
        """The real batch's labels, for the real and the fake side alike."""
        return (batch["y"],)

    def discriminate(self, x: torch.Tensor, cond: Cond) -> Outputs:
        """Scores of (x, y); with AC-GAN also D's class logits from the same features."""
        if not self.classifies:
            return self.D(x, *cond), None
        features = self.D.features(x, *cond)
        return self.D.score(features, *cond), self.D.class_logits(features)

    def extra_d_loss(
        self, batch: Batch, real: Outputs, fake: Outputs, cond: Cond, fake_cond: Cond
    ) -> dict[str, torch.Tensor]:
        """AC-GAN: D learns to classify real and fake examples (Odena et al. 2017, L_C)."""
        if not self.classifies:
            return {}
        class_loss = F.cross_entropy(real[1], cond[0]) + F.cross_entropy(fake[1], fake_cond[0])
        return {"d_class": self.config.loss.class_weight * class_loss}

    def extra_g_loss(self, fake: Outputs, cond: Cond) -> dict[str, torch.Tensor]:
        """AC-GAN: G's examples must be classified as the class asked for."""
        if not self.classifies:
            return {}
        (y,) = cond
        return {"g_class": self.config.loss.class_weight * F.cross_entropy(fake[1], y)}

    def fixed_inputs(self, n: int, generator: torch.Generator) -> Batch:
        """One grid row per class; column j uses the same z in every row."""
        classes = self.info.num_classes
        columns = max(1, n // classes)
        z = torch.randn(columns, self.config.model.z_dim, generator=generator)
        return {
            "z": z.repeat(classes, 1),
            "y": torch.arange(classes).repeat_interleave(columns),
        }

    def grid(self, inputs: Batch) -> tuple[torch.Tensor, int | None]:
        """G's samples for the fixed codes and classes, one row per class."""
        x = generate(self.sampling_G, inputs["z"], inputs["y"], device=self.device)
        return x, inputs["z"].shape[0] // self.info.num_classes
