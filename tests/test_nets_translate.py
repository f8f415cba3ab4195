"""Image-to-image nets: shapes across resolutions, the PatchGAN receptive field computed from
its layers (and checked against the gradient's reach), dropout as pix2pix's noise, bad sizes."""

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.nets.translate import (
    PatchDiscriminator,
    ResnetGenerator,
    UNet,
    auto_patch_layers,
    patch_layer_specs,
    receptive_field,
)


@pytest.mark.parametrize("side", [16, 32, 64])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_generators_keep_the_image_size_and_map_channels(side, norm):
    torch.manual_seed(0)
    x = torch.randn(2, 1, side, side)
    for G in (UNet(1, 3, side, 4, norm), UNet(1, 3, side, 4, norm, skips=False),
              ResnetGenerator(1, 3, side, 4, norm, blocks=2)):
        out = G(x)
        assert out.shape == (2, 3, side, side)
        assert out.abs().max() <= 1  # tanh


def test_unet_depth_reaches_one_pixel_and_skips_add_decoder_inputs():
    unet, plain = UNet(1, 1, 32, 4), UNet(1, 1, 32, 4, skips=False)
    assert len(unet.down) == len(unet.up) == 5  # 32 -> 16 -> 8 -> 4 -> 2 -> 1
    h = torch.randn(1, 1, 32, 32)
    for block in unet.down:
        h = block(h)
    assert h.shape[-1] == 1
    # every decoder block but the innermost reads twice the channels with skips
    ins = [b[1].in_channels for b in unet.up]
    plain_ins = [b[1].in_channels for b in plain.up]
    assert ins[0] == plain_ins[0]
    assert ins[1:] == [2 * c for c in plain_ins[1:]]


def test_encoder_decoder_output_depends_on_the_input_only_through_the_bottleneck():
    """Without skips, two inputs with the same 1x1 code give the same output; with skips not."""
    torch.manual_seed(0)
    for skips, same in ((False, True), (True, False)):
        G = UNet(1, 1, 16, 4, "instance", dropout=0.0, skips=skips).eval()
        x = torch.randn(1, 1, 16, 16)
        code = x
        for block in G.down:
            code = block(code)
        pinned = code.detach()
        hooked = G.down[-1].register_forward_hook(lambda m, i, o, c=pinned: c)  # pin the code
        y = torch.randn(1, 1, 16, 16)
        outs = (G(x), G(y))
        hooked.remove()
        assert torch.allclose(*outs) == same


def test_dropout_is_the_noise_source_in_training_and_off_in_eval():
    torch.manual_seed(0)
    G = UNet(1, 1, 32, 4, dropout=0.5)
    x = torch.randn(4, 1, 32, 32)
    assert not torch.equal(G(x), G(x))  # two draws of the dropout masks
    G.eval()
    assert torch.equal(G(x), G(x))
    quiet = UNet(1, 1, 32, 4, dropout=0.0)
    assert not any(isinstance(m, torch.nn.Dropout) for m in quiet.modules())
    # dropout sits in decoder levels max(1, depth - 4) .. depth - 2: 1, 2, 3 at 32 (depth 5)
    dropped = [i for i, b in enumerate(G.up) if any(isinstance(m, torch.nn.Dropout) for m in b)]
    assert dropped == [1, 2, 3]  # G.up[k] is level depth - 1 - k


def test_receptive_field_formula_gives_the_papers_patch_sizes():
    assert [receptive_field(patch_layer_specs(n)) for n in (0, 1, 2, 3, 4)] == [
        7, 16, 34, 70, 142]  # 70x70 is the paper's PatchGAN; 1 layer: 16x16, 0: 1x1-ish 7x7
    assert auto_patch_layers(256) == 3 and auto_patch_layers(32) == 1
    assert auto_patch_layers(128) == 2  # 34 <= 64 < 70


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patch_receptive_field_matches_where_the_gradient_reaches(layers):
    """The input pixels one central output logit depends on span exactly the computed field."""
    torch.manual_seed(0)
    D = PatchDiscriminator(1, 128, 4, layers, "instance").double()
    for m in D.modules():  # instance norm mixes the whole map: measure the convs alone
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.forward = lambda x: x
    x = torch.randn(1, 1, 128, 128, dtype=torch.double, requires_grad=True)
    out = D(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    assert D.receptive_field == receptive_field(patch_layer_specs(layers))
    assert int(rows[-1] - rows[0] + 1) == int(cols[-1] - cols[0] + 1) == D.receptive_field


@pytest.mark.parametrize("side,layers,shape", [(32, 1, 14), (32, 3, 2), (64, 2, 14)])
def test_patch_output_is_a_map_of_logits(side, layers, shape):
    D = PatchDiscriminator(2, side, 4, layers)
    assert D(torch.randn(3, 2, side, side)).shape == (3, 1, shape, shape)


def test_sizes_the_nets_cannot_build_are_refused_with_the_fix():
    with pytest.raises(GanforgeError, match="power of two.*data.resolution"):
        UNet(1, 1, 24, 4)
    with pytest.raises(GanforgeError, match="divisible by 4"):
        ResnetGenerator(1, 1, 30, 4)
    with pytest.raises(GanforgeError, match="patch_layers=4.*at most 3"):
        PatchDiscriminator(1, 32, 4, 4)
