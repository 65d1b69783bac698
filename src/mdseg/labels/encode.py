"""Encode every class description of a set of datasets into one ``features.pt`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mdseg.datasets.classnames import load_classnames
from mdseg.io import save_torch
from mdseg.labels.descriptions import describe
from mdseg.labels.encoders import TextEncoder
from mdseg.progress import progress


def encode_datasets(
    keys: list[str], encoder: TextEncoder, out_path: str | Path, batch_size: int = 32
) -> None:
    """Write ``{"encoder", "source", "dim", "datasets": {key: {"classes", "descriptions", ...}}}``.

    Each dataset entry also holds ``features``, a float32 tensor ``[n_classes, dim]`` in class-id
    order; ``source`` is the model folder they came from (a hub snapshot is named by its
    revision). The file is written atomically: an interrupted run leaves no partial file.
    """
    datasets: dict[str, dict[str, Any]] = {}
    with progress(len(keys), f"encoding labels ({encoder.name})", unit="dataset") as bar:
        for key in keys:
            descriptions = describe(key)
            datasets[key] = {
                "classes": load_classnames(key),
                "descriptions": descriptions,
                "features": encoder.encode(descriptions, batch_size=batch_size)
                .float()
                .contiguous(),
            }
            bar.update()
    payload = {
        "encoder": encoder.name,
        "source": encoder.source,
        "dim": encoder.dim,
        "datasets": datasets,
    }
    save_torch(payload, out_path)
