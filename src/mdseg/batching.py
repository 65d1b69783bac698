"""Where a process sits in a data-parallel job, and its share of the global batch.

Torch-free, so that the planner (and the workflow, which plans SLURM jobs while it parses) can
check a batch split without importing torch; :mod:`mdseg.distributed` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Context:
    """Where this process sits in the job: its rank, the world size and its device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def shard(batch_size: int, blocks: int, ctx: Context) -> list[int]:
    """Positions of this rank's images in a global batch made of ``blocks`` equal blocks.

    Balanced sampling lays the batch out one block per dataset; each rank takes the same number
    of images from every block, so every GPU sees every dataset (AutoUniSeg: 3 per dataset per
    GPU). Concatenated sampling is one block.
    """
    per_block, rem = divmod(batch_size, blocks)
    share, rem_rank = divmod(per_block, ctx.world)
    if rem or rem_rank:
        raise ValueError(
            f"training.batch_size {batch_size} must split into {blocks} dataset block(s) of a "
            f"size divisible by the {ctx.world} processes (GPUs)"
        )
    return [b * per_block + ctx.rank * share + i for b in range(blocks) for i in range(share)]
