"""The training input pipeline: rank shards, their union, and workers that change nothing."""

from __future__ import annotations

import pytest
import torch

from mdseg.data import Augment, SplitDataset
from mdseg.distributed import Context, shard
from mdseg.loader import RankBatches, training_batches


class CountingSplit(SplitDataset):
    """A split that records which items were decoded."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.reads: list[int] = []

    def read(self, index: int):  # type: ignore[no-untyped-def]
        self.reads.append(index)
        return super().read(index)


def stream(
    tiny_datasets, sampling: str, positions=None, batch: int = 8, augment: Augment | None = None
) -> RankBatches:
    splits = [CountingSplit(p, "train") for p in tiny_datasets.values()]
    augment = augment or Augment(16, (0.5, 2.0))
    return RankBatches(splits, batch, augment, sampling, seed=5, positions=positions)


@pytest.mark.parametrize("sampling", ["balanced", "concat"])
def test_union_of_rank_shards_is_the_one_process_batch(tiny_datasets, sampling):
    whole = stream(tiny_datasets, sampling)
    ranks = []
    for rank in range(2):
        mine = shard(8, 2 if sampling == "balanced" else 1, Context(rank, 2))
        ranks.append((mine, stream(tiny_datasets, sampling, mine)))
    for step in (0, 3):
        images, labels, owners = whole[step]
        joined = [torch.empty_like(t) for t in (images, labels, owners)]
        for mine, part in ranks:
            for full, piece in zip(joined, part[step], strict=True):
                full[mine] = piece
        assert torch.equal(joined[0], images) and torch.equal(joined[1], labels)
        assert torch.equal(joined[2], owners)
    for mine, part in ranks:  # each rank decoded its 4 images per step, and no others
        assert sum(len(d.reads) for d in part.datasets) == 2 * len(mine) == 8
    if sampling == "balanced":
        assert [len(d.reads) for d in ranks[0][1].datasets] == [4, 4]  # every dataset per rank


@pytest.mark.parametrize(
    "augment",
    [
        Augment(16, (0.5, 2.0)),
        Augment(16, (0.5, 2.0), rotate_degrees=10, blur_probability=0.5),  # UniSeg's
    ],
)
def test_workers_and_a_late_start_give_the_same_batches(tiny_datasets, augment):
    data = stream(tiny_datasets, "concat", batch=4, augment=augment)
    inline = list(training_batches(data, 0, 6, workers=0))
    before = torch.get_rng_state()
    resumed = list(training_batches(data, 3, 6, workers=2))
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG the checkpoint restores
    assert len(resumed) == 3
    for a, b in zip(inline[3:], resumed, strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)
