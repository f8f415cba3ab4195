"""The task interface: a kind of GAN is one module plus one registry line.

The tiny task below lives only in this file. Registering it is all it takes for the shared
loop, checkpoints, exact resume and `ganforge sample` to work with it: no edit to training/
or cli.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganforge import config as configlib
from ganforge import tasks
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.tasks.base import Task, resolve_hyper
from ganforge.tasks.sampling import Sampler, generate
from ganforge.training import checkpoint
from ganforge.training.loop import resume, train


class LinearG(nn.Module):
    """z -> an affine map of z (a Gaussian G)."""

    def __init__(self, z_dim: int, out: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.linear = nn.Linear(z_dim, out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)


class MomentTask(Task):
    """A toy kind of GAN: a quadratic critic D, G trained to raise D on its samples.

    It keeps a step counter as extra state, so the test also proves that task state beyond
    nets and optimizers is checkpointed and restored.
    """

    name = "moment-test"
    needs = ("x",)

    def __init__(self, config, info, device, noise) -> None:
        super().__init__(config, info, device, noise)
        self.hyper = resolve_hyper(config, info.kind)
        self.G = LinearG(config.model.z_dim, info.shape[0])
        self.D = nn.Sequential(nn.Linear(info.shape[0], 8), nn.Tanh(), nn.Linear(8, 1))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=1e-2)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=1e-2)
        self.d_steps = torch.zeros((), dtype=torch.int64)

    def modules(self):
        return {"G": self.G, "D": self.D}

    def optimizers(self):
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def state_tensors(self):
        return {"d_steps": self.d_steps}

    def load_state_tensors(self, tensors):
        self.d_steps = tensors["d_steps"].clone()

    def fake(self, n: int) -> torch.Tensor:
        return self.G(torch.randn(n, self.G.z_dim, generator=self.noise))

    def d_step(self, batch, keep_fake_for_g):
        real, fake = batch["x"], self.fake(batch["x"].shape[0]).detach()
        loss = (self.D(fake) - self.D(real)).mean() + 0.1 * self.D(real).pow(2).mean()
        self.opt_d.zero_grad()
        loss.backward()
        self.opt_d.step()
        self.d_steps += 1
        return {"d_loss": loss.detach()}

    def g_step(self, batch):
        loss = -self.D(self.fake(batch["x"].shape[0])).mean()
        self.opt_g.zero_grad()
        loss.backward()
        self.opt_g.step()
        return {"g_loss": loss.detach()}

    def fixed_inputs(self, n, generator):
        return {"z": torch.randn(n, self.G.z_dim, generator=generator)}

    def grid(self, inputs):
        return generate(self.G, inputs["z"]), None

    def sampler(self):
        return Sampler(self.G, self.info, self.name)

    @classmethod
    def load_sampler(cls, config, info, states, device="cpu"):
        G = LinearG(config.model.z_dim, info.shape[0])
        G.load_state_dict(states["G"])
        return Sampler(G, info, cls.name, device)


@pytest.fixture
def moment_task(monkeypatch):
    """MomentTask registered for one test (the registry is restored afterwards)."""
    monkeypatch.setitem(tasks.TASKS, MomentTask.name, MomentTask)
    return MomentTask


TOY = [
    "task.name=moment-test", "data.source=ring8", "model.arch=mlp", "model.z_dim=4",
    "train.batch_size=32", "train.checkpoint_every=3", "train.sample_every=4", "log.every=2",
    "log.progress=false",
]


def state_of(run) -> dict[str, torch.Tensor]:
    tensors, _ = checkpoint.load(checkpoint.resolve(run))
    return tensors


def test_a_task_registered_in_a_test_trains_resumes_bitwise_and_samples(
    moment_task, tmp_path, capsys
):
    straight = configlib.load(None, [*TOY, "train.steps=10"])
    train(straight, tmp_path / "straight", progress=False)
    train(configlib.load(None, [*TOY, "train.steps=5"]), tmp_path / "split", progress=False)
    resume(tmp_path / "split", ["train.steps=10"], progress=False)
    a, b = state_of(tmp_path / "straight"), state_of(tmp_path / "split")
    assert a.keys() == b.keys() and "task.d_steps" in a
    assert int(a["task.d_steps"]) == 10  # its own state went through checkpoints
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    _, meta = checkpoint.load(checkpoint.resolve(tmp_path / "split"))
    assert meta["task"] == "moment-test"

    out = tmp_path / "s.npy"
    assert main(["sample", str(tmp_path / "split"), "-n", "7", "--out", str(out)]) == 0
    samples = np.load(out)
    # the sampler was rebuilt from the checkpoint alone: G's affine map of seeded noise
    W, bias = a["G.linear.weight"], a["G.linear.bias"]
    z = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(samples, (z @ W.T + bias).numpy(), rtol=1e-5, atol=1e-6)
    assert "step 10" in capsys.readouterr().out


def test_unknown_task_lists_the_registered_ones():
    with pytest.raises(GanforgeError, match="unconditional, conditional"):
        configlib.load(None, ["task.name=condtional"])
    with pytest.raises(GanforgeError, match="Did you mean 'conditional'"):
        configlib.load(None, ["task.name=condtional"])


def test_a_task_needing_labels_on_unlabelled_data_fails_before_writing(tmp_path):
    np.save(tmp_path / "points.npy", np.random.default_rng(0).normal(size=(200, 2)))
    config = configlib.load(None, [
        "task.name=conditional", f"data.source=npy:{tmp_path / 'points.npy'}", "model.arch=mlp",
    ])
    with pytest.raises(GanforgeError) as err:
        train(config, tmp_path / "run", progress=False)
    message = str(err.value)
    assert "'y' (class labels" in message and "npz" in message and "provides only x" in message
    assert not (tmp_path / "run").exists()
