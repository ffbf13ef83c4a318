"""detectron2's ``CfgNode``: yacs with ``_BASE_`` inheritance and errors that name file and key.

A config file may name another one under ``_BASE_`` (relative to the including file); the base is
read first (recursively) and the including file's keys override it, dicts merged key by key.
The merged result is then checked against this node: every key must already exist (yacs
semantics), and a wrong key or type is reported with the file, the key and the closest existing
keys instead of yacs' bare ``KeyError``/``AssertionError``.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from typing import Any, Iterable

from yacs.config import CfgNode as _YacsCfgNode

from ..errors import ConfigError
from .yaml_loader import load_yaml

__all__ = ["CfgNode", "get_cfg", "ConfigKeyError", "ConfigFileNotFoundError", "BASE_KEY"]

logger = logging.getLogger(__name__)

BASE_KEY = "_BASE_"
_LATEST_VERSION = 2


class ConfigKeyError(ConfigError, KeyError, AssertionError):
    """A config file or override names a key the config does not define.

    yacs raises KeyError for unknown keys in files and AssertionError for unknown keys in
    ``merge_from_list``; this class is both, so existing ``except`` clauses keep working.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ConfigFileNotFoundError(ConfigError, FileNotFoundError):
    """A config file (or one of its ``_BASE_`` files) does not exist."""


