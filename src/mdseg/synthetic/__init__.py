"""The embedded synthetic benchmark: 13 datasets that mirror real ones over a hidden fine world."""

from mdseg.synthetic.generate import generate_dataset
from mdseg.synthetic.specs import SPECS, SyntheticSpec, relation_truth
from mdseg.synthetic.world import WORLD, FineClass

__all__ = ["SPECS", "WORLD", "FineClass", "SyntheticSpec", "generate_dataset", "relation_truth"]
