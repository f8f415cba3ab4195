"""Config: defaults, YAML + --set overrides, and errors that name the key and the choices."""

import pytest

from ganforge import config as configlib
from ganforge.errors import GanforgeError


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 10\nloss:\n  name: hinge\n")
    config = configlib.load(path, ["train.batch_size=8", "model.g_hidden=[32, 64]"])
    assert config.train.steps == 10
    assert config.train.batch_size == 8
    assert config.loss.name == "hinge"
    assert config.model.g_hidden == [32, 64]
    assert config.data.source == "fashion-mnist"  # default kept


def test_dump_round_trips(tmp_path):
    config = configlib.load(None, ["optim.betas=[0.0, 0.9]", "data.limit=100"])
    path = tmp_path / "resolved.yaml"
    path.write_text(configlib.dump(config))
    assert configlib.load(path) == config


def test_typo_in_key_suggests_nearest():
    with pytest.raises(GanforgeError) as err:
        configlib.load(None, ["train.step=5"])
    message = str(err.value)
    assert "train.step" in message and "Did you mean 'steps'" in message
    assert "batch_size" in message  # lists the valid keys


def test_unknown_section_suggests_nearest():
    with pytest.raises(GanforgeError, match="Did you mean 'optim'"):
        configlib.from_dict({"optimizer": {"g_lr": 1e-3}})


def test_bad_choice_lists_valid_choices():
    with pytest.raises(GanforgeError) as err:
        configlib.load(None, ["loss.name=wgan_gp"])
    message = str(err.value)
    assert "loss.name" in message and "wgan-gp" in message and "hinge" in message


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.steps=abc", "must be an integer"),
        ("train.steps=0", "at least 1"),
        ("data.strict=maybe", "true or false"),
        ("optim.betas=[0.5]", "two numbers"),
        ("train.steps", "key=value"),
        ("steps=3", "section.key"),
    ],
)
def test_bad_values_are_named(override, fragment):
    with pytest.raises(GanforgeError, match=fragment):
        configlib.load(None, [override])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(GanforgeError, match="does not exist"):
        configlib.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(GanforgeError, match="not valid YAML"):
        configlib.load(bad)


def test_shipped_configs_are_valid():
    from pathlib import Path

    configs = sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.yaml"))
    assert len(configs) >= 8
    for path in configs:
        configlib.load(path)


def test_none_is_a_value_and_null_is_empty():
    config = configlib.load(None, ["model.d_norm=none", "model.g_norm=none", "optim.n_critic=null"])
    assert config.model.d_norm == "none" and config.model.g_norm == "none"
    assert config.optim.n_critic is None
    with pytest.raises(GanforgeError, match="cannot be empty"):
        configlib.load(None, ["train.steps=null"])


def test_scientific_notation_without_dot(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  g_lr: 1e-4\n")
    config = configlib.load(path, ["optim.d_lr=4e-4"])
    assert config.optim.g_lr == 1e-4 and config.optim.d_lr == 4e-4
