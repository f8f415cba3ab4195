"""Adversarial losses as pure functions of discriminator outputs.

Every function takes raw scores (logits, any shape, usually (N,)) and returns the mean loss, a
scalar. Sigmoid-based losses use softplus, never log(sigmoid(x)), so they stay finite for
logits of any size:  -log(sigmoid(x)) = softplus(-x)  and  -log(1 - sigmoid(x)) = softplus(x).

Adding a loss is one pair of functions and one `LossSpec` entry in `LOSSES`.

Training defaults of each registered loss, and where they come from:
- minimax, non-saturating, lsgan, hinge: Adam, lr 2e-4, betas (0.5, 0.999), n_critic 1
  (Radford et al. 2016, DCGAN, sec. 4; for hinge also Miyato et al. 2018, setting C, Table 1).
- wgan: RMSprop, lr 5e-5, n_critic 5, weight clip 0.01 (Arjovsky et al. 2017, Algorithm 1).
- wgan-gp: Adam, lr 1e-4, betas (0.0, 0.9), n_critic 5, penalty weight lambda 10, no batchnorm
  in the critic, hence d_norm "layer" (Gulrajani et al. 2017, Algorithm 1 and sec. 4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor
from torch.nn.functional import relu, softplus

from ganforge.errors import unknown_name

# ---------------------------------------------------------------------------------------------
# the losses


def minimax_d_loss(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """D of Goodfellow et al. (2014): -E[log D(x)] - E[log(1 - D(G(z)))], D = sigmoid(score).

    real_target < 1 is one-sided label smoothing (Salimans et al. 2016, sec. 3.4): the real
    term becomes the cross-entropy against t, -t log D(x) - (1 - t) log(1 - D(x)).
    """
    loss = real_target * softplus(-real).mean() + softplus(fake).mean()
    if real_target < 1:
        loss = loss + (1 - real_target) * softplus(real).mean()
    return loss


def minimax_g_loss(fake: Tensor) -> Tensor:
    """G of the original minimax game: E[log(1 - D(G(z)))]; saturates when D wins."""
    return -softplus(fake).mean()


def nonsaturating_g_loss(fake: Tensor) -> Tensor:
    """G of the non-saturating game (Goodfellow et al. 2014, sec. 3): -E[log D(G(z))]."""
    return softplus(-fake).mean()


def lsgan_d_loss(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """D of LSGAN (Mao et al. 2017, a=0, b=1): 0.5 E[(D(x) - b)^2] + 0.5 E[D(G(z))^2].

    real_target < 1 is one-sided label smoothing: b = real_target.
    """
    return 0.5 * (real - real_target).pow(2).mean() + 0.5 * fake.pow(2).mean()


def lsgan_g_loss(fake: Tensor) -> Tensor:
    """G of LSGAN (c=1): 0.5 E[(D(G(z)) - 1)^2]."""
    return 0.5 * (fake - 1).pow(2).mean()


def wgan_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Critic of WGAN (Arjovsky et al. 2017): E[D(G(z))] - E[D(x)] (negated W-distance)."""
    return fake.mean() - real.mean()


