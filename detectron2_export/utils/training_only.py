"""Names of detectron2 that only training uses, importable from their usual modules.

The project is for inference and deployment: a script written for detectron2 may import a loss,
a sampler or a training augmentation next to what it really uses. Those imports work; calling
(or instantiating) one raises :class:`TrainingOnlyError` naming it.
"""

from __future__ import annotations

from typing import Any, Callable, NoReturn

from ..errors import Detectron2ExportError

__all__ = ["TrainingOnlyError", "training_only_function", "training_only_class", "lazy_fvcore_nn"]


class TrainingOnlyError(Detectron2ExportError, NotImplementedError):
    """A training-only part of detectron2 was used; this project implements inference only."""


def _message(module: str, name: str) -> str:
    return (
        f"{module}.{name} is training-only: detectron2_export implements detectron2's inference and "
        "deployment, not training; use detectron2 itself to train"
    )


def training_only_function(module: str, name: str) -> Callable[..., NoReturn]:
    """A function ``module.name`` that raises :class:`TrainingOnlyError` when called."""

    def function(*args: Any, **kwargs: Any) -> NoReturn:
        raise TrainingOnlyError(_message(module, name))

    function.__name__ = function.__qualname__ = name
    function.__module__ = module
    function.__doc__ = "Training-only in detectron2; raises TrainingOnlyError here."
    return function


def training_only_class(module: str, name: str, base: type = object) -> type:
    """A subclass of ``base`` named ``module.name`` whose construction raises
    :class:`TrainingOnlyError` (``isinstance`` / ``issubclass`` checks against it still work)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TrainingOnlyError(_message(module, name))

    return type(
        name,
        (base,),
        {"__init__": __init__, "__module__": module, "__qualname__": name,
         "__doc__": "Training-only in detectron2; raises TrainingOnlyError here."},
    )


def lazy_fvcore_nn(module: str, names: tuple[str, ...]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``names`` from ``fvcore.nn`` on first use: detectron2 imports
    fvcore's losses into some modules, and importing ``fvcore.nn`` scripts its focal losses (slow)."""

    def __getattr__(name: str) -> Any:
        if name in names:
            import fvcore.nn

            return getattr(fvcore.nn, name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
