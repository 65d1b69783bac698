"""Every method's loss, one module per family (mmsegmentation's ``models/losses/`` habit).

- :mod:`~mdseg.losses.cross_entropy`: softmax cross-entropy (``single``, ``multi_ce``) and OHEM.
- :mod:`~mdseg.losses.null_bce`: UniSeg's Null BCE (``null_bce``, ``cosine_bce``) and, with the
  targets of eq. 6, C-R BCE (``cr_bce``).
- :mod:`~mdseg.losses.dataset_heads`: one loss per dataset over its own channels, with its
  options :class:`HeadLoss` (``multi_head``, every ``autouniseg`` stage).
- :mod:`~mdseg.losses.orthogonality`: AutoUniSeg's orthogonality loss (eq. 7, graph phases).
"""

from mdseg.losses.cross_entropy import ohem_cross_entropy, pixel_cross_entropy
from mdseg.losses.dataset_heads import (
    AUTHORS_FINETUNE_WEIGHTS,
    AUTHORS_WEIGHTS,
    HeadLoss,
    dataset_losses,
)
from mdseg.losses.null_bce import Targets, label_targets, masked_bce
from mdseg.losses.orthogonality import orthogonality_loss

__all__ = [
    "AUTHORS_FINETUNE_WEIGHTS",
    "AUTHORS_WEIGHTS",
    "HeadLoss",
    "Targets",
    "dataset_losses",
    "label_targets",
    "masked_bce",
    "ohem_cross_entropy",
    "orthogonality_loss",
    "pixel_cross_entropy",
]
