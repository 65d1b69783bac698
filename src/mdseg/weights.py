"""Pretrained weights in the Hugging Face hub cache: filled on a networked machine, read offline.

``snakemake weights`` (``mdseg weights``) fills the cache on the submitting machine; training and
encoding jobs only look files up in it (``local_files_only``), so no job touches the network.
The cache is huggingface_hub's: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
``~/.cache/huggingface/hub``; it must be the same folder on the login and compute nodes.

ImageNet backbones are timm's ``<hrnet>.ms_in1k`` weights: the HRNet authors' ImageNet
classifiers (HRNet-Image-Classification), the ``hrnetv2_w48_imagenet_pretrained.pth`` that
AutoUniSeg's configs and the HRNet segmentation code load. timm's untagged default differs for
two of them (``gluon_in1k`` for W18-Small-v2, ``ms_aug_in1k`` for W18), hence the explicit tag.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mdseg.io import sha256

if TYPE_CHECKING:
    from timm.models import PretrainedCfg

IMAGENET = "imagenet"
IMAGENET_TAG = "ms_in1k"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
FILL = "`snakemake weights` (or `{command}`) on a machine with network access"
GATED = (
    "gated models such as meta-llama/Llama-2-7b-hf need their license accepted on "
    "https://huggingface.co/{repo} and a token: `hf auth login` (huggingface-cli login in older "
    "huggingface_hub) or HF_TOKEN"
)


class WeightsNotCached(FileNotFoundError):
    """Weights that a job needs are missing from the hub cache."""


def hub_cache() -> Path:
    """The hub cache folder as huggingface_hub resolves it, read from the environment now.

    huggingface_hub reads these variables once, at import; resolving them per call lets a
    process (and the tests) point at another cache after the import.
    """
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface",
    )
    default = os.path.join(os.path.expandvars(os.path.expanduser(home)), "hub")
    legacy = os.environ.get("HUGGINGFACE_HUB_CACHE") or default
    return Path(os.path.expandvars(os.path.expanduser(os.environ.get("HF_HUB_CACHE") or legacy)))


def is_hub_id(path: str | Path) -> bool:
    """True for ``owner/name`` that is not an existing local path (local folders win)."""
    text = str(path)
    return bool(HUB_ID.match(text)) and not Path(text).expanduser().exists()


# ----------------------------------------------------------------------------- backbones


def imagenet_id(backbone: str) -> str:
    """timm's model id of the ImageNet weights of ``backbone``, e.g. ``hrnet_w48.ms_in1k``."""
    return f"{backbone}.{IMAGENET_TAG}"


def _imagenet_cfg(backbone: str) -> PretrainedCfg:
    import timm.models

    cfg = timm.models.get_pretrained_cfg(imagenet_id(backbone))
    if cfg is None or not cfg.hf_hub_id:
        raise ValueError(f"timm has no hub weights {imagenet_id(backbone)!r}")
    return cfg


def imagenet_source(backbone: str) -> str:
    """The hub repository timm loads ``backbone``'s ImageNet weights from."""
    return _imagenet_cfg(backbone).hf_hub_id


def cached_imagenet_file(backbone: str, cache: Path | None = None) -> Path:
    """The cached checkpoint timm would load for ``backbone`` (safetensors first, as timm).

    Only the cache is read. Missing: :class:`WeightsNotCached` naming the cache and the command
    that fills it.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    from timm.models._hub import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    cache = cache or hub_cache()
    cfg = _imagenet_cfg(backbone)
    names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else []
    for name in (*names, HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME):
        try:
            return Path(
                hf_hub_download(cfg.hf_hub_id, name, cache_dir=cache, local_files_only=True)
            )
        except LocalEntryNotFoundError:
            continue
    command = FILL.format(command=f"mdseg weights backbone {backbone}")
    raise WeightsNotCached(
        f"backbone {backbone} (weights: imagenet): {cfg.hf_hub_id} is not in the hub cache "
        f"{cache} (HF_HUB_CACHE / HF_HOME); fill it with {command}"
    )


def fetch_imagenet(backbone: str, cache: Path | None = None) -> dict[str, Any]:
    """Download ``backbone``'s ImageNet weights through timm into the cache (if missing).

    Returns the record written by ``mdseg weights``: hub id, revision, file and its sha256.
    """
    import timm

    cache = cache or hub_cache()
    try:
        path = cached_imagenet_file(backbone, cache)
    except WeightsNotCached:
        try:  # timm's own pretrained mechanism fills the hub cache
            timm.create_model(imagenet_id(backbone), pretrained=True, cache_dir=cache)
        except Exception as err:  # network, proxy, offline mode: all end here
            raise WeightsNotCached(
                f"backbone {backbone}: could not download {imagenet_source(backbone)} into "
                f"{cache}: {type(err).__name__}: {err} (unset HF_HUB_OFFLINE and run this where "
                "huggingface.co is reachable)"
            ) from err
        path = cached_imagenet_file(backbone, cache)
    return {
        "backbone": backbone,
        "source": imagenet_source(backbone),
        "revision": path.parent.name,
        "file": str(path),
        "sha256": sha256(path),
        "cache": str(cache),
    }


# ----------------------------------------------------------------------------- text encoders


def cached_snapshot(repo: str, cache: Path | None = None) -> Path:
    """The cached snapshot folder of hub model ``repo``; only the cache is read."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    cache = cache or hub_cache()
    try:
        folder = Path(snapshot_download(repo, cache_dir=cache, local_files_only=True))
    except LocalEntryNotFoundError as err:
        command = FILL.format(command=f"mdseg weights encoder {repo}")
        raise WeightsNotCached(
            f"text encoder {repo}: not in the hub cache {cache} (HF_HUB_CACHE / HF_HOME); fill it "
            f"with {command}; {GATED.format(repo=repo)}"
        ) from err
    if not (folder / "config.json").is_file():
        raise WeightsNotCached(f"text encoder {repo}: cached snapshot {folder} has no config.json")
    return folder


def _skipped_formats(repo: str) -> list[str]:
    """Other weight formats to skip when the repository ships safetensors (llama-2: 13 GB each)."""
    from huggingface_hub import HfApi

    files = [s.rfilename for s in HfApi().model_info(repo).siblings or []]
    if any(f.endswith(".safetensors") for f in files):
        return ["*.bin", "*.pth", "*.pt", "*.h5", "*.msgpack", "*.onnx", "*.ot", "original/*"]
    return []


def fetch_snapshot(repo: str, cache: Path | None = None) -> dict[str, Any]:
    """Download hub model ``repo`` (config, tokenizer, weights) into the cache if missing."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    cache = cache or hub_cache()
    try:
        folder = cached_snapshot(repo, cache)
    except WeightsNotCached:
        try:
            snapshot_download(repo, cache_dir=cache, ignore_patterns=_skipped_formats(repo))
        except (GatedRepoError, RepositoryNotFoundError) as err:
            raise WeightsNotCached(
                f"text encoder {repo}: no such repository, or access refused "
                f"({type(err).__name__}); {GATED.format(repo=repo)}"
            ) from err
        except Exception as err:
            raise WeightsNotCached(
                f"text encoder {repo}: could not download into {cache}: "
                f"{type(err).__name__}: {err} (unset HF_HUB_OFFLINE and run this where "
                "huggingface.co is reachable)"
            ) from err
        folder = cached_snapshot(repo, cache)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {
        "encoder": repo,
        "revision": folder.name,
        "folder": str(folder),
        "files": {str(p.relative_to(folder)): p.stat().st_size for p in files},
        "cache": str(cache),
    }
