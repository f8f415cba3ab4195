"""Text-conditioned nets: the encoder, conditioning augmentation, word attention, G and D."""

import dataclasses

import pytest
import torch
from torch import nn

from ganforge.config import ModelConfig
from ganforge.errors import GanforgeError
from ganforge.nets import build_text_nets
from ganforge.nets.conditional import ConditionalBatchNorm
from ganforge.nets.dcgan import DCGANGenerator
from ganforge.nets.mlp import MLPGenerator
from ganforge.nets.text import ConditioningAugmentation, WordAttention
from ganforge.nets.text_encoder import TextEncoder
from ganforge.penalties import ca_kl


def tokens_batch() -> torch.Tensor:
    """Three captions of 3, 5 and 1 words, padded to 6."""
    return torch.tensor([[5, 6, 7, 0, 0, 0], [2, 3, 4, 5, 6, 0], [9, 0, 0, 0, 0, 0]])


def test_encoder_ignores_padding_and_keeps_word_features():
    torch.manual_seed(0)
    encoder = TextEncoder(vocab_size=10, embed_dim=8, out_dim=12)
    tokens = tokens_batch()
    out = encoder(tokens)
    assert out.sentence.shape == (3, 12) and out.words.shape == (3, 12, 6)
    assert out.mask.tolist()[0] == [True, True, True, False, False, False]
    assert (out.words[0, :, 3:] == 0).all()  # padding carries nothing
    longer = torch.cat([tokens, torch.zeros(3, 4, dtype=torch.long)], 1)
    # more padding changes nothing: pooling is over real words only
    torch.testing.assert_close(encoder(longer).sentence, out.sentence)


def test_ca_kl_matches_closed_form():
    mu = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, 1.0], [-1.0, 0.5]])
    by_hand = 0.0
    for m, lv in zip(mu.flatten().tolist(), logvar.flatten().tolist(), strict=True):
        var = torch.tensor(lv).exp().item()
        by_hand += 0.5 * (m * m + var - 1 - lv)  # KL(N(m, var) || N(0, 1)) per entry
    assert ca_kl(mu, logvar).item() == pytest.approx(by_hand / 4, rel=1e-6)
    assert ca_kl(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_ca_kl_pulls_the_gaussian_to_standard_normal():
    torch.manual_seed(0)
    ca = ConditioningAugmentation(text_dim=6, c_dim=4)
    sentence = torch.randn(32, 6)
    opt = torch.optim.SGD(ca.parameters(), lr=0.5)
    first = None
    for _ in range(100):
        loss = ca_kl(*ca(sentence))
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first


def test_attention_sums_to_one_over_real_words_only():
    torch.manual_seed(0)
    attention = WordAttention(channels=4, word_dim=5)
    h = torch.randn(3, 4, 2, 3)  # 6 positions
    words = torch.randn(3, 5, 6)
    mask = tokens_batch() != 0
    weights, _ = attention.weights(h, words, mask)
    assert weights.shape == (3, 6, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 6))
    assert (weights[~mask.unsqueeze(1).expand_as(weights)] == 0).all()
    assert (weights[2, :, 0] == 1).all()  # a one-word caption: all weight on that word
    context = attention(h, words, mask)
    assert context.shape == h.shape
    # the context at a position is the attention-weighted sum of the projected words
    keys = attention.project(words)
    expected = keys[1] @ weights[1, 4]
    torch.testing.assert_close(context[1].flatten(1)[:, 4], expected)


@pytest.mark.parametrize("arch,shape", [("mlp", (1, 8, 8)), ("dcgan", (1, 16, 16))])
def test_stem_then_tail_is_the_generator(arch, shape):
    torch.manual_seed(0)
    if arch == "mlp":
        g = MLPGenerator(6, [16, 32], shape, "tanh")
    else:
        g = DCGANGenerator(6, 1, 16, 8, "tanh")
    g.eval()
    z = torch.randn(4, 6)
    torch.testing.assert_close(g.tail(g.stem(z)), g(z))


