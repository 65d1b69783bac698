"""What the workflow must know of methods and tables while it parses, without torch or pandas.

Snakemake parses the workflow at every call and again in every cluster job; importing the
methods (torch, timm) or the table builders (pandas, matplotlib) there would cost seconds each
time. The registries stay the truth: tests/test_experiments.py checks these against them.
"""

from __future__ import annotations

# methods that read the label descriptions' text features (Method.needs_text_features)
TEXT_FEATURE_METHODS = frozenset({"autouniseg"})
# reference tables with a numeric row per (setting, dataset), drawn as paper-vs-ours bars
PLOTTED_TABLES: tuple[str, ...] = (
    "uniseg_table1",
    "uniseg_table2",
    "uniseg_table3",
    "uniseg_table4",
    "uniseg_tableA2",
    "autouniseg_table2",
    "autouniseg_table3",
)
