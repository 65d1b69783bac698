"""AutoUniSeg's unified label space: merging, the label graph, UOT mappings, recovery scores."""