def config(**changes) -> ModelConfig:
    base = ModelConfig(arch="dcgan", z_dim=8, g_width=8, d_width=8, text_dim=12, c_dim=4)
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
@pytest.mark.parametrize("attention", [False, True])
def test_text_nets_shapes_and_caption_dependence(arch, attention):
    torch.manual_seed(0)
    cfg = config(arch=arch, attention=attention, g_hidden=[32, 32], d_hidden=[32])
    G, D = build_text_nets(cfg, (1, 16, 16), d_norm="none", out_act="tanh", text_dim=12,
                           vocab_size=10)
    assert G.z_dim == 8 + 4
    tokens = tokens_batch()
    text = D.encode(tokens)
    z = torch.randn(1, G.z_dim).repeat(3, 1)
    G.eval()
    cond = (text.sentence, text.words, text.mask) if attention else (text.sentence,)
    x = G(z, *cond)
    assert x.shape == (3, 1, 16, 16)
    assert (x[0] - x[1]).abs().max() > 1e-3 * x.abs().max()  # same z, other caption
    scores = D(x, text.sentence)
    assert scores.shape == (3,)
    # D's score depends on the caption: the same image with another caption scores otherwise
    image = torch.rand(1, 1, 16, 16) * 2 - 1
    scores = D(image.repeat(3, 1, 1, 1), text.sentence)
    assert (scores.diff().abs() > 1e-3 * scores.abs().max()).all()


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_affine_fusion_feeds_the_text_code_to_every_batchnorm_of_g(arch):
    torch.manual_seed(0)
    cfg = config(arch=arch, text_fusion="affine", g_hidden=[32, 32], d_hidden=[32])
    G, D = build_text_nets(cfg, (1, 16, 16), d_norm="none", out_act="tanh", text_dim=12,
                           vocab_size=10)
    plain, _ = build_text_nets(dataclasses.replace(cfg, text_fusion="input"), (1, 16, 16),
                               d_norm="none", out_act="tanh", text_dim=12, vocab_size=10)
    norms = [m for m in plain.base.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    fused = [m for m in G.base.modules() if isinstance(m, ConditionalBatchNorm)]
    assert norms and len(fused) == len(norms)  # every BatchNorm, none left plain
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine
                   for m in G.base.modules())
    z, sentence = torch.randn(6, G.z_dim), D.encode(tokens_batch().repeat(2, 1)).sentence
    seen = []
    fused[0].register_forward_hook(lambda layer, inputs, out: seen.append(layer.labels))
    G(z, sentence.detach()).square().mean().backward()
    c = G.code(z, sentence.detach())[0][:, cfg.z_dim:]  # CA's draw, not the image noise
    torch.testing.assert_close(seen[0], c)
    for layer in fused:  # the bound code (c, c_dim wide) reached every layer's scale and shift
        assert layer.gamma.weight.grad.abs().sum() > 0 and layer.beta.weight.grad.abs().sum() > 0
        assert layer.labels is None  # unbound after the call


def test_affine_fusion_needs_batchnorm_in_g():
    cfg = config(arch="mlp", text_fusion="affine", g_norm="none", g_hidden=[16])
    with pytest.raises(GanforgeError, match="text_fusion=input"):
        build_text_nets(cfg, (1, 8, 8), d_norm="none", out_act="tanh", text_dim=12,
                        vocab_size=10)


def test_attention_words_change_the_image_and_their_mask_matters():
    torch.manual_seed(0)
    G, D = build_text_nets(config(attention=True), (1, 16, 16), d_norm="none",
                           out_act="tanh", text_dim=12, vocab_size=10)
    G.eval()
    text = D.encode(tokens_batch())
    z = torch.randn(3, G.z_dim)
    base = G(z, text.sentence, text.words, text.mask)
    other_words = G(z, text.sentence, text.words.flip(0), text.mask.flip(0))
    assert (base - other_words).abs().max() > 0.01 * base.abs().max()
    noisy = text.words.clone()
    noisy[~text.mask.unsqueeze(1).expand_as(noisy)] = 50.0  # garbage in the padding
    torch.testing.assert_close(G(z, text.sentence, noisy, text.mask), base)


def test_attention_needs_words_and_a_splittable_g():
    with pytest.raises(GanforgeError, match="model.attention"):
        build_text_nets(config(attention=True), (1, 16, 16), d_norm="none", out_act="tanh",
                        text_dim=384, vocab_size=None)
    with pytest.raises(GanforgeError, match="model.attention"):
        build_text_nets(config(attention=True, arch="resnet"), (1, 16, 16), d_norm="none",
                        out_act="tanh", text_dim=12, vocab_size=10)
    with pytest.raises(GanforgeError, match="model.pack"):
        build_text_nets(config(pack=2), (1, 16, 16), d_norm="none", out_act="tanh",
                        text_dim=12, vocab_size=10)


def test_conditioning_augmentation_uses_eps_columns_of_z():
    torch.manual_seed(0)
    G, D = build_text_nets(config(), (1, 16, 16), d_norm="none", out_act="tanh",
                           text_dim=12, vocab_size=10)
    G.eval()
    sentence = D.encode(tokens_batch()).sentence
    z = torch.randn(3, G.z_dim)
    base_input, mu, logvar = G.code(z, sentence)
    eps = z[:, 8:]
    torch.testing.assert_close(base_input[:, 8:], mu + torch.exp(0.5 * logvar) * eps)
    torch.testing.assert_close(base_input[:, :8], z[:, :8])


def test_unknown_words_read_as_if_absent():
    torch.manual_seed(0)
    encoder = TextEncoder(vocab_size=10, embed_dim=8, out_dim=12)
    out = encoder(torch.tensor([[5, 1, 6, 7]]))  # "w5 <unk> w6 w7"
    assert out.mask.tolist() == [[True, False, True, True]]
    assert (out.words[0, :, 1] == 0).all()  # pooled as a gap, like padding
    assert not torch.allclose(encoder(torch.tensor([[5, 2, 6, 7]])).sentence, out.sentence)
    assert torch.isfinite(encoder(torch.tensor([[1, 1, 0, 0]])).sentence).all()
