"""A name -> object registry, as detectron2's (fvcore's) ``Registry``, and ``locate``: an object
from its dotted path, as detectron2.utils.registry.

Used for META_ARCH_REGISTRY, BACKBONE_REGISTRY, ... so that users can plug their own modules into
``build_model(cfg)`` by name.
"""

from __future__ import annotations

import importlib
import pydoc
from typing import Any, Callable, Iterator, TypeVar

__all__ = ["Registry", "locate"]

T = TypeVar("T")


class Registry:
    """Maps names to objects. Registering a name twice is an error; a miss lists what exists."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._obj_map: dict[str, Any] = {}

    def _do_register(self, name: str, obj: Any) -> None:
        if name in self._obj_map:
            raise KeyError(f"An object named {name!r} was already registered in {self._name!r} registry!")
        self._obj_map[name] = obj

    def register(self, obj: T | None = None, *, name: str | None = None) -> T | Callable[[T], T]:
        """Use as ``@REG.register()`` / ``@REG.register`` on a class or function, or ``REG.register(obj)``."""
        if obj is None:

            def deco(func_or_class: T) -> T:
                self._do_register(name or func_or_class.__name__, func_or_class)
                return func_or_class

            return deco
        self._do_register(name or obj.__name__, obj)  # type: ignore[attr-defined]
        return obj

    def get(self, name: str) -> Any:
        ret = self._obj_map.get(name)
        if ret is None:
            raise KeyError(
                f"No object named {name!r} found in {self._name!r} registry! "
                f"Registered: {sorted(self._obj_map)}"
            )
        return ret

    def __contains__(self, name: str) -> bool:
        return name in self._obj_map

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self._obj_map.items())

    def __len__(self) -> int:
        return len(self._obj_map)

    def __repr__(self) -> str:
        return f"Registry(name={self._name!r}, names={sorted(self._obj_map)})"


def locate(name: str) -> Any:
    """The object named by ``"{x.__module__}.{x.__qualname__}"``, e.g. ``"torch.nn.Conv2d"``.

    ``pydoc.locate`` first; where it fails (an attribute reached through a module that a package
    does not import itself, e.g. ``torch.optim.sgd.SGD``), the longest importable module prefix is
    imported and the rest of the path read as attributes. Raises ImportError naming the path.
    """
    obj = pydoc.locate(name)
    if obj is not None:
        return obj
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        try:
            for attr in parts[k:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    raise ImportError(f"locate: name={name!r}, expected the dotted path of an importable object")


def _convert_target_to_string(t: Any) -> str:
    """Inverse of :func:`locate`: the shortest dotted path of ``t`` that locates ``t`` itself.

    ``pkg.sub._impl.Cls`` becomes ``pkg.sub.Cls`` (or ``pkg.Cls``) when that resolves to the same
    object, so a stored path survives moving the implementation between private modules.
    """
    module, qualname = t.__module__, t.__qualname__
    module_parts = module.split(".")
    for k in range(1, len(module_parts)):
        candidate = f"{'.'.join(module_parts[:k])}.{qualname}"
        try:
            if locate(candidate) is t:
                return candidate
        except ImportError:
            pass
    return f"{module}.{qualname}"
