"""Text-to-image: G(z, caption) makes an image of the caption, D judges (image, caption) pairs.

One D phase and one G phase (tasks/adversarial.py) with the caption as the condition:
- each image's caption for this step is drawn at random among its captions (seeded);
- the caption is encoded by the trainable encoder inside D (model.text_encoder=trainable; D's
  loss trains it, G reads its codes detached) or by the frozen pretrained sentence encoder;
- G reads the code through conditioning augmentation (StackGAN), and optionally attends over
  the caption's words (model.attention, AttnGAN); its KL term is weighted by loss.kl_weight;
- matching-aware D (loss.mismatch, GAN-CLS, Reed et al. 2016): real images with another
  image's caption count as fake, D's loss = d_loss(real, [fake, mismatched]) so that the fake
  and mismatched halves share the fake weight, as in Reed et al.'s L_D. A "mismatched"
  caption identical to the image's own is left out;
- GAN-INT (loss.interpolate_text > 0): G's loss also scores images made from midpoints of two
  captions' codes, which D judges against those midpoints (Reed et al. 2016, sec. 4.3).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ganforge import nets
from ganforge.config import Config
from ganforge.data.dataset import DataInfo
from ganforge.errors import GanforgeError
from ganforge.nets.text_encoder import PAD, EncodedText
from ganforge.penalties import ca_kl
from ganforge.tasks.adversarial import AdversarialTask, Cond, Outputs
from ganforge.tasks.base import Batch, Stats, resolve_hyper
from ganforge.tasks.sampling import Drawn, Sampler, data_edge
from ganforge.text.vocab import Vocabulary, words

GRID_ROWS = 8  # captions shown in the training sample grid, one row each
PRETRAINED_DIM = 384  # all-MiniLM-L6-v2's sentence code


def as_cond(encoded: EncodedText) -> Cond:
    """The condition tuple G and D read: (sentence,) or (sentence, words, mask)."""
    if encoded.words is None:
        return (encoded.sentence,)
    return (encoded.sentence, encoded.words, encoded.mask)


def detached(cond: Cond) -> Cond:
    """The same condition cut from the encoder's graph (what G reads)."""
    return tuple(c.detach() for c in cond)


class TextCodes:
    """Captions -> EncodedText for one run: tokenizes with the run's vocabulary, then encodes
    with D's trainable encoder or the frozen pretrained one (which reads the words as text)."""

    def __init__(self, config: Config, info: DataInfo, device: torch.device | str) -> None:
        if not info.vocabulary:
            raise GanforgeError(
                f"task.name=text needs captions; data.source '{info.name}' has none. Use "
                "fashion-mnist-captions, or a folder:PATH with metadata.jsonl / metadata.csv "
                "(file_name, text) or a .txt caption beside each image."
            )
        self.vocabulary = Vocabulary.from_meta(info.vocabulary)
        self.max_words = int(info.max_words or config.data.max_words)
        self.device = device
        self.pretrained = None
        if config.model.text_encoder == "pretrained":
            from ganforge.text.pretrained import PretrainedTextEncoder

            self.pretrained = PretrainedTextEncoder()

    def tokenize(self, texts: list[str], warn: bool = False) -> torch.Tensor:
        """(N, max_words) token ids; with warn, a warning for cut prompts and unknown words."""
        empty = [i for i, t in enumerate(texts) if not words(t)]
        if empty:
            raise GanforgeError(
                f"Prompt {empty[0] + 1} ({texts[empty[0]]!r}) has no words. Give a "
                "description, e.g. --text \"a dark sweater\"."
            )
        tokens, unknown, cut = self.vocabulary.encode_batch(texts, self.max_words)
        if warn and cut:
            warnings.warn(
                f"{cut} prompt(s) longer than {self.max_words} words were cut to their first "
                f"{self.max_words} words (the run's data.max_words).", stacklevel=3,
            )
        if warn and unknown and self.pretrained is None:
            shown = ", ".join(repr(w) for w in unknown[:8])
            warnings.warn(
                f"{len(unknown)} word(s) never seen in this run's training captions were "
                f"read as unknown: {shown}. Use words of the training captions, or train with "
                "model.text_encoder=pretrained, which reads any word.", stacklevel=3,
            )
        return tokens

    def encode_tokens(self, tokens: torch.Tensor, D: nn.Module) -> EncodedText:
        """Token ids (N, L) on the device -> codes (trainable: D's encoder, with its graph)."""
        if self.pretrained is None:
            return D.encode(tokens.to(self.device))
        texts = [self.vocabulary.decode(row) for row in tokens.tolist()]
        return EncodedText(self.pretrained.encode(texts).to(self.device))

    def encode_texts(
        self, texts: list[str], D: nn.Module | None, warn: bool = True
    ) -> EncodedText:
        """User prompts -> codes (the pretrained encoder reads the raw text, any word)."""
        tokens = self.tokenize(texts, warn=warn)
        if self.pretrained is not None:
            return EncodedText(self.pretrained.encode(list(texts)).to(self.device))
        with torch.no_grad():
            return D.encode(tokens.to(self.device))


