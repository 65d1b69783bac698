"""Command-line overrides of the workflow config, typed by its schema.

Snakemake's ``--config`` reads a nested value such as ``training={iterations: 1000}`` with YAML's
base loader, so every scalar arrives as a string (``'1000'``), and it refuses keys with dots
(``training.lr=0.02``). Two things make overrides work from the command line:

- ``--config set="training.lr=0.02 training.iterations=1000"`` sets dotted keys (``set`` is the
  one key Snakemake accepts; its value lists ``key.path=value`` items separated by spaces);
- every string where the schema expects a number, an integer, a boolean or null is read as YAML
  and kept if it then has the expected type, so ``training={iterations: 1000}`` works too.

The schema then validates the result as usual, so a wrong value is still named by its key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

SET_KEY = "set"


def apply_overrides(config: dict[str, Any], schema_path: str | Path) -> None:
    """Expand ``config["set"]`` into nested keys, then type string scalars by the schema."""
    for item in str(config.pop(SET_KEY, "") or "").split():
        dotted, sep, text = item.partition("=")
        if not sep or not dotted or any(not part for part in dotted.split(".")):
            raise ValueError(
                f"--config {SET_KEY}: {item!r} is not key.path=value (e.g. training.lr=0.02)"
            )
        *parents, key = dotted.split(".")
        node = config
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"--config {SET_KEY}: {dotted}: {part} is not a section")
            node = child
        node[key] = yaml.safe_load(text)
    type_scalars(config, schema_path)


def _validator(schema_path: str | Path) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    path = Path(schema_path).resolve()
    schema = yaml.safe_load(path.read_text())
    schema["$id"] = path.as_uri()

    def retrieve(uri: str) -> Resource:  # the schema's relative $refs name local files
        return Resource.from_contents(yaml.safe_load(Path(unquote(urlparse(uri).path)).read_text()))

    return Draft202012Validator(schema, registry=Registry(retrieve=retrieve))


def type_scalars(config: dict[str, Any], schema_path: str | Path) -> None:
    """Replace each string the schema wants as another type by its YAML reading, if that fits."""
    validator = _validator(schema_path)
    changed = True
    while changed:
        changed = False
        for err in validator.iter_errors(config):
            if err.validator != "type" or not isinstance(err.instance, str) or not err.path:
                continue
            value = yaml.safe_load(err.instance)
            wanted = (
                err.validator_value
                if isinstance(err.validator_value, list)
                else [err.validator_value]
            )
            if any(validator.is_type(value, kind) for kind in wanted):
                *parents, key = err.path
                node = config
                for part in parents:
                    node = node[part]
                node[key] = value
                changed = True
                break
