"""`ganforge config`, --debug after the verb, and warnings for keys a run ignores."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import yaml
from torch import nn

from clihelp import run_cli
from ganforge import config as configlib
from ganforge.config_help import HELP, describe
from ganforge.errors import GanforgeError
from ganforge.training.compat import ignored_keys


def all_keys() -> set[str]:
    config = configlib.Config()
    return {
        f"{s.name}.{f.name}"
        for s in dataclasses.fields(config)
        for f in dataclasses.fields(getattr(config, s.name))
    }


def test_every_key_has_a_description():
    assert set(HELP) == all_keys()


def test_config_verb_prints_yaml_that_loads_back_with_descriptions(capsys):
    code, out, _ = run_cli(capsys, "config", "configs/ring8.yaml", "--set", "loss.name=wgan-gp")
    assert code == 0
    expected = configlib.load("configs/ring8.yaml", ["loss.name=wgan-gp"])
    assert configlib.from_dict(yaml.safe_load(out)) == expected
    line = next(x for x in out.splitlines() if x.strip().startswith("n_critic:"))
    assert "D updates per G update" in line and "-> here 5" in line  # wgan-gp's default
    assert describe(expected) == out


def test_debug_is_accepted_after_the_verb(capsys, tmp_path):
    code, _, err = run_cli(capsys, "sample", tmp_path / "none", "--out", tmp_path / "a.png")
    assert code == 2 and "does not exist" in err
    with pytest.raises(GanforgeError, match="does not exist"):  # --debug: the traceback
        run_cli(capsys, "sample", "--debug", tmp_path / "none", "--out", tmp_path / "a.png")


@pytest.mark.parametrize(
    "overrides, ignored",
    [
        ([], []),
        (["model.g_norm=none"], ["model.g_norm"]),  # dcgan has no g_norm
        (["model.arch=mlp", "model.g_width=8"], ["model.g_width"]),
        (["model.arch=mlp", "model.g_norm=none"], []),
        (["model.condition=acgan"], ["model.condition"]),  # unconditional task
        (["task.name=conditional", "loss.class_weight=2"], ["loss.class_weight"]),
        (["task.name=conditional", "model.condition=acgan", "loss.class_weight=2"], []),
        (["optim.name=rmsprop", "optim.betas=[0.1, 0.2]"], ["optim.betas"]),
        (["loss.name=wgan", "optim.betas=[0.1, 0.2]"], ["optim.betas"]),  # wgan: RMSprop
    ],
)
def test_keys_a_run_ignores_are_named(overrides, ignored):
    found = ignored_keys(configlib.load(None, overrides))
    assert [item.split(" ")[0] for item in found] == ignored


def test_training_warns_once_about_ignored_keys(tmp_path):
    from ganforge.training.loop import train

    config = configlib.load(None, [
        "data.source=ring8", "model.arch=mlp", "model.g_width=8", "model.g_hidden=[8]",
        "model.d_hidden=[8]", "train.steps=1", "train.batch_size=8", "log.progress=false",
    ])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(config, tmp_path / "run", progress=False)
    messages = [str(w.message) for w in caught if "ignored by this run" in str(w.message)]
    assert len(messages) == 1 and "model.g_width" in messages[0]


def test_dcgan_biases_are_where_the_docstring_says():
    from ganforge.config import ModelConfig
    from ganforge.nets import build_nets

    G, D = build_nets(ModelConfig(g_width=8, d_width=8), (1, 28, 28), d_norm="batch",
                      out_act="tanh")
    for net in (G, D):
        layers = list(net.modules())
        for i, layer in enumerate(layers):
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                followed_by_norm = isinstance(layers[i + 1], nn.BatchNorm2d)
                assert (layer.bias is None) == followed_by_norm, (type(net).__name__, i)
    assert D.head.bias is not None
