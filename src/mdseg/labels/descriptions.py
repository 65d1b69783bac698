"""Label descriptions: AutoUniSeg's template followed by a one-sentence description per class.

The sentences live in ``mdseg/data/descriptions/<key>.tsv`` (``name<TAB>sentence``, class-id order).
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from mdseg.datasets.classnames import load_classnames
from mdseg.datasets.info import DATASETS

TEMPLATE = "An image of {label} from the dataset {dataset}."


def _descriptions_file(key: str) -> Traversable:
    return resources.files("mdseg").joinpath("data").joinpath("descriptions").joinpath(f"{key}.tsv")


def read_sentences(key: str, source: Traversable | None = None) -> list[str]:
    """The written sentence of every class of ``key``, in class-id order.

    Raises ``ValueError`` naming the file and the class when a class lacks a sentence, the file
    has a class that the dataset does not, a line is malformed, or a class appears twice.
    """
    source = source if source is not None else _descriptions_file(key)
    classes = load_classnames(key)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no descriptions for dataset {key!r}")
    sentences: dict[str, str] = {}
    for lineno, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        name, sep, sentence = line.partition("\t")
        if not sep or not sentence.strip():
            raise ValueError(f"{source}:{lineno}: expected 'name<TAB>sentence', got {line!r}")
        if name in sentences:
            raise ValueError(f"{source}:{lineno}: class {name!r} is described twice")
        sentences[name] = sentence.strip()
    extra = [n for n in sentences if n not in classes]
    if extra:
        raise ValueError(f"{source}: describes class {extra[0]!r}, which {key} does not have")
    missing = [c for c in classes if c not in sentences]
    if missing:
        raise ValueError(f"{source}: class {missing[0]!r} of {key} has no description")
    return [sentences[c] for c in classes]


def describe(key: str) -> list[str]:
    """Full description of every class of ``key`` in class-id order: template, space, sentence."""
    if key not in DATASETS:
        raise KeyError(f"unknown dataset {key!r}; known: {', '.join(DATASETS)}")
    display = DATASETS[key].display
    classes = load_classnames(key)
    sentences = read_sentences(key)
    return [
        f"{TEMPLATE.format(label=c, dataset=display)} {s}"
        for c, s in zip(classes, sentences, strict=True)
    ]
