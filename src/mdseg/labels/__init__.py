"""Label descriptions and their text features (AutoUniSeg's input label nodes)."""
