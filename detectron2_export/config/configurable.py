"""detectron2's ``@configurable``: build a module either from explicit arguments or from a config.

``Module(cfg, ...)`` (``cfg`` a yacs ``CfgNode`` or an OmegaConf ``DictConfig``) calls
``Module.from_config(cfg, ...)`` to turn the config into keyword arguments, so that modules keep
a plain, explicit ``__init__`` and users can still build them from YAML. Functions can be
decorated too, with ``@configurable(from_config=fn)``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from omegaconf import DictConfig
from yacs.config import CfgNode as _YacsCfgNode

# what counts as a config: yacs (get_cfg()) or OmegaConf (LazyConfig), as upstream
_CONFIG_TYPES = (_YacsCfgNode, DictConfig)


def _called_with_cfg(*args: Any, **kwargs: Any) -> bool:
    """Whether the call looks like ``f(cfg, ...)`` / ``f(cfg=cfg, ...)``."""
    if len(args) and isinstance(args[0], _CONFIG_TYPES):
        return True
    if isinstance(kwargs.pop("cfg", None), _CONFIG_TYPES):
        return True
    return False


def _get_args_from_config(from_config_func: Callable, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call ``from_config`` with the arguments it accepts; pass the rest through unchanged."""
    signature = inspect.signature(from_config_func)
    if list(signature.parameters.keys())[0] != "cfg":
        name = getattr(from_config_func, "__qualname__", repr(from_config_func))
        raise TypeError(f"{name}.from_config must take 'cfg' as the first argument!")
    support_var_arg = any(
        p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values()
    )
    if support_var_arg:
        return from_config_func(*args, **kwargs)
    supported = set(signature.parameters.keys())
    extra_kwargs = {name: kwargs.pop(name) for name in list(kwargs.keys()) if name not in supported}
    ret = from_config_func(*args, **kwargs)
    ret.update(extra_kwargs)  # forwarded to __init__ / the function
    return ret


def configurable(init_func: Callable | None = None, *, from_config: Callable | None = None) -> Callable:
    """Decorate a class ``__init__`` (with a ``from_config`` classmethod) or a function.

    Examples::

        class A:
            @configurable
            def __init__(self, a, b=2): ...
            @classmethod
            def from_config(cls, cfg): return {"a": cfg.A, "b": cfg.B}

        @configurable(from_config=lambda cfg: {"x": cfg.X})
        def build(x): ...
    """
    if init_func is not None:
        if not (inspect.isfunction(init_func) and init_func.__name__ == "__init__" and from_config is None):
            raise TypeError("Incorrect use of @configurable: decorate __init__, or pass from_config=")

        @functools.wraps(init_func)
        def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                from_config_func = type(self).from_config
            except AttributeError as e:
                raise AttributeError(
                    f"Class {type(self).__name__} with @configurable must have a 'from_config' classmethod."
                ) from e
            if not inspect.ismethod(from_config_func):
                raise TypeError(f"{type(self).__name__}.from_config must be a classmethod!")
            if _called_with_cfg(*args, **kwargs):
                explicit_args = _get_args_from_config(from_config_func, *args, **kwargs)
                init_func(self, **explicit_args)
            else:
                init_func(self, *args, **kwargs)

        return wrapped

    if from_config is None:
        return configurable  # @configurable() on __init__
    if not inspect.isfunction(from_config):
        raise TypeError("from_config argument of configurable must be a function!")

    def wrapper(orig_func: Callable) -> Callable:
        @functools.wraps(orig_func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if _called_with_cfg(*args, **kwargs):
                explicit_args = _get_args_from_config(from_config, *args, **kwargs)
                return orig_func(**explicit_args)
            return orig_func(*args, **kwargs)

        wrapped.from_config = from_config  # type: ignore[attr-defined]
        return wrapped

    return wrapper
