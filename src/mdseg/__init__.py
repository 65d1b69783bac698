"""mdseg: multi-dataset semantic segmentation (AutoUniSeg, UniSeg) reproduced end to end."""

__version__ = "0.1.0"
