"""One line per config key saying what it does: what `ganforge config` prints beside each value.

Kept beside config.py (and checked by a test to cover every key) so that `--set` keys are
discoverable without reading the source.
"""

from __future__ import annotations

import dataclasses

import yaml

from ganforge.config import Config
from ganforge.losses import get_loss

HELP: dict[str, str] = {
    "task.name": "unconditional, conditional, semi-supervised, pix2pix or cyclegan",
    "data.source": (
        "fashion-mnist, mnist, ring8, grid25, fashion-edges(-unpaired), folder:PATH, npz:PATH, "
        "npy:PATH, aligned:PATH, paired:A,B, unpaired:PATH"
    ),
    "data.split": "train or test split of sources that have both",
    "data.dir": "folder holding dataset files (else $GANFORGE_DATA, the cache, /usr/share)",
    "data.resolution": "images resized (shorter side) and center-cropped to this size",
    "data.channels": "1 (gray) or 3 (RGB); null keeps the source's channels",
    "data.limit": "use only the first N examples (null: all)",
    "data.strict": "stop on unreadable images (or, with captions, uncaptioned ones) instead of skipping",
    "data.download": "download fashion-mnist/mnist when not found locally",
    "data.augment": "augment real images: flip, crop, rotate, color, jitter (pairs: alike)",
    "data.max_words": "captions: words kept per caption (longer ones are cut, with a warning)",
    "data.labels_per_class": "semi-supervised: labelled examples per class (null: all)",
    "data.direction": "image-to-image: AtoB (x is domain A) or BtoA (the domains swapped)",
    "model.arch": "architecture of G and D: mlp, dcgan, resnet, progressive or style",
    "model.z_dim": "size of the latent noise z",
    "model.g_width": "G channels at full size, doubling to the base (dcgan, image-to-image)",
    "model.d_width": "D channels at the first level, doubling to the base (dcgan, image-to-image)",
    "model.g_hidden": "mlp: G hidden layer widths",
    "model.d_hidden": "mlp: D hidden layer widths",
    "model.g_norm": "mlp: G normalization, batch or none",
    "model.d_norm": "D normalization; auto: none for mlp, the loss's choice for dcgan",
    "model.out_act": "G output activation; auto: tanh for images, none for vectors",
    "model.condition": "conditional task: how labels enter, concat, projection or acgan",
    "model.spectral_norm": "spectral normalization: none, d (every D layer) or both G and D",
    "model.pack": "PacGAN: D judges m samples at once (1: off)",
    "model.mbstd_group": "minibatch standard deviation feature over groups of N (0: off)",
    "model.minibatch_disc": "minibatch discrimination kernels (0: off)",
    "model.weight_norm": "weight normalization: none, d (every D layer) or both G and D",
    "model.weight_norm_init": "default, or data: D's weight-normed layers start normalized",
    "model.d_input_noise": "mlp, dcgan: std of Gaussian noise on D's input while training (0: off)",
    "model.d_hidden_noise": "mlp, dcgan: std of Gaussian noise after each D hidden layer (0: off)",
    "model.phase_images": "progressive: images per fade-in and per stable phase of growth",
    "model.w_dim": "style: size of the intermediate latent w (the styles)",
    "model.mapping_layers": "style: dense layers of the mapping network z -> w",
    "model.style_mixing": "style: probability of style mixing per training batch (0: off)",
    "model.translator": "image-to-image G: unet (skips), encoder-decoder (none) or resnet",
    "model.resnet_blocks": "image-to-image resnet G: residual blocks (CycleGAN: 6 or 9)",
    "model.patch_layers": "PatchGAN D: strided layers (3: 70x70 field; 0: auto, about R/2)",
    "model.translator_norm": "image-to-image nets: batch, instance (auto: pix2pix batch, else instance)",
    "model.dropout": "pix2pix: dropout in G's inner decoder blocks, its noise source (0: off)",
    "model.text_encoder": "text task: trainable (vocabulary + 1D convs, in D) or pretrained (MiniLM)",
    "model.text_dim": "text task: size of the trainable encoder's sentence and word codes",
    "model.c_dim": "text task: size of the conditioning-augmented text code G reads",
    "model.attention": "text task: word-level attention in G over the word features (AttnGAN)",
    "model.text_fusion": "text task: input (G reads the code at its input) or affine (also "
                         "every G BatchNorm's scale and shift from it, DF-GAN)",
    "loss.name": "adversarial loss: minimax, non-saturating, lsgan, wgan, wgan-gp, hinge",
    "loss.gp_weight": "gradient-penalty weight (null: the loss's default, 10 for wgan-gp)",
    "loss.clip": "weight clipping of D (null: the loss's default, 0.01 for wgan)",
    "loss.class_weight": "acgan: weight of the class loss for G and D",
    "loss.mix": "more losses added to loss.name, as LOSS:WEIGHT items, e.g. [lsgan:0.5]",
    "loss.r1_gamma": "R1 penalty on real data, weight gamma/2 (0: off; 10 is common)",
    "loss.r1_every": "lazy R1: apply it every N D steps, scaled by N (StyleGAN2 uses 16)",
    "loss.dragan_weight": "DRAGAN penalty weight around real data (0: off; paper: 10)",
    "loss.label_smoothing": "one-sided label smoothing: real target 1 - s (0.1 gives 0.9)",
    "loss.feature_matching": "weight of feature matching on D's last hidden layer (0: off)",
    "loss.g_adversarial": "weight of G's adversarial loss (0 with feature matching: FM alone)",
    "loss.kl_weight": "text task: weight of conditioning augmentation's KL term (StackGAN: 1)",
    "loss.mismatch": "text task: matching-aware D, real images with wrong captions are fake",
    "loss.interpolate_text": "text task: weight of G's loss on interpolated captions (GAN-INT)",
    "loss.unsupervised_weight": "semi-supervised: weight of the real/fake terms (0: supervised)",
    "loss.ssl_form": "semi-supervised D: k (fake class implicit) or k+1 (a fake logit)",
    "loss.l1_weight": "pix2pix: weight of L1 between output and target (paper: 100)",
    "loss.cycle_weight": "cyclegan: weight of cycle consistency, lambda (paper: 10)",
    "loss.identity_weight": "cyclegan: identity loss weight as a fraction of lambda (0.5)",
    "optim.name": "adam or rmsprop (null: the loss's default)",
    "optim.g_lr": "G learning rate (null: the loss's default)",
    "optim.d_lr": "D learning rate (null: the loss's default)",
    "optim.betas": "Adam betas (null: the loss's default)",
    "optim.n_critic": "D updates per G update (null: the loss's default)",
    "optim.lr_decay": "none, linear (to 0 over train.steps) or constant_linear",
    "optim.decay_start": "constant_linear: fraction of train.steps before the decay starts",
    "optim.preset": "ttur: D lr 4e-4, G lr 1e-4 (Heusel et al. 2017) where lrs are null",
    "train.steps": "training iterations (each: n_critic D updates and one G update)",
    "train.batch_size": "examples per batch",
    "train.seed": "one seed for data order, noise and weight init",
    "train.d_warmup_steps": "first steps that train D alone",
    "train.sample_every": "write a sample grid every N steps",
    "train.checkpoint_every": "write a checkpoint every N steps",
    "train.keep_checkpoints": "how many newest checkpoints to keep (best.* is kept apart)",
    "train.num_samples": "samples in each grid (conditional: spread over one row per class)",
    "train.device": "auto, cpu, cuda, cuda:N or mps",
    "train.precision": "fp32, bf16 or fp16 (mixed precision by autocast; fp16 adds loss scaling)",
    "train.compile": "torch.compile G and D (first steps slower; eager fallback with a note)",
    "train.compile_mode": "default, or reduce-overhead: also replay the compiled nets as CUDA "
    "graphs (CUDA only; fewer kernel launches, for small nets and batches)",
    "train.channels_last": "conv weights and image batches in NHWC layout (faster convolutions "
    "on tensor-core GPUs and oneDNN CPUs; same numbers up to rounding)",
    "train.sync_batchnorm": "under torchrun: BatchNorm statistics over all processes (CUDA only)",
    "stabilize.instance_noise": "std of Gaussian noise added to D's inputs (0: off)",
    "stabilize.instance_noise_steps": "anneal instance noise to 0 by this step (null: end)",
    "stabilize.diffaugment": "DiffAugment of real and fake: color, translation, cutout",
    "stabilize.ema": "decay of a moving average of G that samples (0: off; best without BN)",
    "stabilize.ema_d": "semi-supervised: decay of a moving average of D that classifies (0: off)",
    "stabilize.replay": "share of D's fake batch drawn from a buffer of past fakes (0: off)",
    "stabilize.replay_size": "replay buffer size in samples",
    "stabilize.d_skip_above": "skip D's update while its batch accuracy is above (null: off)",
    "stabilize.g_skip_below": "skip G's update while D's batch accuracy is below (null: off)",
    "stabilize.image_pool": "cyclegan: past fakes kept per D, half of D's fakes from it (0: off)",
    "eval.every": "evaluate every N steps during training (0: off)",
    "eval.metrics": "fid, kid, is, pr, dc, modes, cacc, ifid, cas, accuracy, l1, psnr, ssim, cycle",
    "eval.features": "inception[-fp16|-bf16|-tf32][:PATH] or classifier:PATH",
    "eval.n": "samples per side (null: the pinned protocol, 10,000 images / 2,500 points)",
    "eval.against": "reference SOURCE[:split] (null: the run's data, test split)",
    "eval.primary": "the number that picks best.* (null: the first metric's first number)",
    "eval.labels": "conditional: sample classes uniform (balanced) or at the data's frequencies",
    "eval.matcher": "text task: image-text matcher file for rprec (ganforge train-matcher)",
    "eval.phrasing": "text task on fashion-mnist-captions: held-out templates or synonyms",
    "log.every": "write a metrics.jsonl line every N steps",
    "log.progress": "show a progress bar",
    "log.tensorboard": "also write TensorBoard logs",
}


def loss_defaults(config: Config) -> dict[str, object]:
    """What the null optim/loss keys resolve to under the chosen loss."""
    spec = get_loss(config.loss.name)
    return {
        "optim.name": spec.optimizer, "optim.g_lr": spec.lr, "optim.d_lr": spec.lr,
        "optim.betas": list(spec.betas), "optim.n_critic": spec.n_critic,
        "loss.gp_weight": spec.gp_weight, "loss.clip": spec.clip,
    }


def describe(config: Config) -> str:
    """The config as YAML with a comment after each key: its meaning and, for a null that a
    loss fills in, the value it takes. Loading the text gives the same config back."""
    resolved = loss_defaults(config)
    lines = []
    for section in dataclasses.fields(config):
        lines.append(f"{section.name}:")
        values = getattr(config, section.name)
        for item in dataclasses.fields(values):
            key = f"{section.name}.{item.name}"
            value = yaml.safe_dump(getattr(values, item.name), default_flow_style=True)
            value = value.strip().removesuffix("...").strip()
            note = HELP.get(key, "")
            if getattr(values, item.name) is None and key in resolved:
                note += f" -> here {resolved[key]}"
            lines.append(f"  {item.name}: {value}  # {note}")
    return "\n".join(lines) + "\n"
