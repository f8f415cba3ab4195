"""`ganforge export RUN --format onnx|safetensors --out PATH`: a run's generator for use outside
ganforge, with a JSON sidecar saying how to call it.

What is exported: the generator the run samples with, as `load_run` rebuilds it from the newest
(or the given) checkpoint: the EMA copy when the run kept one, in eval mode (batch norm running
statistics, no dropout), style-based generators without truncation.

Its inputs and output (ONNX graph names; the sidecar lists them with shapes and dtypes):
- noise GANs: `z` float32 (N, z_dim), standard normal noise;
- class-conditional runs: `z` and `label` int64 (N,), class indices in [0, K) (the sidecar's
  class_names are in index order);
- image-to-image runs: `image` float32 (N, C, H, W) in [-1, 1], an image of the input domain of
  the run's training direction (a CycleGAN run's other direction with direction="BtoA"/"AtoB");
- text-to-image runs: `z` and `tokens` int64 (N, L), each caption's word ids under the sidecar's
  vocabulary (the trainable encoder is exported with G), or `z` and `text_code` float32 (N, 384),
  the pretrained sentence encoder's codes (model.text_encoder=pretrained);
- output: `images` float32 (N, C, H, W), in [-1, 1] under G's tanh (uint8 = round((x + 1) *
  127.5)), or `samples` float32 (N, D) in the data's own scale for vector data (as `ganforge
  sample` writes .npy). N, the batch axis, is dynamic.

The sidecar is PATH + ".json" (G.onnx -> G.onnx.json), so that the ONNX and safetensors exports
of one run can sit side by side. It is written last and records the SHA-256 of PATH.

ONNX: torch.onnx's torch.export-based exporter (dynamo=True, which needs onnxscript); the
TorchScript exporter (dynamo=False) is deprecated since torch 2.9. The file is checked in
onnxruntime against PyTorch at batch sizes 1 and 7 before it is kept: a max abs difference
above 1e-4, or an op ONNX cannot express (named, with the module that calls it), is refused.

safetensors: G's state dict alone (text runs: the wrapper's, G and the trainable encoder); the
sidecar adds the run's config and data description
(as checkpoint metadata holds them), from which `load_generator` rebuilds G.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge import __version__, tasks
from ganforge import config as configlib
from ganforge.data.dataset import DataInfo
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write, atomic_write_bytes, atomic_write_json, file_digest
from ganforge.tasks.base import resolve_hyper
from ganforge.tasks.conditional import ClassSampler
from ganforge.tasks.sampling import Sampler, generate
from ganforge.tasks.text import TextSampler
from ganforge.tasks.translation import TranslationSampler
from ganforge.training import checkpoint
from ganforge.training.generator import LoadedRun, load_run

FORMATS = ("onnx", "safetensors")
SIDECAR_FORMAT = "ganforge-generator"
SIDECAR_VERSION = 1
TOLERANCE = 1e-4  # max abs difference onnxruntime vs PyTorch that an ONNX export may have
CHECK_BATCHES = (1, 7)  # batch sizes the ONNX check runs (1: the batch axis really is dynamic)
TRACE_BATCH = 2  # the example batch the exporter traces (torch.export specializes 0 and 1)
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


@dataclass
class Port:
    """One named input or output of the exported generator, as the sidecar describes it."""

    name: str
    shape: list[int | str]  # "N" for the batch axis
    dtype: str
    description: str

    def to_meta(self) -> dict[str, Any]:
        """Plain values for the sidecar."""
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype,
                "description": self.description}


@dataclass
class Spec:
    """What is exported: G wrapped with named inputs, its ports, and where its weights live."""

    module: nn.Module  # the wrapper (NoiseInput, ClassInput or ImageInput) around G
    inputs: list[Port]
    output: Port
    weights: str  # G's name among the task's nets (what build_nets gives): G, G_AB, G_BA
    source: str  # the checkpoint module the weights came from (G_ema when the run kept one)
    direction: str | None = None  # image-to-image runs
    class_names: list[str] | None = None  # class-conditional runs, in label order
    vocabulary: list[str] | None = None  # text-to-image runs: word ids (index = id)

    @property
    def G(self) -> nn.Module:
        """The generator inside the wrapper."""
        return self.module.generator


@dataclass
class Exported:
    """What `export_generator` wrote."""

    out: Path
    sidecar: Path
    meta: dict[str, Any]


# -- the generator with named inputs -------------------------------------------------------------


class NoiseInput(nn.Module):
    """z (N, z_dim) float32 -> G(z): an unconditional generator."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) or samples (N, D)."""
        return self.generator(z)


