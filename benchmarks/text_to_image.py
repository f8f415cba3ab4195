"""Text-to-image on fashion-mnist-captions at one fixed CPU budget: trainable vs pretrained
text encoder, with and without the matching-aware D, with and without word attention, and
with G reading the text at its input only or also in every BatchNorm (affine fusion).

Each variant trains its config (configs/fashion_mnist_text.yaml, or ..._pretrained.yaml) with
--set changes for the same wall-clock budget (--seconds) on one thread; --parallel runs that
many at once (each on its own core). A run is stopped by SIGINT when its budget is spent and
scored from its last checkpoint, on prompts for the class and measured attributes of --n
random test images, said in phrasings training never used (held-out templates; held-out
synonyms):
  cacc: the domain classifier's class of each sample = the prompt's class;
  attr: brightness and size measured on each sample = the prompt's (data.fashion_captions);
  rprec: R-precision with the image-text matcher (--matcher, `ganforge train-matcher`);
  FID and KID against the real test images, in domain-classifier features.
A last row scores real test images against prompts made from their own class and measured
attributes (cacc is then the classifier's accuracy, attr 1 by construction): the ceiling.
--truncation PSI adds a row per variant sampled with z scaled by PSI (more typical, less
varied samples: what the truncation trick buys and costs).

    python benchmarks/text_to_image.py --seconds 900 --parallel 2 \\
        --classifier fm-classifier.safetensors --matcher fm-matcher.safetensors
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import budget

TRAINABLE = "configs/fashion_mnist_text.yaml"
PRETRAINED = "configs/fashion_mnist_text_pretrained.yaml"
COMMON = ["log.progress=false", "log.every=100", "train.sample_every=1000",
          "train.checkpoint_every=100000", "train.steps=1000000"]
VARIANTS = {  # name -> (config, --set changes)
    "trainable": (TRAINABLE, []),
    "trainable - mismatch": (TRAINABLE, ["loss.mismatch=false"]),
    "trainable + attention": (TRAINABLE, ["model.attention=true"]),
    "trainable + affine fusion": (TRAINABLE, ["model.text_fusion=affine"]),
    "pretrained": (PRETRAINED, []),
    "pretrained - mismatch": (PRETRAINED, ["loss.mismatch=false"]),
}
PHRASINGS = ("templates", "synonyms")


def slug(name: str) -> str:
    """A folder name for a variant."""
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def train_variant(name: str, seconds: float, root: Path, extra: list[str]) -> dict:
    """Train one variant for the budget; returns its steps and seconds."""
    config, changes = VARIANTS[name]
    out = root / slug(name)
    budget.train_for(config, out, COMMON + changes + extra, seconds)
    return run_size(out)


def run_size(run: Path) -> dict:
    """A trained run's steps and training seconds (read back for --score-only too)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    taken = json.loads((run / "train_seconds.json").read_text())
    return {"steps": max(r["step"] for r in rows), "train_seconds": taken}


def score_run(run: Path, args: argparse.Namespace, truncation: float | None = None) -> dict:
    """Every metric of one run's last checkpoint, for each held-out phrasing (sampled with
    the truncation trick when given)."""
    from ganforge.training.evaluation import evaluate_target

    scores = {}
    for phrasing in PHRASINGS:
        metrics = ["cacc", "attr", "fid", "kid"] + (["rprec"] if args.matcher else [])
        result = evaluate_target(
            str(run), against=None, metrics=metrics, n=args.n, seed=0,
            features=f"classifier:{args.classifier}", progress=False,
            matcher=args.matcher, phrasing=phrasing, truncation=truncation,
        )
        scores[phrasing] = {k: v for k, v in result.items() if isinstance(v, float)}
    return scores


def score_real(args: argparse.Namespace) -> dict:
    """The ceiling: real test images against prompts of their own class and attributes."""
    import torch

    from ganforge.config import DataConfig
    from ganforge.data import build_dataset
    from ganforge.metrics.evaluate import evaluate
    from ganforge.metrics.text import attribute_accuracy
    from ganforge.training.text_eval import fashion_prompts, text_scores

    against = DataConfig(source="fashion-mnist-captions", split="test")
    data = build_dataset(against)
    scores = {}
    for phrasing in PHRASINGS:
        prompts = fashion_prompts(against, args.n, 0, phrasing)
        rows = torch.randint(len(data), (args.n,), generator=torch.Generator().manual_seed(0))
        images = data.x[rows]  # the very images the prompts describe
        def real(n: int, seed: int, images=images, labels=prompts.labels):
            return images[:n], labels[:n]

        result = evaluate(real, against=against,
                          metrics=["cacc"], features=f"classifier:{args.classifier}",
                          n=args.n, seed=0, progress=False)
        row = {"cacc": result["cacc"]}
        row.update(attribute_accuracy(images, prompts.brightness, prompts.size))
        if args.matcher:
            more, _ = text_scores(images, prompts, ["rprec"], args.matcher, 0, "cpu")
            row.update(more)
        scores[phrasing] = row
    return scores


def table(results: dict) -> str:
    """A markdown table: one row per variant, held-out templates then synonyms."""
    head = ("| variant | steps | train s | cacc tmpl | attr tmpl | rprec tmpl | cacc syn "
            "| attr syn | rprec syn | FID | KID×1e3 |")
    lines = [head, "|" + "---|" * 11]
    for name, r in results.items():
        t, s = r["scores"]["templates"], r["scores"]["synonyms"]

        def cell(row: dict, key: str, scale: float = 1.0, fmt: str = ".3f") -> str:
            return f"{row[key] * scale:{fmt}}" if key in row else "–"

        lines.append(
            f"| {name} | {r.get('steps', '')} | {r.get('train_seconds', 0):.0f} | "
            f"{cell(t, 'cacc')} | {cell(t, 'attr_acc')} | {cell(t, 'rprec')} | "
            f"{cell(s, 'cacc')} | {cell(s, 'attr_acc')} | {cell(s, 'rprec')} | "
            f"{cell(t, 'fid', 1, '.2f')} | {cell(t, 'kid', 1e3, '.1f')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=900.0, help="wall time per variant")
    parser.add_argument("--parallel", type=int, default=1, help="variants trained at once")
    parser.add_argument("--classifier", default="fm-classifier.safetensors")
    parser.add_argument("--matcher", default=None, help="matcher file for R-precision")
    parser.add_argument("--n", type=int, default=2000, help="prompts scored per phrasing")
    parser.add_argument("--root", default="runs/bench-text-to-image")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", default="text_to_image.json")
    parser.add_argument("--score-only", action="store_true", help="score existing runs")
    parser.add_argument("--set", dest="extra", action="append", default=[],
                        help="a config change for every variant")
    parser.add_argument("--truncation", type=float, metavar="PSI",
                        help="also score every variant with the truncation trick at PSI "
                        "(z scaled by PSI): one more row each")
    args = parser.parse_args()
    root = Path(args.root)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    results: dict = {}
    if not args.score_only:
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            runs = {n: pool.submit(train_variant, n, args.seconds, root, args.extra)
                    for n in names}
            results = {n: future.result() for n, future in runs.items()}
    for name in names:
        results[name] = {**run_size(root / slug(name)), **results.get(name, {})}
        results[name]["scores"] = score_run(root / slug(name), args)
        print(name, json.dumps(results[name]), flush=True)
        if args.truncation is not None:
            row = f"{name}, truncation {args.truncation:g}"
            results[row] = {**results[name],
                            "scores": score_run(root / slug(name), args, args.truncation)}
            print(row, json.dumps(results[row]), flush=True)
    results["real test images (ceiling)"] = {"scores": score_real(args)}
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
