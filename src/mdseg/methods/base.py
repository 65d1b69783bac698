"""What a training method is: its output label space, its heads, its loss and its class scores."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from mdseg.distributed import Context
from mdseg.label_space import lookup_table, match_classes
from mdseg.models.segmentor import Segmentor
from mdseg.registry import Registry

if TYPE_CHECKING:
    from mdseg.data import SplitDataset
    from mdseg.inference import Inference

# target-dataset class id -> model class ids (``scores`` channels) that predict it
Matches = dict[int, list[int]]

# ``@METHODS.register("x")`` also sets the class's ``name`` to "x"
METHODS: Registry[type[Method]] = Registry("method", name_attr="name")


def checked_options(cls: type, options: dict[str, Any], method: str) -> dict[str, Any]:
    """``options`` if every key is a field of dataclass ``cls``; else an error naming the
    unknown keys and the known ones."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"method {method!r}: unknown options {unknown}; known: {sorted(known)}")
    return options


@dataclass
class TrainRun:
    """What a method's hooks may use during training besides the network."""

    splits: dict[str, SplitDataset]  # training split of each training dataset
    dataset_dirs: dict[str, Path]  # prepared dataset folders (e.g. for a held-out split)
    optimizer: torch.optim.Optimizer
    device: torch.device
    total_steps: int
    out_dir: Path
    ctx: Context = field(default_factory=Context)  # this process's rank in a DDP job
    workers: int = 0  # DataLoader processes for statistics passes (``training.workers``)
    # statistics passes see images at the training scale, tile by tile (``mdseg.inference``)
    crop_size: int | None = None  # ``training.crop_size``; None: whole images
    resize_short_side: int | None = None  # ``training.resize_short_side``


class Method:
    """A method trains one ``Segmentor`` on one or more datasets given in their own label spaces.

    ``dataset_classes`` maps each training dataset key to its class names (index = id).
    Subclasses set ``self.classes`` (the label space the model predicts in) and implement
    ``build_heads`` and ``loss``; ``scores`` gives per-pixel scores over ``self.classes``,
    which evaluation slices to the classes a test dataset shares with the model.

    Methods with phases (pre-training, mapping refreshes, alternation) act in ``before_step``;
    whatever they learn besides network weights goes through ``state_dict`` so checkpoints
    and ``model.pt`` carry it. Methods that read label text features set
    ``needs_text_features`` and receive them as the ``text_features`` option.

    A method with ``method_options`` names their frozen dataclass in ``Options`` (each field's
    type, default and purpose in its ``Args:``); the base class builds ``self.opts`` from the
    options, refusing unknown keys. ``name`` is set by ``METHODS.register``.
    """

    name: ClassVar[str]
    max_datasets: ClassVar[int | None] = None
    needs_text_features: ClassVar[bool] = False
    Options: ClassVar[type | None] = None

    def __init__(self, dataset_classes: dict[str, list[str]], **options: Any) -> None:
        if not dataset_classes:
            raise ValueError(f"method {self.name!r} needs at least one training dataset")
        if self.max_datasets and len(dataset_classes) > self.max_datasets:
            raise ValueError(
                f"method {self.name!r} trains on at most {self.max_datasets} dataset(s), "
                f"got {sorted(dataset_classes)}"
            )
        if self.Options is None and options:
            raise ValueError(f"method {self.name!r} takes no options, got {sorted(options)}")
        if self.Options is not None:
            self.opts = self.Options(**checked_options(self.Options, options, self.name))
        self.datasets = list(dataset_classes)
        self.dataset_classes = dataset_classes
        self.classes: list[str] = []

    def build_heads(self, in_channels: int) -> dict[str, nn.Module]:
        raise NotImplementedError

    def loss(
        self,
        model: Segmentor,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset_idx: torch.Tensor,
    ) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, model: Segmentor, images: torch.Tensor) -> torch.Tensor:
        """Per-pixel class scores ``[B, len(self.classes), H, W]`` (higher = more likely)."""
        return model(images, head="main")

    def before_step(self, step: int, model: Segmentor, run: TrainRun) -> None:
        """Called before optimisation step ``step`` (0-based), also on the first step after a
        resume; ``model`` is the bare network even under DDP."""

    def schedule_starts(self, total_steps: int) -> list[int]:
        """Steps at which a new stage starts, ascending from 0: each stage has a warm-up and
        poly decay of its own and fresh optimiser moments, as a separately launched run would.

        ``[0]`` for one schedule over the run; methods whose authors train in stages (C-R BCE
        after its pre-training, AutoUniSeg's three stages) restart at each.
        """
        return [0]

    def log_fields(self) -> dict[str, Any]:
        """Extra columns of this step's ``train_log.csv`` row (e.g. the phase, a loss term)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What the method learned besides network weights (saved with checkpoints)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"method {self.name!r} keeps no state, got {sorted(state)}")

    def write_artefacts(self, model: Segmentor, out_dir: Path) -> list[Path]:
        """Write method outputs beside ``model.pt`` (relations, taxonomy); return their paths."""
        return []

    def target_matches(
        self,
        model: Segmentor,
        dataset_key: str,
        data: SplitDataset,
        aliases: dict[str, list[str]],
        device: torch.device,
        inference: Inference | None = None,
    ) -> dict[str, Matches]:
        """How ``scores`` channels predict a test dataset's classes, per evaluation variant.

        The first variant is the primary result; the default matches class names and aliases
        (UniSeg's slicing). A method may fit a mapping on ``data``'s dataset here, scoring its
        images as the evaluation does (``inference``).
        """
        return {"by_name": match_classes(data.classes, self.classes, aliases)}

    def to_unified(self, labels: torch.Tensor, dataset_idx: torch.Tensor) -> torch.Tensor:
        """Map labels from each sample's own dataset ids to ids of ``self.classes``."""
        luts = torch.stack(
            [lookup_table(self.dataset_classes[d], self.classes) for d in self.datasets]
        ).to(labels.device)
        return luts[dataset_idx[:, None, None], labels]
