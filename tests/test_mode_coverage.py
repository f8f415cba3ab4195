"""A GAN must actually learn: the shipped ring8 config covers the ring on a short CPU run.

Protocol (DESIGN.md, PacGAN): 2,500 samples; a sample is high quality within 3 sigma of its
nearest mode; a mode is covered when it has a high-quality sample.
"""

import pytest

from ganforge import config as configlib
from ganforge.metrics.evaluate import evaluate
from ganforge.training.generator import load_run
from ganforge.training.loop import train


@pytest.mark.slow
def test_mlp_gan_covers_ring8(tmp_path):
    config = configlib.load("configs/ring8.yaml", ["log.progress=false"])
    train(config, tmp_path / "ring8", progress=False)
    loaded = load_run(tmp_path / "ring8")
    result = evaluate(loaded.sampler.eval_fn(), against="ring8", metrics=["modes"],
                      progress=False)
    assert result["protocol"]["n_fake"] == 2500
    assert result["modes_covered"] >= 7, result
    assert result["hq_percent"] >= 80.0, result
