"""Dataset registry: keys, short codes, domains and class names of the datasets both papers use."""

from mdseg.datasets.info import DATASETS, DatasetInfo, code_of, key_of_code

__all__ = ["DATASETS", "DatasetInfo", "code_of", "key_of_code"]
