"""detectron2's LazyConfig: configs written as Python (``.py``) or YAML, on omegaconf.

A ``.py`` config is executed as a script; every top-level dict / ``DictConfig`` / ``ListConfig``
it defines (names not starting with ``_``) becomes a key of the returned ``DictConfig``. Relative
imports inside a config (``from ..common.models.mask_rcnn_fpn import model``) load the named config
*file* the same way, so configs compose, and each import gets a fresh copy. ``LazyCall(f)(**kw)``
records a call without making it; :func:`~detectron2_export.config.instantiate` makes it later.

YAML files written by :meth:`LazyConfig.save` load back with a safe loader: tuples and importable
names (``!!python/name:pkg.Class``, e.g. a class given as an argument) are the only Python tags
accepted; nothing is called while loading.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import importlib.machinery
import importlib.util
import inspect
import logging
import os
import uuid
from collections import abc
from contextlib import contextmanager
from copy import deepcopy
from typing import Any, Callable, Iterator, Sequence

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf, SCMode

from ..errors import ConfigError
from .instantiate import convert_target_to_string, dump_dataclass, locate
from .yaml_loader import _ConfigLoader

__all__ = ["LazyCall", "LazyConfig", "ConfigImportError"]

logger = logging.getLogger(__name__)

# Modules of loaded config files live under this (never importable) package name; the patched
# import treats relative imports from such modules as imports of config files.
_CFG_PACKAGE_NAME = "detectron2_export._cfg_loader"
_PY_NAME_TAG = "tag:yaml.org,2002:python/name:"
_PY_TUPLE_TAG = "tag:yaml.org,2002:python/tuple"


class ConfigImportError(ConfigError, ImportError):
    """A config's relative import names a config file that does not exist."""


class LazyCall:
    """``LazyCall(f)(x=1)`` is ``DictConfig({"_target_": f, "x": 1})``: a call recorded, not made.

    ``f`` is a callable, or its dotted path as a string (resolved only by ``instantiate``).
    """

    def __init__(self, target: Callable | str | abc.Mapping) -> None:
        if not (callable(target) or isinstance(target, (str, abc.Mapping))):
            raise TypeError(f"LazyCall: target={target!r}, expected a callable or its dotted path")
        self._target = target

    def __call__(self, **kwargs: Any) -> DictConfig:
        target = self._target
        if dataclasses.is_dataclass(target):
            # omegaconf cannot hold a dataclass type as a value
            target = convert_target_to_string(target)
        kwargs["_target_"] = target
        return DictConfig(content=kwargs, flags={"allow_objects": True})


def _visit_dict_config(cfg: Any, func: Callable[[DictConfig], None]) -> None:
    """Apply ``func`` to every DictConfig in ``cfg`` (itself included), depth first."""
    if isinstance(cfg, DictConfig):
        func(cfg)
        for v in cfg.values():
            _visit_dict_config(v, func)
    elif isinstance(cfg, ListConfig):
        for v in cfg:
            _visit_dict_config(v, func)


def _validate_py_syntax(filename: str) -> str:
    with open(filename, encoding="utf-8") as f:
        content = f.read()
    try:
        ast.parse(content, filename)
    except SyntaxError as e:
        raise ConfigError(f"{filename}: line {e.lineno}: not valid Python ({e.msg})") from e
    return content


def _cast_to_config(obj: Any) -> Any:
    # a plain dict is not a config: make it one so interpolations and overrides work
    if isinstance(obj, dict):
        return DictConfig(obj, flags={"allow_objects": True})
    return obj


def _random_package_name(filename: str) -> str:
    # a fresh name per load: two loads of one file never share a module
    return f"{_CFG_PACKAGE_NAME}{uuid.uuid4().hex[:8]}.{os.path.basename(filename)}"


def _find_relative_file(original_file: str, relative_import_path: str, level: int) -> str:
    cur_file = os.path.dirname(original_file)
    for _ in range(level - 1):
        cur_file = os.path.dirname(cur_file)
    for part in relative_import_path.lstrip(".").split("."):
        cur_file = os.path.join(cur_file, part)
    if not cur_file.endswith(".py"):
        cur_file += ".py"
    if not os.path.isfile(cur_file):
        raise ConfigImportError(
            f"{original_file}: relative import {'.' * level}{relative_import_path}: {cur_file} does not "
            "exist, expected a config file (relative imports in configs name config files)"
        )
    return cur_file