class ClassInput(NoiseInput):
    """z (N, z_dim) float32, label (N,) int64 class indices -> G(z, label)."""

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Images (N, C, H, W) or samples (N, D) of the given classes."""
        return self.generator(z, label)


class ImageInput(NoiseInput):
    """image (N, C, H, W) float32 in [-1, 1] -> G(image): one direction of a translator."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """The translated images (N, C', H, W) in [-1, 1]."""
        return self.generator(image)


class TokensInput(NoiseInput):
    """z (N, z_dim), tokens (N, L) int64 word ids -> G(z, caption codes): a text-to-image
    generator with its trainable text encoder inside (tokenize with the sidecar's vocabulary)."""

    def __init__(self, generator: nn.Module, encoder: nn.Module) -> None:
        super().__init__(generator)
        self.encoder = encoder

    def forward(self, z: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Images (N, C, H, W) of the captions."""
        text = self.encoder(tokens)
        if self.generator.attention is None:
            return self.generator(z, text.sentence)
        return self.generator(z, text.sentence, text.words, text.mask)


class TextCodeInput(NoiseInput):
    """z (N, z_dim), text_code (N, E) float32 -> G(z, code): a text-to-image generator whose
    captions are encoded outside (the pretrained sentence encoder the sidecar names)."""

    def forward(self, z: torch.Tensor, text_code: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Images (N, C, H, W) of the captions the codes encode."""
        return self.generator(z, text_code)


TEXT_INPUTS = (TokensInput, TextCodeInput)


def text_input(generator: nn.Module, discriminator: nn.Module, config: Any) -> nn.Module:
    """A text-to-image G wrapped with its caption input: D's trainable encoder inside, or
    sentence codes from outside (model.text_encoder=pretrained)."""
    if config.model.text_encoder == "pretrained":
        return TextCodeInput(generator)
    return TokensInput(generator, discriminator.encoder)


def text_spec(loaded: LoadedRun, z: Port, output: Port) -> Spec:
    """A text-to-image run's G with its caption input: word ids through the trainable encoder
    (exported with G), or the pretrained encoder's sentence codes."""
    sampler = loaded.sampler
    codes = sampler.codes
    if codes.pretrained is None:
        tokens = Port("tokens", ["N", codes.max_words], "int64",
                      "word ids of each caption (the sidecar's vocabulary: 0 pads, 1 unknown), "
                      "as ganforge.text.vocab.Vocabulary.encode_batch gives them")
        inputs = [z, tokens]
    else:
        code = Port("text_code", ["N", codes.pretrained.out_dim], "float32",
                    f"sentence codes of {codes.pretrained.name} (sentence-transformers, "
                    "normalized), one per caption")
        inputs = [z, code]
    module = text_input(sampler.G, sampler.D, loaded.config)
    return Spec(module, inputs, output, "G", source_module(loaded),
                vocabulary=codes.vocabulary.to_meta())


def output_port(loaded: LoadedRun, shape: tuple[int, ...]) -> Port:
    """`images` in [-1, 1] (or unbounded without tanh) or `samples` in the data's scale."""
    if loaded.kind != "image":
        return Port("samples", ["N", *shape], "float32",
                    "samples in the data's own scale (as `ganforge sample` writes .npy)")
    out_act = resolve_hyper(loaded.config, "image").out_act
    scale = ("in [-1, 1] (tanh); uint8 = round((x + 1) * 127.5)" if out_act == "tanh" else
             "meant in [-1, 1] but unbounded (model.out_act=none): clamp to [-1, 1] first")
    return Port("images", ["N", *shape], "float32", f"images NCHW, {scale}")


def source_module(loaded: LoadedRun) -> str:
    """G_ema when the checkpoint holds an EMA copy of G (what load_run samples with), else G."""
    from safetensors import safe_open

    tensors = loaded.checkpoint.with_name(loaded.meta["tensors_file"])
    with safe_open(str(tensors), framework="pt") as handle:
        names = handle.keys()  # (safe_open is not iterable)
        return "G_ema" if any(k.startswith("G_ema.") for k in names) else "G"


def generator_spec(loaded: LoadedRun, direction: str | None = None) -> Spec:
    """The run's sampling generator with named inputs; clear errors for what cannot export."""
    sampler, info = loaded.sampler, loaded.sampler.info
    if isinstance(sampler, TranslationSampler):
        direction = direction or sampler.forward
        G = sampler.translator(direction)  # refuses a direction the run did not learn
        names = tasks.get(sampler.task).translator_names(loaded.config)
        weights = names["forward" if direction == sampler.forward else "backward"]
        shape_in = tuple(sampler.input_shape(direction))
        shape_out = tuple(info.shape_b if direction == sampler.forward else info.shape)
        image = Port("image", ["N", *shape_in], "float32",
                     f"images NCHW of the input domain ({direction}), in [-1, 1]")
        return Spec(ImageInput(G), [image], output_port(loaded, shape_out), weights, weights,
                    direction)
    if direction is not None:
        raise GanforgeError(
            f"--direction applies to image-to-image runs (pix2pix, cyclegan); this run's task "
            f"is '{sampler.task}'. Export it without --direction."
        )
    z = Port("z", ["N", int(sampler.G.z_dim)], "float32", "noise, standard normal N(0, I)")
    output = output_port(loaded, tuple(info.shape))
    if isinstance(sampler, ClassSampler):
        names = [str(name) for name in sampler.class_names]
        label = Port("label", ["N"], "int64",
                     f"class indices in [0, {len(names)}) (class_names lists them in order)")
        return Spec(ClassInput(sampler.G), [z, label], output, "G", source_module(loaded),
                    class_names=names)
    if isinstance(sampler, TextSampler):
        return text_spec(loaded, z, output)
    if type(sampler).draw is not Sampler.draw:  # G takes more than z; say so, do not guess
        raise GanforgeError(
            f"ganforge export does not know the inputs of task '{sampler.task}''s generator "
            "(it samples with more than noise). Write its weights with --format safetensors "
            "and rebuild it with ganforge.export.load_generator."
        )
    return Spec(NoiseInput(sampler.G), [z], output, "G", source_module(loaded))


def example_inputs(spec: Spec, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """n inputs of each port from a seeded generator: noise, cycling labels, uniform images."""
    generator = torch.Generator().manual_seed(seed)
    made = []
    for port in spec.inputs:
        shape = (n, *port.shape[1:])
        if port.name == "label":
            made.append(torch.arange(n) % len(spec.class_names or [None]))
        elif port.name == "tokens":  # captions of 1 to L known words, then padding
            words = torch.randint(2, len(spec.vocabulary or "xyz"), shape, generator=generator)
            length = torch.randint(1, shape[1] + 1, (n, 1), generator=generator)
            made.append(words * (torch.arange(shape[1]) < length))
        elif port.name == "image":
            made.append(torch.rand(shape, generator=generator) * 2 - 1)
        else:
            made.append(torch.randn(shape, generator=generator))
    return tuple(made)


# -- checks before any work ----------------------------------------------------------------------


def sidecar_path(out: str | Path) -> Path:
    """Where the JSON of an exported file goes: PATH + '.json' (G.onnx -> G.onnx.json)."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def pick_format(fmt: str | None, out: Path) -> str:
    """--format, or the one --out's suffix names; a clear error when neither says."""
    fmt = fmt or {".onnx": "onnx", ".safetensors": "safetensors"}.get(out.suffix.lower())
    if fmt not in FORMATS:
        raise GanforgeError(
            f"Cannot tell the export format of '{out}': pass --format onnx or --format "
            "safetensors (or end --out in .onnx or .safetensors)."
        )
    return fmt


def check_outputs(out: Path, overwrite: bool) -> None:
    """Refuse a folder as --out, and an existing PATH or PATH.json unless overwrite."""
    if out.is_dir():
        raise GanforgeError(f"--out '{out}' is a folder; give a file path, e.g. {out / 'G.onnx'}.")
    existing = [p for p in (out, sidecar_path(out)) if p.exists()]
    if existing and not overwrite:
        raise GanforgeError(f"'{existing[0]}' exists. Pick another --out or pass --overwrite.")


def check_run(target: str | Path) -> None:
    """A clear error for a folder that is neither a run nor a checkpoints folder."""
    path = Path(target)
    if path.is_dir() and not (path / "config.yaml").is_file() and not (
        (path / "checkpoints").is_dir() or checkpoint.list_checkpoints(path)
    ):
        raise GanforgeError(
            f"'{target}' is not a ganforge run: it has no config.yaml and no checkpoints/. Give "
            "the folder `ganforge train --out` wrote, or one of its "
            "checkpoints/step-XXXXXXXX.safetensors files."
        )


# -- ONNX ----------------------------------------------------------------------------------------


def require_onnx() -> None:
    """A clear error naming the packages ONNX export needs, when one is missing."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise GanforgeError(
            f"ONNX export needs {', '.join(missing)}: pip install 'ganforge[export]' (or "
            "`pip install onnx onnxscript onnxruntime`), or export with --format safetensors."
        )
    if "dynamo" not in inspect.signature(torch.onnx.export).parameters:
        raise GanforgeError(
            f"ONNX export needs torch 2.5 or newer (its torch.export-based exporter); this is "
            f"torch {torch.__version__}. Upgrade torch, or export with --format safetensors."
        )


def onnx_program(spec: Spec) -> Any:
    """torch.onnx.export of the wrapper with a dynamic batch axis (an ONNXProgram); an op
    ONNX cannot express becomes a GanforgeError naming it and the module calling it."""
    batch = torch.export.Dim("N")
    args = example_inputs(spec, TRACE_BATCH, seed=0)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its registry warns about optional torchvision ops
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                program = torch.export.export(
                    spec.module.eval(), args, dynamic_shapes=tuple({0: batch} for _ in args),
                    strict=False,
                )
            except Exception as exc:  # noqa: BLE001 - torch.export raises many types
                raise untraceable(exc) from None
            try:
                return torch.onnx.export(
                    program, (), None, dynamo=True, verbose=False,
                    input_names=[p.name for p in spec.inputs], output_names=[spec.output.name],
                )
            except torch.onnx.errors.OnnxExporterError as exc:  # ConversionError and kin
                raise unsupported(exc, program) from None
    finally:
        quiet.setLevel(level)


def untraceable(exc: Exception) -> GanforgeError:
    """The error for a generator torch.export cannot trace (e.g. data-dependent Python)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return GanforgeError(
        f"This generator cannot be traced for ONNX export ({type(exc).__name__}: {first}). "
        "Export it with --format safetensors and rebuild it with "
        "ganforge.export.load_generator."
    )


def unsupported(exc: Exception, program: Any) -> GanforgeError:
    """The error for a graph the ONNX exporter cannot translate: the op, the calling module."""
    chain, cause = [], exc
    while cause is not None:
        chain.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = "\n".join(chain)
    target = re.search(r"target=torch\.ops\.([\w.]+)", text)
    overload = re.search(r"op='([\w.]+)', overload='(\w+)'", text)
    op = target.group(1) if target else ".".join(overload.groups()) if overload else None
    if op is None:
        first = chain[0].strip().splitlines()[0] if chain[0].strip() else type(exc).__name__
        return GanforgeError(
            f"The ONNX exporter failed on this generator ({first}). Export it with --format "
            "safetensors and rebuild it with ganforge.export.load_generator."
        )
    node = re.search(r"node %(\w+) :", text)
    where = calling_module(program, op, node.group(1) if node else None)
    return GanforgeError(
        f"This generator uses {op}{where}, which ONNX cannot express (torch.onnx has no "
        "translation for it). Export with --format safetensors (G's weights + JSON, rebuilt by "
        "ganforge.export.load_generator), or replace that op in the architecture."
    )


def calling_module(program: Any, op: str, node_name: str | None) -> str:
    """' in G.path (Class)' for the innermost module calling op in the traced program, or ''.

    The failing op is named after the exporter's decompositions, the traced program before
    them: match its exact name, then its name without namespace and underscores (prims.erf_inv
    ~ aten.erfinv), then the graph node's name.
    """
    nodes = [node for node in program.graph.nodes
             if node.op == "call_function" and node.meta.get("nn_module_stack")]
    matches = (
        lambda node: str(node.target) == op,
        lambda node: op_stem(str(node.target)) == op_stem(op),
        lambda node: node.name == node_name,
    )
    for match in matches:
        for node in nodes:
            if match(node):
                path, kind = list(node.meta["nn_module_stack"].values())[-1]
                path = re.sub(r"^generator\.?", "", str(path))
                kind = kind.__name__ if isinstance(kind, type) else str(kind).rsplit(".", 1)[-1]
                return f" in G{'.' + path if path else ''} ({kind})"
    return ""


def op_stem(op: str) -> str:
    """'aten.median.dim' -> 'median', 'prims.erf_inv.default' -> 'erfinv'."""
    parts = op.split(".")
    return (parts[1] if len(parts) > 1 else parts[0]).replace("_", "")


def differences(path: Path, spec: Spec) -> dict[int, float]:
    """Max abs difference onnxruntime vs PyTorch (eval mode) per batch size in CHECK_BATCHES;
    inf where the output shapes differ."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # small checks; leave the cores to the user's work
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    found = {}
    for seed, n in enumerate(CHECK_BATCHES, start=1):
        inputs = example_inputs(spec, n, seed)
        feed = {p.name: x.numpy() for p, x in zip(spec.inputs, inputs, strict=True)}
        got = torch.from_numpy(session.run([spec.output.name], feed)[0])
        want = generate(spec.module, *inputs)
        same_shape = got.shape == want.shape
        found[n] = float((got - want).abs().max()) if same_shape else float("inf")
    return found


def write_onnx(spec: Spec, out: Path) -> dict[str, Any]:
    """Export, check in onnxruntime, keep the file only if it matches; the check's record."""
    program = onnx_program(spec)
    graph = program.model.graph
    if hasattr(program, "rename_axes"):  # torch names the batch axis s0, s40, ...: call it N
        program.rename_axes({graph.inputs[0].shape[0]: "N"})
    for value, port in zip([*graph.inputs, *graph.outputs], [*spec.inputs, spec.output],
                           strict=True):
        value.doc_string = port.description  # what the sidecar says, inside the file too
    record: dict[str, Any] = {}

    def write(tmp: Path) -> None:
        program.save(str(tmp), external_data=False)
        found = differences(tmp, spec)
        for n, diff in found.items():
            if not diff <= TOLERANCE:  # also refuses NaN
                raise GanforgeError(
                    f"The ONNX export differs from PyTorch by {diff:.3g} (max abs, batch size "
                    f"{n}; allowed {TOLERANCE:g}) in onnxruntime, so it was not written. Export "
                    "with --format safetensors instead, or report this with the run's config."
                )
        record.update(max_abs_difference=max(found.values()), batch_sizes=list(found),
                      tolerance=TOLERANCE, runtime="onnxruntime")

    atomic_write(out, write)
    opset = program.model.opset_imports.get("", None)
    return {"check": record, "opset": opset}


# -- safetensors ---------------------------------------------------------------------------------


def write_safetensors(spec: Spec, out: Path) -> dict[str, Any]:
    """G's state dict alone, as safetensors."""
    from safetensors.torch import save

    net = spec.module if isinstance(spec.module, TEXT_INPUTS) else spec.G  # text: + encoder
    state = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    # bytes, not save_file: save_file recreates the temp file as 0600, whatever the umask says
    atomic_write_bytes(out, save(state, metadata={"format": SIDECAR_FORMAT}))
    return {}


def load_generator(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """(G in eval mode on device, its sidecar) from an exported .safetensors and its JSON: G is
    rebuilt from the sidecar's task, config and data description, then gets the weights. Call
    it as the sidecar's inputs say (ganforge.tasks.sampling.generate(G, z[, label]) samples)."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_sidecar(path)
    if meta["file_format"] != "safetensors":
        raise GanforgeError(
            f"'{path}' is an ONNX export; run it with onnxruntime. load_generator reads the "
            "--format safetensors export of a run."
        )
    config = configlib.from_dict(meta["config"])
    info = DataInfo.from_meta(meta["data"])
    task = tasks.get(meta["task"])
    with torch.random.fork_rng(devices=[]):  # building nets draws init weights: leave no trace
        nets = task.build_nets(config, info)
    if meta["task"] == "text":  # G with its caption input, as exported
        G = text_input(*nets, config)
    else:
        if isinstance(nets, tuple):  # adversarial tasks build (G, D); translation ones a dict
            nets = {"G": nets[0]}
        G = nets[meta["weights"]]
    try:
        G.load_state_dict(load_file(str(path), device="cpu"))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise GanforgeError(
            f"'{path}' does not fit the generator its JSON describes "
            f"({first[1].strip() if len(first) > 1 else first[0]}). Export the run again."
        ) from None
    return G.to(device).eval(), meta


def read_sidecar(path: Path) -> dict[str, Any]:
    """The JSON beside an exported file, checked: ours, readable, matching the file's hash."""
    side = sidecar_path(path)
    try:
        meta = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GanforgeError(
            f"'{side}' is missing or unreadable ({exc}); it is written beside every "
            "`ganforge export` output. Export the run again."
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise GanforgeError(f"'{side}' is not the JSON of a `ganforge export` output.")
    if meta.get("format_version", 0) > SIDECAR_VERSION:
        raise GanforgeError(f"'{side}' was written by a newer ganforge; upgrade ganforge.")
    if not path.is_file() or file_digest(path) != meta["sha256"]:
        raise GanforgeError(
            f"'{path}' is missing or does not match its JSON (SHA-256 differs): export the run "
            "again."
        )
    return meta


# -- the verb ------------------------------------------------------------------------------------


def versions(fmt: str) -> dict[str, str]:
    """ganforge, torch and (for ONNX) exporter and runtime versions."""
    found = {"ganforge": __version__, "torch": torch.__version__}
    if fmt == "onnx":
        import onnx
        import onnxruntime
        import onnxscript

        found.update(onnx=onnx.__version__, onnxscript=onnxscript.__version__,
                     onnxruntime=onnxruntime.__version__)
    return found


def sidecar(
    target: str | Path, loaded: LoadedRun, spec: Spec, fmt: str, out: Path, extra: dict
) -> dict[str, Any]:
    """Everything a user of the exported file needs, and what rebuilds G (safetensors)."""
    info = loaded.sampler.info
    return {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "file": out.name,
        "file_format": fmt,
        "sha256": file_digest(out),
        "task": loaded.sampler.task,
        "arch": loaded.config.model.arch,
        "weights": spec.weights,
        "weights_from": spec.source,
        "direction": spec.direction,
        "inputs": [port.to_meta() for port in spec.inputs],
        "output": spec.output.to_meta(),
        "class_names": spec.class_names,
        "vocabulary": spec.vocabulary,
        "data_shape": list(info.shape),
        "data": loaded.meta["data"],
        "config": loaded.config.to_dict(),
        "source": {"run": str(Path(target).resolve()),
                   "checkpoint": str(loaded.checkpoint.resolve()), "step": loaded.step},
        "versions": versions(fmt),
        **extra,
    }


def export_generator(
    target: str | Path, out: str | Path, *, fmt: str | None = None,
    direction: str | None = None, overwrite: bool = False,
) -> Exported:
    """`ganforge export`: write a run's sampling generator as ONNX or safetensors + its JSON."""
    out = Path(out)
    check_outputs(out, overwrite)
    fmt = pick_format(fmt, out)
    check_run(target)
    if fmt == "onnx":
        require_onnx()
    loaded = load_run(target, "cpu")
    spec = generator_spec(loaded, direction)
    with torch.random.fork_rng(devices=[]):  # tracing and checking leave the RNG as it was
        extra = write_onnx(spec, out) if fmt == "onnx" else write_safetensors(spec, out)
    meta = sidecar(target, loaded, spec, fmt, out, extra)
    return Exported(out, atomic_write_json(sidecar_path(out), meta), meta)
