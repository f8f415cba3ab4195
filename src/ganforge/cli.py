"""The `ganforge` command: parse arguments, then call the library. No training logic here."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ganforge.errors import GanforgeError

TRUNCATION_HELP = (
    "truncation trick, PSI in [0, 1] (1: off; lower: more typical, less varied): style-based "
    "runs move w towards its average, w_avg + PSI (w - w_avg); other runs scale z by PSI"
)
EXAMPLES = {
    "train": """examples:
  ganforge train configs/fashion_mnist_dcgan.yaml --out runs/fm
  ganforge train configs/ring8.yaml --set loss.name=hinge --set train.steps=3000
  ganforge train configs/fashion_mnist_dcgan.yaml --set data.source=folder:~/photos \\
      --set data.resolution=64 --out runs/photos
  ganforge train --resume runs/fm --set train.steps=4000""",
    "sample": """examples:
  ganforge sample runs/fm -n 64 --out grid.png
  ganforge sample runs/fm/checkpoints/step-00002000.safetensors -n 10000 --out fake.npy
  ganforge sample runs/cgan -n 8 --class all --out classes.png     # one row per class
  ganforge sample runs/cgan -n 16 --class Sandal,Bag --out bags.png  # 16 of each
  ganforge sample runs/style -n 64 --truncation 0.7 --out typical.png
  ganforge sample runs/fm -n 64 --interpolate 8 --out walks.png   # 8 walks of 8 steps
  ganforge sample runs/fm -n 16 --interpolate 12 --out walk.gif   # animated, 16 walks""",
    "eval": """examples:
  ganforge eval runs/fm --against fashion-mnist:test --features classifier:fm.safetensors
  ganforge eval real:fashion-mnist:train --against fashion-mnist:test --metrics fid,kid,pr
  ganforge eval runs/ring --against ring8 --metrics modes""",
    "classify": """examples:
  ganforge classify runs/ssgan digits/ --out classes.csv
  ganforge classify runs/ssgan photo.png --out photo.csv --resize   # other size or channels
  ganforge classify runs/ssgan/checkpoints/step-00002000.safetensors digits/ --out c.csv""",
    "translate": """examples:
  ganforge translate runs/pix2pix edges/ --out photos/
  ganforge translate runs/cyclegan photos/ --out edges/ --direction BtoA
  ganforge translate runs/pix2pix sketch.png --out out/ --resize   # other size or channels""",
    "export": """examples:
  ganforge export runs/fm --format onnx --out G.onnx           # also writes G.onnx.json
  ganforge export runs/cgan --out cgan.onnx                    # inputs z and label
  ganforge export runs/cyclegan --out BtoA.onnx --direction BtoA
  ganforge export runs/fm --format safetensors --out G.safetensors  # G alone + JSON""",
    "report": """examples:
  ganforge report runs/fm --out fm.html
  ganforge report runs/hinge runs/wgan-gp --out compare.html   # side by side, config diff
  ganforge report runs/*/ --out all.html --overwrite""",
    "search": """examples:
  ganforge search configs/ring8.yaml --space space.yaml --trials 20 --sampler tpe \\
      --storage sqlite:///search.db --study ring8-lr --out runs/search --set eval.every=500 \\
      --set eval.metrics=[modes]
  ganforge search configs/ring8.yaml --space grid.yaml --trials 9 --sampler grid \\
      --storage sqlite:///search.db --study ring8-grid --out runs/grid --pruner none
  (rerun the same command to continue a killed search, or in more shells to add workers)
  space.yaml:
    optim.g_lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
    model.z_dim: {type: int, low: 16, high: 64, step: 16}
    loss.name: {type: categorical, choices: [hinge, wgan-gp]}""",
    "export-classifier": """examples:
  ganforge export-classifier runs/ssgan --out ssgan.safetensors
  ganforge eval runs/fm --against mnist:test --features classifier:ssgan.safetensors""",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every verb."""
    parser = argparse.ArgumentParser(
        prog="ganforge", description="Train, evaluate and use GANs.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    common = argparse.ArgumentParser(add_help=False)  # --debug works after the verb too
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks for errors")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    def add_verb(name: str, **kwargs) -> argparse.ArgumentParser:
        return verbs.add_parser(name, parents=[common], **kwargs)

    raw = argparse.RawDescriptionHelpFormatter

    train = add_verb(
        "train", help="train a GAN from a YAML config, or resume a run",
        description="Train a GAN. Writes RUN_DIR/{config.yaml, metrics.jsonl, samples/, "
        "checkpoints/, losses.png}.", epilog=EXAMPLES["train"], formatter_class=raw,
    )
    train.add_argument("config", nargs="?", help="YAML config (see configs/)")
    train.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a config key, e.g. train.steps=500")
    train.add_argument("--out", help="run directory (default: runs/CONFIGNAME-TIMESTAMP)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest "
                       "checkpoint")
    train.add_argument("--overwrite", action="store_true",
                       help="delete the run already in --out and start again")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    sample = add_verb(
        "sample", help="draw samples from a trained generator",
        description="Sample a trained generator. FILE.png writes a grid; FILE.npy writes "
        "float32 samples in the data's scale: images (N, H, W, C) in [0, 1], points (N, D).",
        epilog=EXAMPLES["sample"], formatter_class=raw,
    )
    sample.add_argument("target", help="run directory (newest checkpoint) or checkpoint file")
    sample.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("--out", required=True, help="FILE.png or FILE.npy")
    sample.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    sample.add_argument("--overwrite", action="store_true", help="replace an existing FILE")
    sample.add_argument("--class", dest="classes", metavar="CLASSES",
                        help="conditional runs: a class name or index, a comma list, or 'all' "
                        "(-n samples of each, one grid row per class; .npy also writes "
                        "FILE.labels.npy)")
    sample.add_argument("--text", action="append", metavar="PROMPT",
                        help="text-to-image runs: a description (repeat for more prompts: one "
                        "grid row of -n samples each, the caption printed beside its row)")
    sample.add_argument("--text-file", metavar="FILE",
                        help="text-to-image runs: prompts, one per line (one grid row each)")
    sample.add_argument("--text-to", metavar="PROMPT",
                        help="text-to-image runs, with --interpolate K: walk in K steps from "
                        "the --text prompt to this one (-n // K rows, one z per row)")
    sample.add_argument("--truncation", type=float, metavar="PSI", help=TRUNCATION_HELP)
    sample.add_argument("--interpolate", type=int, metavar="K",
                        help="latent walks: K steps along the great circle (slerp) between "
                        "random latents, one walk per grid row (-n // K walks); with --out "
                        "FILE.gif an animation whose frames show -n walks")
    _device_option(sample)

    add_verb("datasets", help="list data sources and whether they are available here")

    shown = add_verb(
        "config", help="print a resolved config with a one-line description of each key",
        description="Print the config that `ganforge train CONFIG --set ...` would use, every "
        "key with its meaning (and what a null resolves to), as YAML ready to edit.",
    )
    shown.add_argument("config", nargs="?", help="YAML config (default: the built-in defaults)")
    shown.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a config key, e.g. loss.name=hinge")

    ev = add_verb(
        "eval", help="compute FID, KID, IS, precision/recall, density/coverage, mode counts",
        description="Evaluate a run, checkpoint, image folder, .npy samples, or "
        "real:SOURCE[:split] against a reference source, with a stated protocol.",
        epilog=EXAMPLES["eval"], formatter_class=raw,
    )
    ev.add_argument("target", help="run dir, checkpoint, image folder, samples .npy/.npz, or "
                    "real:SOURCE[:split]")
    ev.add_argument("--against", help="reference SOURCE[:split] (default: the run's data, "
                    "test split)")
    ev.add_argument("--metrics", default="fid,kid,pr",
                    help="comma list of fid,kid,is,pr,dc,modes,cacc,ifid,cas, or accuracy "
                    "(a semi-supervised run's D on the test split) (default fid,kid,pr)")
    ev.add_argument("--features", default="inception",
                    help="inception, inception:PATH or classifier:PATH (default inception); "
                    "inception-fp16, -bf16 or -tf32 run Inception faster on a GPU (fp32 is "
                    "the protocol)")
    ev.add_argument("--n", type=int, help="samples per side (default: the pinned protocol, "
                    "10,000 images as Lucic et al. 2018, 2,500 points for 2D mixtures)")
    ev.add_argument("--labels", choices=("uniform", "data"), default="uniform",
                    help="conditional runs: classes of the samples, balanced (uniform, "
                    "default) or at the training data's class frequencies")
    ev.add_argument("--seed", type=int, default=0,
                    help="seed of the sample noise and of the real subset (default 0)")
    ev.add_argument("--matcher", metavar="FILE",
                    help="text-to-image runs: the image-text matcher for rprec "
                    "(ganforge train-matcher)")
    ev.add_argument("--phrasing", choices=("templates", "synonyms"), default="templates",
                    help="text-to-image runs on fashion-mnist-captions: prompts in held-out "
                    "templates or with held-out synonyms (default templates)")
    ev.add_argument("--truncation", type=float, metavar="PSI",
                    help=TRUNCATION_HELP + "; the protocol names it")
    ev.add_argument("--json", dest="json_out", help="write the full result as JSON here")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    _device_option(ev)

    clf = add_verb(
        "train-classifier", help="train the domain classifier used as a fast feature network",
        description="Train a small CNN on a labelled source; its features and softmax give "
        "the fast evaluation protocol (classifier:PATH).",
    )
    clf.add_argument("--data", required=True, help="fashion-mnist, mnist, or folder:PATH "
                     "with one subfolder per class")
    clf.add_argument("--out", required=True, help="where to write the .safetensors file")
    clf.add_argument("--data-dir", help="folder holding the dataset files")
    clf.add_argument("--epochs", type=int, help="training epochs (default: the library's)")
    clf.add_argument(
        "--input-size", type=int, metavar="N",
        help="side of the images it reads, every image resized to N x N (default 28); use the "
        "resolution of the runs it will judge, e.g. 32 for fashion-edges at data.resolution 32",
    )
    clf.add_argument("--seed", type=int, default=0)
    _device_option(clf)

    matcher = add_verb(
        "train-matcher", help="train the image-text matcher that scores R-precision",
        description="Train an image-text matcher (a small CNN and a caption encoder, symmetric "
        "InfoNCE) on a captioned source's real pairs; it scores text-to-image samples by "
        "R-precision (AttnGAN's protocol). Writes OUT (.safetensors) and OUT.json, and prints "
        "the R-precision real test pairs reach (the protocol's ceiling).",
        epilog="examples:\n  ganforge train-matcher --data fashion-mnist-captions --out "
        "fm-matcher.safetensors\n  ganforge train-matcher --data folder:~/captioned --out "
        "m.safetensors --set data.resolution=64 --steps 4000", formatter_class=raw,
    )
    matcher.add_argument("--data", required=True, help="a captioned source: "
                         "fashion-mnist-captions or folder:PATH with caption files")
    matcher.add_argument("--out", required=True, help="the .safetensors file to write "
                         "(OUT.json is written beside it)")
    matcher.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    matcher.add_argument("--batch-size", type=int, default=64, help="pairs per step (default 64)")
    matcher.add_argument("--seed", type=int, default=0, help="init, batches, captions (default 0)")
    matcher.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="data.KEY=VALUE", help="a data setting, e.g. data.limit=2000")
    matcher.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    matcher.add_argument("--no-progress", action="store_true", help="no progress bar")
    _device_option(matcher)

    classify = add_verb(
        "classify", help="label images with a semi-supervised run's D, as a CSV",
        description="Classify an image file, or every image in a folder (not its subfolders), "
        "with the discriminator of a semi-supervised run (task.name=semi-supervised). Writes a "
        "CSV with one row per image: file, class, class_index, then p_CLASS for every class.",
        epilog=EXAMPLES["classify"], formatter_class=raw,
    )
    _image_input_options(classify, "semi-supervised", "the CSV file to write",
                         "replace an existing CSV")
    _device_option(classify)

    translate = add_verb(
        "translate", help="translate images with an image-to-image run (pix2pix, cyclegan)",
        description="Translate an image file, or every image in a folder (not its "
        "subfolders), with a pix2pix or CycleGAN run's generator. Writes OUT/NAME for each "
        "input NAME, in the format of its suffix; refuses to overwrite without --overwrite.",
        epilog=EXAMPLES["translate"], formatter_class=raw,
    )
    _image_input_options(translate, "image-to-image", "the folder to write translations to",
                         "replace existing output files")
    translate.add_argument("--direction", choices=("AtoB", "BtoA"),
                           help="AtoB or BtoA (default: the run's data.direction; cyclegan "
                           "runs translate both ways)")
    _device_option(translate)

    generator = add_verb(
        "export", help="write a run's generator as ONNX, or as safetensors + JSON",
        description="Write the generator a run samples with (its EMA copy if kept; eval mode) "
        "as ONNX, checked in onnxruntime against PyTorch, or as its state dict in safetensors. "
        "Inputs: z (N, z_dim) float32 noise; plus label (N,) int64 class indices for "
        "conditional runs; image (N, C, H, W) float32 in [-1, 1] instead for image-to-image "
        "runs. Output: images (N, C, H, W) in [-1, 1], or samples (N, D) for vector data. "
        "N is dynamic. OUT.json (e.g. G.onnx.json) beside OUT describes inputs, output, "
        "classes, the source run and versions (and what rebuilds G from safetensors).",
        epilog=EXAMPLES["export"], formatter_class=raw,
    )
    generator.add_argument("target", metavar="RUN",
                           help="run directory (newest checkpoint) or checkpoint file")
    generator.add_argument("--format", dest="fmt", choices=("onnx", "safetensors"),
                           help="onnx or safetensors (default: from --out's suffix)")
    generator.add_argument("--out", required=True, help="the file to write (OUT.json is "
                           "written beside it)")
    generator.add_argument("--direction", choices=("AtoB", "BtoA"),
                           help="image-to-image runs: which direction to export (default: the "
                           "run's data.direction; a cyclegan run has both)")
    generator.add_argument("--overwrite", action="store_true",
                           help="replace an existing OUT and OUT.json")

    report = add_verb(
        "report", help="write one self-contained HTML report of one or several runs",
        description="Write one HTML file (images embedded, no network) showing each run's "
        "sample grids across training, loss and D-output curves, evaluation metrics over "
        "time, the final metrics with their protocol (and the best checkpoint), its config "
        "and versions; several runs also side by side, with the config keys that differ. A "
        "run that has not logged, sampled or evaluated yet gets a report saying so.",
        epilog=EXAMPLES["report"], formatter_class=raw,
    )
    report.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    report.add_argument("--out", required=True, help="the HTML file to write")
    report.add_argument("--overwrite", action="store_true", help="replace an existing file")

    searcher = add_verb(
        "search", help="search hyperparameters with Optuna, one run directory per trial",
        description="Search config keys (SPACE.yaml maps section.key to a distribution) with "
        "Optuna. Each trial trains OUT/trial-NNNN and is scored by its in-training evaluation "
        "(the best value of eval.primary, or the first score of eval.metrics: FID, modes, "
        "accuracy, l1...; eval.every must be set); evaluations feed the pruner. The study "
        "lives in --storage: rerunning the same command continues it up to --trials finished "
        "(complete or pruned) trials, and several processes may share it. Prints a table of "
        "trials and writes OUT/best.yaml, the best trial's config, for `ganforge train`.",
        epilog=EXAMPLES["search"], formatter_class=raw,
    )
    searcher.add_argument("config", help="YAML config every trial starts from")
    searcher.add_argument("--space", required=True, help="SPACE.yaml: config keys to "
                          "distributions (type float, int or categorical)")
    searcher.add_argument("--trials", type=int, required=True,
                          help="finished trials the study should hold (grid: at most the grid)")
    searcher.add_argument("--sampler", choices=("grid", "random", "tpe"), default="tpe",
                          help="grid (every combination), random, or tpe (default)")
    searcher.add_argument("--storage", required=True,
                          help="the study's database, e.g. sqlite:///search.db")
    searcher.add_argument("--study", required=True, help="the study's name in --storage")
    searcher.add_argument("--out", required=True, help="folder of the trial run directories "
                          "and best.yaml")
    searcher.add_argument("--pruner", choices=("none", "median", "hyperband"), default="median",
                          help="stop bad trials early at an evaluation (default median)")
    searcher.add_argument("--startup-trials", type=int, default=3, metavar="K",
                          help="median pruner: prune only once K trials have finished "
                          "(default 3)")
    searcher.add_argument("--set", dest="overrides", action="append", default=[],
                          metavar="KEY=VALUE", help="override a config key for every trial")
    searcher.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")

    export = add_verb(
        "export-classifier", help="write a semi-supervised run's D as a classifier file",
        description="Write the discriminator of a semi-supervised run as a classifier file "
        "(.safetensors) for --features classifier:PATH: its penultimate features and class "
        "softmax replace the trained CNN's.",
        epilog=EXAMPLES["export-classifier"], formatter_class=raw,
    )
    export.add_argument("target", metavar="RUN",
                        help="semi-supervised run directory (newest checkpoint) or checkpoint")
    export.add_argument("--out", required=True, help="where to write the .safetensors file")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    return parser


def _image_input_options(
    parser: argparse.ArgumentParser, kind: str, out_help: str, overwrite_help: str
) -> None:
    """RUN INPUT --out --overwrite --resize: the verbs that apply a run to image files."""
    parser.add_argument("target", metavar="RUN",
                        help=f"{kind} run directory (newest checkpoint) or checkpoint")
    parser.add_argument("input", metavar="INPUT", help="an image file or a folder of images "
                        "(.png .jpg .jpeg .webp .bmp)")
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument("--overwrite", action="store_true", help=overwrite_help)
    parser.add_argument("--resize", action="store_true",
                        help="convert images whose channels or size differ from the run's "
                        "(gray/RGB matched, shorter side resized, center crop) instead of "
                        "refusing them")


def _device_option(parser: argparse.ArgumentParser) -> None:
    """--device, shared by the verbs that run networks."""
    parser.add_argument("--device", default="auto", help="auto (default: CUDA, then MPS, then "
                        "CPU), cpu, cuda, cuda:N or mps")


# -- verbs -----------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from ganforge import config as configlib
    from ganforge.training.distributed import Distributed
    from ganforge.training.loop import resume, train

    progress = not args.no_progress
    if args.resume:
        result = resume(args.resume, args.overrides, args.config, progress=progress)
    else:
        if not args.config:
            raise GanforgeError(
                "Give a config file (e.g. `ganforge train configs/fashion_mnist_dcgan.yaml`) "
                "or --resume RUN_DIR."
            )
        config = configlib.load(args.config, args.overrides)
        if not args.out and Distributed.from_env().active:
            raise GanforgeError(  # a time-stamped name could differ between the processes
                "Under torchrun give the run directory: --out RUN_DIR."
            )
        out = args.out or f"runs/{Path(args.config).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = train(config, out, overwrite=args.overwrite, progress=progress)
    if not result.main:  # another process of a torchrun run: rank 0 reports
        return 0
    verb = "Stopped" if result.interrupted else "Finished"
    print(f"{verb} at step {result.step}. Run directory: {result.run_dir}")
    print(f"  checkpoint:  {result.checkpoint.with_suffix('.safetensors')}")
    print(f"  samples:     {result.sample_grid}")
    if result.loss_plot:
        print(f"  loss plot:   {result.loss_plot}")
    print(f"  next: {next_command(result.run_dir)}")
    if result.interrupted:
        print(f"  resume: ganforge train --resume {result.run_dir}")
        return 130
    return 0


def next_command(run_dir: Path) -> str:
    """What a user types after training: sample a GAN (from a description, for text-to-image),
    translate with an image-to-image run."""
    from ganforge import config as configlib
    from ganforge import tasks

    task = tasks.get(configlib.load(Path(run_dir) / "config.yaml").task.name)
    if "x_b" in task.needs:
        return f"ganforge translate {run_dir} INPUT_FOLDER --out translated/"
    if "text" in task.needs:
        return f'ganforge sample {run_dir} --text "A DESCRIPTION" -n 8 --out samples.png'
    return f"ganforge sample {run_dir} -n 64 --out samples.png"


def read_prompts(args: argparse.Namespace) -> list[str] | None:
    """The prompts of --text (each) and --text-file (one per non-empty line), or None."""
    from ganforge.errors import GanforgeError

    prompts = list(args.text or [])
    if args.text_file:
        path = Path(args.text_file)
        if not path.is_file():
            raise GanforgeError(f"--text-file {path} does not exist. Give a text file with "
                                "one prompt per line.")
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        if not any(lines):
            raise GanforgeError(f"--text-file {path} has no prompts: write one per line.")
        prompts += [line for line in lines if line]
    return prompts or None


def cmd_sample(args: argparse.Namespace) -> int:
    from ganforge.devices import pick_device
    from ganforge.training.generator import sample_to_file

    loaded, drawn, written = sample_to_file(
        args.target, args.n, args.seed, args.out,
        request={"class": args.classes, "text": read_prompts(args), "text_to": args.text_to},
        overwrite=args.overwrite, device=pick_device(args.device, "--device"),
        truncation=args.truncation, interpolate=args.interpolate,
    )
    files = " and ".join(str(p) for p in written)
    print(f"Wrote {len(drawn.x)} samples from step {loaded.step} to {files}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ganforge.data import list_sources

    for info in list_sources():
        mark = "yes" if info.available else "no "
        print(f"  [{mark}] {info.name:<14} {info.description}")
        print(f"        {info.labels}" + (f"; {info.where}" if info.where else ""))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ganforge.devices import pick_device
    from ganforge.fileio import atomic_write_json
    from ganforge.metrics.evaluate import format_table
    from ganforge.training.evaluation import evaluate_target

    result = evaluate_target(
        args.target, against=args.against,
        metrics=[m.strip() for m in args.metrics.split(",") if m.strip()],
        features=args.features, n=args.n, seed=args.seed, labels=args.labels,
        progress=not args.no_progress, device=pick_device(args.device, "--device"),
        matcher=args.matcher, phrasing=args.phrasing, truncation=args.truncation,
    )
    print(format_table(result))
    if args.json_out:
        atomic_write_json(args.json_out, result)
        print(f"Wrote {args.json_out}")
    return 0


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from ganforge.devices import pick_device
    from ganforge.training.classifier import train_classifier

    kwargs = {"data_dir": args.data_dir, "seed": args.seed,
              "device": pick_device(args.device, "--device")}
    if args.epochs is not None:
        kwargs["epochs"] = args.epochs
    if args.input_size is not None:
        kwargs["input_size"] = args.input_size
    result = train_classifier(args.data, args.out, **kwargs)
    print(json.dumps(result, indent=2))
    return 0


def cmd_train_matcher(args: argparse.Namespace) -> int:
    from ganforge import config as configlib
    from ganforge.devices import pick_device
    from ganforge.training.matcher import save_matcher, sidecar, train_matcher

    outside = [text for text in args.overrides if not text.strip().startswith("data.")]
    if outside:
        raise GanforgeError(f"train-matcher takes only data.KEY=VALUE with --set; got "
                            f"{outside[0]!r}. Use e.g. --set data.limit=2000.")
    if not args.overwrite and (Path(args.out).exists() or sidecar(args.out).exists()):
        raise GanforgeError(f"'{args.out}' already exists; pass --overwrite to replace it, "
                            "or choose another --out.")
    data = configlib.load(None, [f"data.source={args.data}", *args.overrides]).data
    net, vocabulary, report = train_matcher(
        data, args.steps, args.batch_size, args.seed,
        device=pick_device(args.device, "--device"), progress=not args.no_progress,
    )
    digest = save_matcher(args.out, net, vocabulary, report)
    print(f"Wrote {args.out} and {sidecar(args.out)} (sha256 {digest[:12]}) in "
          f"{report['train_seconds']}s")
    print(f"  real-pair R-precision on {report['test_examples']} {report['test_split']} "
          f"images: {report['real_r_precision']:.4f} +- {report['real_r_precision_std']:.4f} "
          "(1 true caption vs 99 others; the ceiling for generated images)")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from ganforge.classify import classify_images
    from ganforge.devices import pick_device

    result = classify_images(
        args.target, args.input, args.out, overwrite=args.overwrite, resize=args.resize,
        device=pick_device(args.device, "--device"),
    )
    for line in result.warnings:
        print(f"warning: {line}", file=sys.stderr)
    counts = ", ".join(f"{name} {n}" for name, n in result.counts().items())
    n = len(result.files)
    print(f"Classified {n} image{'s' if n != 1 else ''} (step {result.step}) into "
          f"{result.out}; per class: {counts}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from ganforge.devices import pick_device
    from ganforge.translate import translate_images

    result = translate_images(
        args.target, args.input, args.out, direction=args.direction, resize=args.resize,
        overwrite=args.overwrite, device=pick_device(args.device, "--device"),
    )
    for line in result.warnings:
        print(f"warning: {line}", file=sys.stderr)
    n = len(result.files)
    print(f"Translated {n} image{'s' if n != 1 else ''} {result.direction} (step "
          f"{result.step}) into {result.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ganforge.export import export_generator

    result = export_generator(args.target, args.out, fmt=args.fmt, direction=args.direction,
                              overwrite=args.overwrite)
    meta = result.meta
    inputs = ", ".join(f"{p['name']} {p['dtype']} ({', '.join(map(str, p['shape']))})"
                       for p in meta["inputs"])
    output = meta["output"]
    print(f"Wrote {result.out} ({meta['file_format']}): {meta['task']} generator of step "
          f"{meta['source']['step']}" + (f", {meta['direction']}" if meta["direction"] else ""))
    print(f"  inputs:  {inputs}")
    print(f"  output:  {output['name']} ({', '.join(map(str, output['shape']))}), "
          f"{output['description']}")
    if "check" in meta:
        check = meta["check"]
        sizes = ", ".join(map(str, check["batch_sizes"]))
        print(f"  checked: onnxruntime vs PyTorch at batch sizes {sizes}, max abs difference "
              f"{check['max_abs_difference']:.1e}")
    print(f"  about:   {result.sidecar}")
    use = (f"onnxruntime.InferenceSession('{result.out}')" if meta["file_format"] == "onnx"
           else f"ganforge.export.load_generator('{result.out}')")
    print(f"  use:     {use}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ganforge.report.build import write_report

    result = write_report(args.runs, args.out, overwrite=args.overwrite)
    for line in result.notes:
        print(f"note: {line}", file=sys.stderr)
    n = len(result.runs)
    size = f"{result.size / 1e6:.1f} MB" if result.size >= 1e5 else f"{result.size / 1e3:.0f} kB"
    print(f"Wrote {result.out} ({size}) for {n} run{'s' if n != 1 else ''}: "
          f"{', '.join(result.runs)}")
    print(f"  open: {result.out.resolve().as_uri()}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from ganforge.search import format_table, search

    result = search(
        args.config, args.space, args.out, args.storage, args.study, args.trials,
        sampler=args.sampler, pruner=args.pruner, overrides=args.overrides, seed=args.seed,
        startup_trials=args.startup_trials,
    )
    print(format_table(result))
    print(f"Study '{result.study}': {result.ran} trials run now; {result.direction} "
          f"{result.metric}.")
    if result.best is None:
        print("No trial completed, so there is no best config yet; rerun to continue.")
        return 1
    print(f"Best: trial {result.best.number}, {result.metric} {result.best.value:.4g} "
          f"({result.best.user_attrs['run_dir']})")
    print(f"  config: {result.best_config}")
    print(f"  next:   ganforge train {result.best_config} --out runs/best")
    return 0


def cmd_export_classifier(args: argparse.Namespace) -> int:
    from ganforge.classify import export_classifier

    out, meta, digest = export_classifier(args.target, args.out, overwrite=args.overwrite)
    arch = meta["arch"]
    print(f"Wrote {out} (sha256 {digest[:12]}): D of step {meta['discriminator']['step']}, "
          f"{arch['hidden']}-d features, {arch['num_classes']} classes, input "
          f"{arch['in_channels']}x{arch['input_size']}x{arch['input_size']}")
    print(f"  use: ganforge eval RUN --features classifier:{out}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from ganforge import config as configlib
    from ganforge.config_help import describe

    print(describe(configlib.load(args.config, args.overrides)), end="")
    return 0


COMMANDS = {
    "config": cmd_config,
    "train": cmd_train,
    "sample": cmd_sample,
    "datasets": cmd_datasets,
    "eval": cmd_eval,
    "train-classifier": cmd_train_classifier,
    "train-matcher": cmd_train_matcher,
    "classify": cmd_classify,
    "translate": cmd_translate,
    "export": cmd_export,
    "report": cmd_report,
    "search": cmd_search,
    "export-classifier": cmd_export_classifier,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ganforge` console script."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.verb](args)
    except GanforgeError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