class TextSampler(Sampler):
    """A text-to-image generator: request {"text": [prompts]} (one grid row per prompt), and
    {"text_to": prompt, "steps": K} for a walk from the first prompt to another."""

    options = ("text", "text_to", "steps")
    flags = ("--text", "--text-file", "--text-to")

    def __init__(
        self, G: nn.Module, info: DataInfo, task: str, device: torch.device | str,
        codes: TextCodes, D: nn.Module | None,
    ) -> None:
        super().__init__(G, info, task, device)
        self.codes, self.D = codes, D

    def prompts(self, request: dict[str, Any]) -> list[str]:
        """The request's prompts as a list (a string is one prompt)."""
        text = request.get("text")
        if not text:
            raise GanforgeError(
                "This run makes images from text: give a prompt, e.g. ganforge sample RUN "
                "--text \"a dark sweater\" (or --text-file prompts.txt, one per line)."
            )
        return [text] if isinstance(text, str) else list(text)

    def encode(self, texts: list[str], warn: bool = True) -> EncodedText:
        """Prompts -> codes on the device, as G reads them (warn: about cut prompts and
        unknown words; evaluation prompts use unknown words on purpose)."""
        return self.codes.encode_texts(texts, self.D, warn)

    def generate(self, z: torch.Tensor, encoded: EncodedText) -> torch.Tensor:
        """G(z, codes) in eval mode, in chunks, on the CPU."""
        from ganforge.tasks.sampling import GENERATE_BATCH

        was_training = self.G.training
        self.G.eval()
        parts = []
        try:
            with torch.no_grad():
                for i in range(0, z.shape[0], GENERATE_BATCH):
                    rows = torch.arange(i, min(i + GENERATE_BATCH, z.shape[0]))
                    cond = as_cond(encoded.index(rows.to(encoded.sentence.device)))
                    parts.append(self.G(z[rows].to(self.device), *cond).cpu())
        finally:
            self.G.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0)

    def draw(self, n: int, seed: int, request: dict[str, Any] | None = None) -> Drawn:
        """n samples per prompt, one row each, column j with the same z in every row; with
        text_to, n rows walking from the prompt to text_to in `steps` columns."""
        request = self.check_request(request)
        texts = self.prompts(request)
        z = self.noise(n, torch.Generator().manual_seed(seed))
        if request.get("text_to"):
            return self.walk(z, texts[0], str(request["text_to"]), int(request.get("steps", 8)))
        encoded = self.encode(texts)
        rows = torch.arange(len(texts)).repeat_interleave(n).to(encoded.sentence.device)
        x = self.generate(z.repeat(len(texts), 1), encoded.index(rows))
        return Drawn(x, None, n, captions=texts)

    def walk(self, z: torch.Tensor, start: str, end: str, steps: int) -> Drawn:
        """Each z's images along the line from start's code to end's, `steps` per row (the
        word features, where G attends, switch from start's to end's halfway)."""
        if steps < 2:
            raise GanforgeError(f"--interpolate {steps}: a walk needs at least 2 steps.")
        pair = self.encode([start, end])
        t = torch.linspace(0, 1, steps, device=pair.sentence.device)
        sentence = torch.lerp(pair.sentence[0:1], pair.sentence[1:2], t.unsqueeze(1))
        half = (t >= 0.5).long()
        words = None if pair.words is None else pair.words[half]
        mask = None if pair.mask is None else pair.mask[half]
        path = EncodedText(sentence, words, mask)
        rows = torch.arange(steps, device=sentence.device).repeat(z.shape[0])
        x = self.generate(z.repeat_interleave(steps, 0), path.index(rows))
        return Drawn(x, None, steps, captions=[f"{start} -> {end}"] * z.shape[0])

    def eval_fn(self, labels: str = "uniform", prompts: Callable | None = None):
        """fake(n, seed) -> (uint8 samples, the prompts' classes or None) for metrics;
        prompts(n, seed) -> (texts, classes or None) says what to draw (tasks/text_eval)."""
        if prompts is None:
            raise GanforgeError("evaluating a text-to-image run needs prompts to draw from")
        memo: dict[tuple[int, int], Any] = {}

        def fake(n: int, seed: int):
            if (n, seed) not in memo:
                memo.clear()
                texts, classes = prompts(n, seed)
                z = self.noise(n, torch.Generator().manual_seed(seed))
                x = self.generate(z, self.encode(list(texts), warn=False))
                memo[(n, seed)] = (data_edge(x, self.kind), classes)
            images, classes = memo[(n, seed)]
            return (images, classes) if classes is not None else images

        fake.description = self.describe()  # type: ignore[attr-defined]
        return fake


