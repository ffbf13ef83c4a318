"""``dump_dataclass`` / ``instantiate``: dataclasses <-> plain dicts with a ``_target_`` class path,
as detectron2's LazyConfig uses. The export schemas (export/flatten.py) are serialised this way, so a
schema can be stored as JSON next to an exported model and rebuilt later."""

from __future__ import annotations

import dataclasses
import importlib
import pydoc
from collections import abc
from typing import Any

from ..errors import ConfigError

__all__ = ["dump_dataclass", "instantiate", "locate", "convert_target_to_string", "InstantiateError"]


def locate(name: str) -> Any:
    """Import an object by its dotted path (``"pkg.module.Class"``)."""
    obj = pydoc.locate(name)
    if obj is None:
        raise ImportError(f"locate: name={name!r}, expected an importable dotted path{_why_not_importable(name)}")
    return obj


def _why_not_importable(name: str) -> str:
    """``" (no module named 'mmdet')"``: the first package of ``name`` that is not installed, if any."""
    parts = name.split(".")
    for k in range(1, len(parts)):
        module = ".".join(parts[:k])
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name is not None and "." not in e.name:
                return f" (no module named {e.name!r}: that package is not installed)"
            return f" ({e})"
        except ImportError:
            return ""
    return ""


def convert_target_to_string(target: Any) -> str:
    """The shortest importable dotted path of a class or function.

    ``pkg.sub._impl.Cls`` becomes ``pkg.sub.Cls`` (or ``pkg.Cls``) when that shorter path resolves to
    the same object, so stored paths survive moving the implementation between private modules.
    """
    module, qualname = target.__module__, target.__qualname__
    parts = module.split(".")
    for k in range(1, len(parts)):
        candidate = ".".join(parts[:k]) + "." + qualname
        try:
            if pydoc.locate(candidate) is target:
                return candidate
        except pydoc.ErrorDuringImport:
            continue
    return f"{module}.{qualname}"


def dump_dataclass(obj: Any) -> dict:
    """A dataclass instance -> a JSON-friendly dict with ``_target_`` (recursing into fields that
    are dataclasses or lists/tuples of them; tuples become lists)."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"dump_dataclass: obj={obj!r}, expected an instance of a dataclass")
    ret: dict[str, Any] = {"_target_": convert_target_to_string(type(obj))}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            value = dump_dataclass(value)
        if isinstance(value, (list, tuple)):
            value = [dump_dataclass(x) if dataclasses.is_dataclass(x) else x for x in value]
        ret[f.name] = value
    return ret


class InstantiateError(ConfigError, TypeError):
    """A ``_target_`` rejected the arguments a config gave it (TypeError, as upstream, and ConfigError)."""


def _is_lazy_list(cfg: Any) -> bool:
    return type(cfg).__name__ == "ListConfig" and type(cfg).__module__.startswith("omegaconf")


def instantiate(cfg: Any) -> Any:
    """Recursively build objects: every mapping with ``_target_`` becomes ``target(**other_keys)``.

    Mappings are plain dicts or omegaconf ``DictConfig`` (LazyConfig; interpolations such as
    ``"${..num_classes}"`` are resolved when read); lists, tuples and ``ListConfig`` are rebuilt
    element-wise (a ``ListConfig`` becomes a plain list, which every constructor accepts); a
    ``DictConfig`` backed by a dataclass becomes that dataclass. Anything else, mappings without
    ``_target_`` included, is returned as is (as detectron2 does).
    """
    if isinstance(cfg, (list, tuple)) or _is_lazy_list(cfg):
        items = [instantiate(x) for x in cfg]
        return tuple(items) if isinstance(cfg, tuple) else items
    if type(cfg).__name__ == "DictConfig" and type(cfg).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        if dataclasses.is_dataclass(cfg._metadata.object_type):
            return OmegaConf.to_object(cfg)
    if isinstance(cfg, abc.Mapping) and "_target_" in cfg:
        kwargs = {k: instantiate(v) for k, v in cfg.items() if k != "_target_"}
        target = instantiate(cfg["_target_"])
        if isinstance(target, str):
            target = locate(target)
        if not callable(target):
            raise TypeError(f"instantiate: _target_={target!r}, expected a callable or its dotted path")
        try:
            return target(**kwargs)
        except TypeError as e:
            name = getattr(target, "__qualname__", repr(target))
            raise InstantiateError(
                f"instantiate: _target_={getattr(target, '__module__', '')}.{name} rejected the "
                f"arguments {sorted(kwargs)}: {e}"
            ) from e
    return cfg