def _read_with_base(filename: str, origins: dict[str, str], chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """The dict of ``filename`` with its ``_BASE_`` files merged underneath, recursively.

    ``origins`` receives, for every key path, the file that set it last (for error messages).
    """
    real = os.path.realpath(filename)
    if real in chain:
        cycle = " -> ".join(list(chain) + [real])
        raise ConfigError(f"{filename}: {BASE_KEY} chain is circular: {cycle}")
    try:
        with open(filename, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError as e:
        where = f" (the {BASE_KEY} of {chain[-1]})" if chain else ""
        raise ConfigFileNotFoundError(f"Config file '{filename}'{where} does not exist") from e
    except IsADirectoryError as e:
        raise ConfigFileNotFoundError(f"Config file '{filename}' is a directory, expected a YAML file") from e
    data = load_yaml(text, filename)
    base_name = data.pop(BASE_KEY, None)
    if base_name is None:
        _record_origins(data, filename, origins)
        return data
    if not isinstance(base_name, str):
        raise ConfigError(f"{filename}: {BASE_KEY}={base_name!r}, expected a file path string")
    base_name = os.path.expanduser(base_name)
    if not os.path.isabs(base_name) and "://" not in base_name:
        base_name = os.path.join(os.path.dirname(filename), base_name)
    base = _read_with_base(base_name, origins, chain + (real,))
    _record_origins(data, filename, origins)
    _merge_dict_into(data, base, filename)
    return base


def _record_origins(data: dict[str, Any], filename: str, origins: dict[str, str], prefix: str = "") -> None:
    for k, v in data.items():
        origins[prefix + str(k)] = filename
        if isinstance(v, dict):
            _record_origins(v, filename, origins, f"{prefix}{k}.")


def _merge_dict_into(src: dict[str, Any], dst: dict[str, Any], filename: str, prefix: str = "") -> None:
    """detectron2's merge_a_into_b for raw dicts: src wins, nested dicts merge key by key."""
    for k, v in src.items():
        if isinstance(v, dict) and k in dst:
            if not isinstance(dst[k], dict):
                raise ConfigError(f"{filename}: {prefix}{k} is a mapping but its {BASE_KEY} has a value there")
            _merge_dict_into(v, dst[k], filename, f"{prefix}{k}.")
        else:
            dst[k] = v


def has_dotted_key(node: Mapping[str, Any], full_key: str) -> bool:
    """Whether ``node`` (a config or a dict read from a file) has ``"A.B.C"``."""
    for part in full_key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _all_keys(node: _YacsCfgNode, prefix: str = "") -> list[str]:
    keys = []
    for k, v in node.items():
        keys.append(prefix + k)
        if isinstance(v, _YacsCfgNode):
            keys.extend(_all_keys(v, f"{prefix}{k}."))
    return keys


class CfgNode(_YacsCfgNode):
    """The config object of detectron2 (``detectron2.config.CfgNode``)."""

    @classmethod
    def load_yaml_with_base(cls, filename: str, allow_unsafe: bool = False) -> dict[str, Any]:
        """Read ``filename`` and, recursively, its ``_BASE_`` files; return the merged dict.

        ``allow_unsafe`` is accepted for API compatibility only: Python objects are never
        constructed (see :mod:`.yaml_loader` for the one arithmetic tag that is supported).
        """
        return _read_with_base(filename, origins={})

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = True) -> None:
        """Merge a YAML config file (and its ``_BASE_`` chain) into this config.

        A file of an older ``VERSION`` (or one without VERSION that uses v1 keys) is upgraded
        automatically, as upstream (:mod:`.compat`). Errors name the file that sets a bad key
        (the including file or one of its bases).
        ``allow_unsafe`` is accepted for API compatibility only (see :meth:`load_yaml_with_base`).
        """
        origins: dict[str, str] = {}
        loaded = _read_with_base(cfg_filename, origins)
        if "VERSION" not in self:  # a user's own CfgNode: no versioning
            self._merge_loaded(loaded, origins, cfg_filename)
            return
        from .compat import downgrade_config, guess_version, upgrade_config  # compat imports CfgNode

        if self.VERSION != _LATEST_VERSION:
            raise ConfigError(f"merge_from_file({cfg_filename}): this config has VERSION={self.VERSION!r}, "
                              f"expected {_LATEST_VERSION}: files merge only into a config of the latest version")
        version = loaded.get("VERSION", None)
        if version is None:
            version = guess_version(loaded, cfg_filename)
        if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= _LATEST_VERSION:
            raise ConfigError(f"{cfg_filename}: VERSION={version!r}, expected an int from 0 to {_LATEST_VERSION}")
        if version == _LATEST_VERSION:
            self._merge_loaded(loaded, origins, cfg_filename)
            return
        logger.warning("Loading an old v%d config file '%s' by automatically upgrading to v%d. "
                       "See docs/CHANGELOG.md for instructions to update your files.",
                       version, cfg_filename, _LATEST_VERSION)
        # the defaults at the file's version take the file, then the whole is brought up to date
        old_self = downgrade_config(self, to_version=version)
        old_self._merge_loaded(loaded, origins, cfg_filename)
        new_config = upgrade_config(old_self)
        self.clear()
        self.update(new_config)

    def _merge_loaded(self, loaded: dict[str, Any], origins: dict[str, str], cfg_filename: str) -> None:
        """Merge the dict read from ``cfg_filename``; errors name the file that set the bad key."""
        self._check_keys_exist(loaded, origins, cfg_filename)
        try:
            self.merge_from_other_cfg(type(self)(loaded))
        except ConfigError:
            raise
        except KeyError as e:  # a renamed key
            raise ConfigKeyError(f"{cfg_filename}: {e.args[0] if e.args else e}") from e
        except (ValueError, AssertionError) as e:
            raise ConfigError(f"{cfg_filename}: {e}") from e

    def merge_from_other_cfg(self, cfg_other: _YacsCfgNode) -> None:
        if BASE_KEY in cfg_other:
            raise ConfigError(f"merge_from_other_cfg: {BASE_KEY} must be resolved by merge_from_file first")
        return super().merge_from_other_cfg(cfg_other)

    def merge_from_list(self, cfg_list: list[Any]) -> None:
        """Merge ``["KEY.SUB", value, ...]`` (command-line overrides) into this config."""
        if len(cfg_list) % 2 != 0:
            raise ConfigError(f"merge_from_list: {len(cfg_list)} items {list(cfg_list)!r}, expected KEY VALUE pairs")
        keys = cfg_list[0::2]
        if BASE_KEY in keys:
            raise ConfigError(f"merge_from_list: {BASE_KEY} cannot be set from a list")
        for key in keys:
            if not self._has_key(str(key)) and not self._is_retired_key(str(key)):
                raise ConfigKeyError(self._unknown_key_message(str(key), "command-line override"))
        try:
            super().merge_from_list(cfg_list)
        except KeyError as e:  # a renamed key
            raise ConfigKeyError(f"merge_from_list: {e.args[0] if e.args else e}") from e
        except ValueError as e:
            raise ConfigError(f"merge_from_list: {e}") from e

    def __setattr__(self, name: str, val: Any) -> None:
        if name.startswith("COMPUTED_"):
            if name in self and self[name] != val:
                raise KeyError(f"Computed attribute '{name}' already exists with a different value! "
                               f"old={self[name]}, new={val}.")
            self[name] = val
        else:
            super().__setattr__(name, val)

    def dump(self, *args: Any, **kwargs: Any) -> str:
        """The config as a YAML string that ``merge_from_file`` reads back."""
        return super().dump(*args, **kwargs)

    # ----------------------------------------------------------------------------------------------
    def _has_key(self, full_key: str) -> bool:
        return has_dotted_key(self, full_key)

    def _is_retired_key(self, full_key: str) -> bool:
        """Registered as deprecated or renamed: yacs reports those itself (without logging here)."""
        return (full_key in self.__dict__[_YacsCfgNode.DEPRECATED_KEYS]
                or full_key in self.__dict__[_YacsCfgNode.RENAMED_KEYS])

    def _check_keys_exist(self, loaded: dict[str, Any], origins: dict[str, str], cfg_filename: str) -> None:
        unknown = list(self._unknown_keys(loaded, self, ""))
        if unknown:
            messages = [self._unknown_key_message(k, origins.get(k, cfg_filename)) for k in unknown]
            raise ConfigKeyError("\n".join(messages))

    def _unknown_keys(self, loaded: dict[str, Any], node: _YacsCfgNode, prefix: str) -> Iterable[str]:
        for k, v in loaded.items():
            full_key = prefix + str(k)
            if k in node:
                if isinstance(v, dict) and isinstance(node[k], _YacsCfgNode):
                    yield from self._unknown_keys(v, node[k], full_key + ".")
            elif not node.is_new_allowed() and not self._is_retired_key(full_key):
                yield full_key

    def _unknown_key_message(self, full_key: str, where: str) -> str:
        close = difflib.get_close_matches(full_key, _all_keys(self), n=3, cutoff=0.75)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return (f"{where}: {full_key} is not a config key (Non-existent config key: {full_key}), "
                f"expected a key defined by get_cfg() or added to it before merging{hint}")


def get_cfg() -> CfgNode:
    """A fresh copy of detectron2's default config (``detectron2.config.get_cfg``)."""
    from .defaults import _C

    return _C.clone()