@contextmanager
def _patch_import() -> Iterator[None]:
    """While loading configs, a relative import in a config module executes the named config file."""
    old_import = builtins.__import__

    def new_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002 - builtin's names
        package = (globals or {}).get("__package__") or ""
        if level == 0 or not package.startswith(_CFG_PACKAGE_NAME):
            return old_import(name, globals, locals, fromlist=fromlist, level=level)
        cur_file = _find_relative_file(globals["__file__"], name, level)
        content = _validate_py_syntax(cur_file)
        spec = importlib.machinery.ModuleSpec(_random_package_name(cur_file), None, origin=cur_file)
        module = importlib.util.module_from_spec(spec)
        module.__file__ = cur_file
        module.__package__ = spec.name
        exec(compile(content, cur_file, "exec"), module.__dict__)  # noqa: S102 - config files are code
        for attr in fromlist:
            if attr not in module.__dict__:
                raise ConfigImportError(f"{cur_file}: name={attr!r} imported by {globals['__file__']}, not defined there")
            module.__dict__[attr] = _cast_to_config(module.__dict__[attr])
        return module

    builtins.__import__ = new_import
    try:
        yield
    finally:
        builtins.__import__ = old_import


class _LazyDumper(yaml.SafeDumper):
    """SafeDumper that writes tuples as ``!!python/tuple``, callables as ``!!python/name:`` and
    dataclass instances as ``{_target_: their class, fields...}``."""


def _represent_tuple(dumper: yaml.SafeDumper, data: tuple) -> yaml.Node:
    return dumper.represent_sequence(_PY_TUPLE_TAG, data)


def _represent_name(dumper: yaml.SafeDumper, data: Any) -> yaml.Node:
    return dumper.represent_scalar(_PY_NAME_TAG + f"{data.__module__}.{data.__qualname__}", "")


def _represent_unknown(dumper: yaml.SafeDumper, data: Any) -> yaml.Node:
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        # e.g. ShapeSpec(...) arguments: a LazyCall of the dataclass, which instantiate rebuilds
        return dumper.represent_dict(dump_dataclass(data))
    if callable(data) and hasattr(data, "__qualname__"):
        return _represent_name(dumper, data)
    raise yaml.representer.RepresenterError(f"cannot write an object of type {type(data).__name__}", data)


_LazyDumper.add_representer(tuple, _represent_tuple)
_LazyDumper.add_multi_representer(object, _represent_unknown)


class _LazyLoader(_ConfigLoader):
    """The config loader plus the two tags :class:`_LazyDumper` writes."""


def _construct_tuple(loader: _LazyLoader, node: yaml.Node) -> tuple:
    return tuple(loader.construct_sequence(node, deep=True))


def _construct_name(loader: _LazyLoader, suffix: str, node: yaml.Node) -> Any:
    try:
        return locate(suffix)
    except ImportError as e:
        raise ConfigError(f"YAML !!python/name:{suffix} at {node.start_mark}: not importable") from e


_LazyLoader.add_constructor(_PY_TUPLE_TAG, _construct_tuple)
_LazyLoader.add_multi_constructor(_PY_NAME_TAG, _construct_name)


def _load_yaml(text: str, filename: str) -> Any:
    try:
        return yaml.load(text, Loader=_LazyLoader)  # noqa: S506 - SafeLoader subclass
    except ConfigError as e:
        raise ConfigError(f"{filename}: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{filename}: not a LazyConfig YAML file ({e})") from e


