"""``dump_dataclass`` / ``instantiate``: dataclasses <-> plain dicts with a ``_target_`` class path,
as detectron2's LazyConfig uses. The export schemas (export/flatten.py) are serialised this way."""

from __future__ import annotations

import dataclasses
import pydoc
from collections import abc
from typing import Any

__all__ = ["dump_dataclass", "instantiate", "locate"]


def locate(name: str) -> Any:
    """Import an object by its dotted path, with a clear error."""
    obj = pydoc.locate(name)
    if obj is None:
        raise ImportError(f"Cannot locate object {name!r}: not importable")
    return obj


def _class_path(klass: type) -> str:
    from ..export.flatten import _class_path as shortest_path

    return shortest_path(klass)


def dump_dataclass(obj: Any) -> dict:
    """A dataclass instance -> a dict with ``_target_`` (recursively, lists included)."""
    assert dataclasses.is_dataclass(obj) and not isinstance(obj, type), "dump_dataclass() requires an instance of a dataclass."
    ret = {"_target_": _class_path(type(obj))}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            v = dump_dataclass(v)
        if isinstance(v, (list, tuple)):
            v = [dump_dataclass(x) if dataclasses.is_dataclass(x) else x for x in v]
        ret[f.name] = v
    return ret


def instantiate(cfg: Any) -> Any:
    """Recursively call ``_target_(**kwargs)`` for every dict that has ``_target_``."""
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(instantiate(x) for x in cfg)
    if isinstance(cfg, abc.Mapping) and "_target_" in cfg:
        kwargs = {k: instantiate(v) for k, v in cfg.items() if k != "_target_"}
        target = cfg["_target_"]
        if isinstance(target, str):
            target = locate(target)
        assert callable(target), f"_target_ {target} does not define a callable object"
        return target(**kwargs)
    return cfg