class TextTask(AdversarialTask):
    """G(z, caption) against a (matching-aware) D(x, caption); see the module docstring."""

    name = "text"
    needs = ("x", "text")
    shows_examples = True  # the grid shows fixed training captions
    sampler_class = TextSampler

    def __init__(
        self, config: Config, info: DataInfo, device: torch.device, noise: torch.Generator
    ) -> None:
        if config.loss.interpolate_text > 0 and config.model.attention:
            raise GanforgeError(
                "loss.interpolate_text (GAN-INT) interpolates sentence codes, and words have no "
                "midpoint for model.attention to read. Set loss.interpolate_text=0 or "
                "model.attention=false."
            )
        self.codes = TextCodes(config, info, device)
        super().__init__(config, info, device, noise)

    @classmethod
    def build_nets(cls, config: Config, info: DataInfo) -> tuple[nn.Module, nn.Module]:
        """TextGenerator and TextDiscriminator of model.arch (mlp or dcgan for attention)."""
        hyper = resolve_hyper(config, info.kind)
        pretrained = config.model.text_encoder == "pretrained"
        return nets.build_text_nets(
            config.model, info.shape, d_norm=hyper.d_norm, out_act=hyper.out_act,
            text_dim=PRETRAINED_DIM if pretrained else config.model.text_dim,
            vocab_size=None if pretrained else len(info.vocabulary or []),
        )

    # -- captions --------------------------------------------------------------------------
    def pick_captions(self, text: torch.Tensor) -> torch.Tensor:
        """One of each image's captions (N, K, L) -> (N, L), uniformly among those it has."""
        counts = (text[:, :, 0] != PAD).sum(1).clamp(min=1).cpu()
        u = self.own_rows(torch.rand(text.shape[0] * self.world, generator=self.noise))
        slot = (u * counts).long().clamp(max=counts - 1).to(text.device)
        return text[torch.arange(text.shape[0], device=text.device), slot]

    def conditioning(self, batch: Batch) -> Cond:
        """This step's captions, encoded (trainable: with the encoder's graph, for D)."""
        tokens = self.pick_captions(batch["text"])
        self._tokens = tokens
        return as_cond(self.codes.encode_tokens(tokens, self.D))

    def fakes_for_d(self, real: torch.Tensor, cond: Cond, keep_fake_for_g: bool):
        """G reads the codes detached (its loss never trains the encoder); D scores the fresh
        fakes with the codes as they are, so the encoder learns from both sides."""
        fake, fake_cond = super().fakes_for_d(real, detached(cond), keep_fake_for_g)
        return fake, (cond if self.replay is None else fake_cond)

    def mismatched(self, cond: Cond) -> tuple[Cond, torch.Tensor]:
        """(each image's neighbour's caption, rows where that caption differs from its own)."""
        n = cond[0].shape[0]
        rows = (torch.arange(n, device=cond[0].device) + 1) % n
        differs = (self._tokens[rows] != self._tokens).any(1)
        return tuple(c[rows] for c in cond), differs

    def d_adversarial(
        self, real_v: torch.Tensor, real: Outputs, fake: Outputs, cond: Cond,
        target: dict[str, float], stats: Stats,
    ) -> torch.Tensor:
        """GAN-CLS: d_loss(real, [fake, real with a mismatched caption]) when loss.mismatch."""
        if not self.config.loss.mismatch:
            return super().d_adversarial(real_v, real, fake, cond, target, stats)
        wrong_cond, differs = self.mismatched(cond)
        wrong = self.discriminate(real_v, wrong_cond)[0][differs]
        stats["d_wrong"] = wrong.detach().mean() if wrong.numel() else torch.zeros(())
        return self.loss.d_loss(real[0], torch.cat([fake[0], wrong]), **target)

    def extra_g_loss(self, fake: Outputs, cond: Cond) -> dict[str, torch.Tensor]:
        """The CA KL term, and GAN-INT's loss on interpolated captions."""
        loss = self.config.loss
        mu, logvar = self.G.ca(cond[0])
        terms = {"kl": loss.kl_weight * ca_kl(mu, logvar)}
        if loss.interpolate_text > 0:
            mid = 0.5 * (cond[0] + cond[0].roll(1, 0))
            made = self.G(self.noise_batch(mid.shape[0]), mid)
            made_v = self.view.draw(made, self.step, self.rank, self.world)(made)
            scores = self.discriminate(made_v, (mid,))[0]
            terms["g_interp"] = loss.interpolate_text * self.loss.g_loss(scores)
        return terms

    # -- what the run shows ----------------------------------------------------------------
    def fixed_inputs(
        self, n: int, generator: torch.Generator, examples: Batch | None = None
    ) -> Batch:
        """Up to GRID_ROWS fixed training captions (each example's first), one grid row each;
        column j uses the same z in every row."""
        if examples is None or "text" not in examples:
            raise GanforgeError("the text task's sample grid needs training captions")
        rows = min(GRID_ROWS, n, examples["text"].shape[0])
        columns = max(1, n // rows)
        z = torch.randn(columns, self.G.z_dim, generator=generator)
        tokens = examples["text"][:rows, 0]
        return {
            "z": z.repeat(rows, 1), "text": tokens.repeat_interleave(columns, 0),
            "columns": torch.tensor(columns),
        }

    def grid(self, inputs: Batch) -> tuple[torch.Tensor, int | None]:
        """G's samples for the fixed captions, one row per caption."""
        tokens = inputs["text"].to(self.device)
        with torch.no_grad():
            encoded = self.codes.encode_tokens(tokens, self.D)
        return self.sampler().generate(inputs["z"], encoded), int(inputs["columns"])

    def grid_captions(self, inputs: Batch) -> list[str]:
        """The caption of each grid row, as printed beside the grid."""
        tokens = inputs["text"][:: int(inputs["columns"])]
        return [self.codes.vocabulary.decode(row) for row in tokens.tolist()]

    # -- sampling ------------------------------------------------------------------------------
    def sampler(self) -> Sampler:
        """A sampler over the live G (its EMA copy when on) and the live encoder."""
        return TextSampler(self.sampling_G, self.info, self.name, self.device, self.codes, self.D)

    @classmethod
    def load_sampler(
        cls, config: Config, info: DataInfo, states: dict, device: torch.device | str = "cpu"
    ) -> Sampler:
        """G and (for the trainable encoder) D's encoder from the checkpoint, vocabulary from
        its metadata: no training data needed."""
        generator, discriminator = cls.build_nets(config, info)
        generator.load_state_dict(states["G_ema"] if "G_ema" in states else states["G"])
        discriminator.load_state_dict(states["D"])
        codes = TextCodes(config, info, device)
        return TextSampler(
            generator.to(device).eval(), info, cls.name, device, codes,
            discriminator.to(device).eval(),
        )