class LazyConfig:
    """Load, save and override LazyConfigs (``.py`` or ``.yaml``), as detectron2's LazyConfig."""

    @staticmethod
    def load_rel(filename: str, keys: None | str | tuple[str, ...] = None) -> Any:
        """:meth:`load` with ``filename`` relative to the calling file."""
        caller_frame = inspect.stack()[1]
        caller_fname = caller_frame[0].f_code.co_filename
        if caller_fname == "<string>":
            raise ConfigError("LazyConfig.load_rel: called from a string, expected a call from a file")
        return LazyConfig.load(os.path.join(os.path.dirname(caller_fname), filename), keys)

    @staticmethod
    def load(filename: str, keys: None | str | tuple[str, ...] = None) -> Any:
        """The config in ``filename`` (a ``DictConfig``); with ``keys``, only that key (or keys)."""
        filename = filename.replace("/./", "/")
        ext = os.path.splitext(filename)[1]
        if ext not in (".py", ".yaml", ".yml"):
            raise ConfigError(f"LazyConfig.load: filename={filename!r}, expected a .py, .yaml or .yml file")
        if not os.path.isfile(filename):
            raise ConfigError(f"LazyConfig.load: {filename} does not exist")
        if ext == ".py":
            content = _validate_py_syntax(filename)
            namespace: dict[str, Any] = {"__file__": filename, "__package__": _random_package_name(filename)}
            with _patch_import():
                exec(compile(content, filename, "exec"), namespace)  # noqa: S102 - config files are code
            ret = DictConfig(
                {
                    name: _cast_to_config(value)
                    for name, value in namespace.items()
                    if isinstance(value, (DictConfig, ListConfig, dict)) and not name.startswith("_")
                },
                flags={"allow_objects": True},
            )
        else:
            with open(filename, encoding="utf-8") as f:
                obj = _load_yaml(f.read(), filename)
            if obj is None:
                obj = {}
            if not isinstance(obj, dict):
                raise ConfigError(f"{filename}: top level={type(obj).__name__}, expected a mapping")
            ret = OmegaConf.create(obj, flags={"allow_objects": True})
        if keys is None:
            return ret
        if isinstance(keys, str):
            return ret[keys]
        return tuple(ret[k] for k in keys)

    @staticmethod
    def save(cfg: DictConfig, filename: str) -> None:
        """Write ``cfg`` as YAML (interpolations kept, callables as their dotted names).

        A config holding something that cannot be written or read back (a lambda, an object) is
        still written for people to read, with a warning that it cannot be loaded, as upstream.
        """
        try:
            cfg = deepcopy(cfg)
        except Exception:  # noqa: BLE001 - objects in a config may refuse to be copied
            pass
        else:

            def _replace_type_by_name(x: DictConfig) -> None:
                if "_target_" in x and callable(x._target_):
                    try:
                        x._target_ = convert_target_to_string(x._target_)
                    except AttributeError:
                        pass

            _visit_dict_config(cfg, _replace_type_by_name)
        container = OmegaConf.to_container(cfg, resolve=False, structured_config_mode=SCMode.INSTANTIATE)
        try:
            dumped = yaml.dump(container, Dumper=_LazyDumper, default_flow_style=None, allow_unicode=True, width=9999)
        except yaml.representer.RepresenterError as e:
            raise ConfigError(f"LazyConfig.save({filename}): {e}, expected plain values, "
                              "callables and LazyCall configs") from e
        with open(filename, "w", encoding="utf-8") as f:
            f.write(dumped)
        try:
            _load_yaml(dumped, filename)
        except ConfigError as e:
            logger.warning("The config contains objects that cannot be loaded back: %s is human-readable "
                           "but cannot be loaded (%s).", filename, e)

    @staticmethod
    def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
        """Apply ``"key.sub=value"`` overrides in place; values are Python literals or strings.

        A prefix of a key that exists but is not a config (``model.backbone=1`` then
        ``model.backbone.x=2``) is an error, as upstream.
        """
        for o in overrides:
            if "=" not in o:
                raise ConfigError(f"LazyConfig.apply_overrides: override={o!r}, expected key=value")
            key, value_text = o.split("=", 1)
            try:
                value = ast.literal_eval(value_text)
            except (ValueError, SyntaxError):
                value = value_text
            parts = key.split(".")
            for idx in range(1, len(parts)):
                prefix = ".".join(parts[:idx])
                v = OmegaConf.select(cfg, prefix, default=None)
                if v is None:
                    break
                if not OmegaConf.is_config(v):
                    raise ConfigError(
                        f"LazyConfig.apply_overrides: key={key!r}, but {prefix} is a {type(v).__name__}, "
                        "expected a config"
                    )
            OmegaConf.update(cfg, key, value, merge=True)
        return cfg
