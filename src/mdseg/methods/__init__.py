"""Training methods, one module each; ``METHODS[name]`` gives the class."""

from mdseg.methods import multi_ce, single  # noqa: F401  (register)
from mdseg.methods.base import METHODS, Method

__all__ = ["METHODS", "Method"]
