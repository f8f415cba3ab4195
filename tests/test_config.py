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


@pytest.mark.parametrize(
    "override, key, shown",
    [
        ("eval.metrics=[fdi]", "eval.metrics", "Did you mean 'fid'"),
        ("eval.features=vgg", "eval.features", "classifier:PATH"),
        ("eval.primary=FID", "eval.primary", "Did you mean 'fid'"),
    ],
)
def test_eval_settings_are_validated_at_load(override, key, shown):
    with pytest.raises(GanforgeError) as err:
        configlib.load(None, [override])
    assert key in str(err.value) and shown in str(err.value)


def test_eval_metric_names_include_the_conditional_ones_and_n_follows_the_protocol():
    config = configlib.load(None, ["eval.metrics=[cacc, ifid, cas]", "eval.primary=cas"])
    assert config.eval.n is None  # the pinned protocol of the data kind (2,500 points in 2D)
    assert configlib.primary_score(configlib.load(None, ["eval.metrics=[modes]"]).eval) == (
        "modes_covered"
    )


def _just_outside(valid: configlib.Range) -> list:
    """Values just outside a range: at an open bound, or one step (ints) / a hair past it."""
    out = []
    for bound, is_open, sign in ((valid.low, valid.low_open, -1), (valid.high, valid.high_open, 1)):
        if bound is None:
            continue
        step = 1 if float(bound).is_integer() and abs(bound) >= 1 else 1e-9
        out.append(bound if is_open else bound + sign * step)
    return out


OUTSIDE = [(key, value) for key, valid in configlib.RANGES.items() for value in _just_outside(valid)]


@pytest.mark.parametrize("key, value", OUTSIDE, ids=[f"{k}={v}" for k, v in OUTSIDE])
def test_every_numeric_key_refuses_a_value_just_outside_its_range(key, value):
    item = int(value) if float(value).is_integer() and key not in FLOAT_KEYS else value
    shown = f"[{item}, {item}]" if key.endswith(("hidden", "betas")) else repr(item)
    with pytest.raises(GanforgeError) as err:
        configlib.load(None, [f"{key}={shown}"])
    assert f"'{key}'" in str(err.value) and "must be" in str(err.value)


FLOAT_KEYS = {"optim.g_lr", "optim.d_lr", "optim.betas", "optim.decay_start", "loss.gp_weight",
              "loss.clip", "loss.class_weight"}


def test_every_numeric_key_has_a_range():
    import typing

    numeric = set()
    for section, cls in typing.get_type_hints(configlib.Config).items():
        for name, hint in typing.get_type_hints(cls).items():
            is_number = any(t in str(hint) for t in ("int", "float"))
            if is_number and name != "channels":  # channels: a choice of 1 or 3
                numeric.add(f"{section}.{name}")
    assert numeric == set(configlib.RANGES)


@pytest.mark.parametrize("device, ok", [("cuda:1", True), ("cpu", True), ("gpu", False),
                                        ("cuda:x", False)])
def test_train_device_accepts_cuda_n(device, ok):
    if ok:
        assert configlib.load(None, [f"train.device={device}"]).train.device == device
    else:
        with pytest.raises(GanforgeError, match="cuda:N"):
            configlib.load(None, [f"train.device={device}"])


def test_pick_device_explains_a_missing_gpu():
    import torch

    from ganforge.devices import pick_device

    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(GanforgeError, match="no CUDA GPU"):
            pick_device("cuda:0")


def test_ready_configs_load_and_open_with_one_clean_comment_line():
    from pathlib import Path

    for path in sorted(Path(__file__).parent.parent.glob("configs/*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# ") and first.count("#") == 1, path.name
        configlib.load(path)