def wgan_g_loss(fake: Tensor) -> Tensor:
    """G of WGAN: -E[D(G(z))]."""
    return -fake.mean()


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """D of the hinge loss (Lim & Ye 2017): E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return relu(1 - real).mean() + relu(1 + fake).mean()


def hinge_g_loss(fake: Tensor) -> Tensor:
    """G of the hinge loss (Miyato et al. 2018): -E[D(G(z))]."""
    return -fake.mean()


# ---------------------------------------------------------------------------------------------
# the registry


@dataclass(frozen=True)
class LossSpec:
    """One adversarial loss with the training defaults of the paper that introduced it."""

    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]  # (real_scores, fake_scores) -> scalar
    g_loss: Callable[[Tensor], Tensor]  # fake_scores -> scalar
    optimizer: str  # "adam" or "rmsprop"
    lr: float
    betas: tuple[float, float]  # ignored for rmsprop
    n_critic: int  # D steps per G step
    gp_weight: float  # weight of penalties.gradient_penalty; 0.0 when the loss has none
    clip: float | None  # clip D's weights to [-clip, clip] after each D step (wgan only)
    d_norm: str  # recommended D normalization: "batch", or "layer" when a GP is used
    reference: str  # paper citation, one line
    smoothable: bool = False  # d_loss takes real_target (one-sided label smoothing)
    decision: float = 0.0  # score where D's verdict flips from fake to real (for its accuracy)


# Adam 2e-4, betas (0.5, 0.999), one D step per G step: Radford et al. 2016 (DCGAN), sec. 4.
_DCGAN_ADAM = {"optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999), "n_critic": 1}
_NO_EXTRAS = {"gp_weight": 0.0, "clip": None, "d_norm": "batch"}

LOSSES: dict[str, LossSpec] = {
    "minimax": LossSpec(
        "minimax", minimax_d_loss, minimax_g_loss, **_DCGAN_ADAM, **_NO_EXTRAS, smoothable=True,
        reference="Goodfellow et al. 2014, Generative Adversarial Nets, NeurIPS (eq. 1)",
    ),
    "non-saturating": LossSpec(
        "non-saturating", minimax_d_loss, nonsaturating_g_loss, **_DCGAN_ADAM, **_NO_EXTRAS,
        smoothable=True,
        reference="Goodfellow et al. 2014, Generative Adversarial Nets, NeurIPS (sec. 3)",
    ),
    "lsgan": LossSpec(
        "lsgan", lsgan_d_loss, lsgan_g_loss, **_DCGAN_ADAM, **_NO_EXTRAS, smoothable=True,
        decision=0.5,
        reference="Mao et al. 2017, Least Squares Generative Adversarial Networks, ICCV",
    ),
    # RMSprop lr 5e-5, n_critic 5, clip 0.01: Arjovsky et al. 2017, Algorithm 1 defaults.
    "wgan": LossSpec(
        "wgan", wgan_d_loss, wgan_g_loss, optimizer="rmsprop", lr=5e-5, betas=(0.5, 0.999),
        n_critic=5, gp_weight=0.0, clip=0.01, d_norm="batch",
        reference="Arjovsky, Chintala & Bottou 2017, Wasserstein GAN, ICML (Algorithm 1)",
    ),
    # lambda 10, Adam lr 1e-4, betas (0, 0.9), n_critic 5, no batchnorm in the critic (the
    # penalty is per sample, batchnorm mixes samples): Gulrajani et al. 2017, Algorithm 1, sec. 4.
    "wgan-gp": LossSpec(
        "wgan-gp", wgan_d_loss, wgan_g_loss, optimizer="adam", lr=1e-4, betas=(0.0, 0.9),
        n_critic=5, gp_weight=10.0, clip=None, d_norm="layer",
        reference="Gulrajani et al. 2017, Improved Training of Wasserstein GANs, NeurIPS",
    ),
    # Adam 2e-4, betas (0.5, 0.999), n_dis 1: Miyato et al. 2018, setting C of Table 1.
    "hinge": LossSpec(
        "hinge", hinge_d_loss, hinge_g_loss, **_DCGAN_ADAM, **_NO_EXTRAS,
        reference="Lim & Ye 2017, Geometric GAN; Miyato et al. 2018, Spectral Normalization, ICLR",
    ),
}


def get_loss(name: str) -> LossSpec:
    """The registered loss called `name`, or a GanforgeError that lists the choices."""
    if name in LOSSES:
        return LOSSES[name]
    raise unknown_name("loss", name, list(LOSSES), "Set loss.name.")


@dataclass(frozen=True)
class MixedLoss:
    """A weighted sum of adversarial losses on the same scores (e.g. non-saturating + 0.5 LSGAN).

    The first part is the main loss (weight 1; its training defaults apply); each part's
    d_loss and g_loss are added with its weight. real_target reaches every part's d_loss.
    """

    parts: tuple[tuple[LossSpec, float], ...]

    @property
    def decision(self) -> float:
        """The main loss's decision score (D's accuracy is judged as under it)."""
        return self.parts[0][0].decision

    def d_loss(self, real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
        """Sum of weight * d_loss over the parts."""
        extra = {"real_target": real_target} if real_target < 1 else {}
        return sum(w * spec.d_loss(real, fake, **extra) for spec, w in self.parts)

    def g_loss(self, fake: Tensor) -> Tensor:
        """Sum of weight * g_loss over the parts."""
        return sum(w * spec.g_loss(fake) for spec, w in self.parts)


def adversarial_loss(name: str, mix: list[tuple[str, float]]) -> LossSpec | MixedLoss:
    """loss.name alone, or loss.name plus the weighted loss.mix parts."""
    main = get_loss(name)
    if not mix:
        return main
    return MixedLoss(((main, 1.0), *((get_loss(n), w) for n, w in mix)))
