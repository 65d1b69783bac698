"""Training methods, one module each; ``METHODS[name]`` gives the class."""

from mdseg.methods import autouniseg, cr_bce, multi_ce, multi_head, null_bce, single  # noqa: F401  (register)
from mdseg.methods.base import METHODS, Method

__all__ = ["METHODS", "Method"]
