"""Published numbers of the UniSeg and AutoUniSeg papers, as long-format tables.

Each table lives in ``mdseg/data/reference/<name>.csv`` (one printed value per row, in the
``paper`` column; see the README next to the CSVs for what each file transcribes and how it
was read). Only empty cells are missing values: the paper's ``N/A`` and ``-`` cells are empty.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

REFERENCE_TABLES: tuple[str, ...] = (
    "uniseg_table1",
    "uniseg_table2",
    "uniseg_table3",
    "uniseg_table4",
    "uniseg_tableA1",
    "uniseg_tableA2",
    "uniseg_tableA3",
    "autouniseg_table1",
    "autouniseg_table2",
    "autouniseg_table3",
)


def load_reference(name: str) -> pd.DataFrame:
    """Read one transcribed table; unknown names raise a KeyError listing the available ones."""
    import pandas as pd  # here, so that the workflow reads REFERENCE_TABLES without pandas

    if name not in REFERENCE_TABLES:
        raise KeyError(
            f"unknown reference table {name!r}; available: {', '.join(REFERENCE_TABLES)}"
        )
    path = resources.files("mdseg").joinpath("data", "reference", f"{name}.csv")
    with path.open("r", encoding="utf-8") as handle:
        # Only empty cells are missing: class names and keys are never read as NaN.
        return pd.read_csv(handle, keep_default_na=False, na_values=[""])
