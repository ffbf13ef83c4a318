"""detectron2's two global registries: how to load a dataset, and what is known about it.

``DatasetCatalog`` maps a name to a function returning ``list[dict]`` in detectron2's dataset
format; the function is only called by ``get`` so registering a dataset whose files are absent is
free. ``MetadataCatalog`` maps the same name to a :class:`Metadata` (class names, id mappings, the
evaluator type, the COCO json file...), created empty on first access.
"""

from __future__ import annotations

import copy
import logging
import types
from collections import UserDict
from typing import Any, Callable

from detectron2_export.errors import DatasetError

__all__ = ["DatasetCatalog", "MetadataCatalog", "Metadata", "DatasetNotRegisteredError"]

logger = logging.getLogger(__name__)


class DatasetNotRegisteredError(DatasetError, KeyError):
    """``DatasetCatalog.get`` of an unknown name (a KeyError, as upstream raises)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class _Catalog(UserDict):
    """The name-keyed dict both catalogs are: ``list``, ``remove`` and a listing ``str``."""

    _name = ""  # the public name, e.g. "DatasetCatalog"
    _contents = ""  # what the keys name, e.g. "registered datasets"

    def list(self) -> list[str]:
        return list(self.keys())

    def remove(self, name: str) -> None:
        self.pop(name)

    def __str__(self) -> str:
        return f"{self._name}({self._contents}: {', '.join(self.keys())})"

    __repr__ = __str__


class _DatasetCatalog(_Catalog):
    """name -> zero-argument function returning the dataset's ``list[dict]``."""

    _name, _contents = "DatasetCatalog", "registered datasets"

    def register(self, name: str, func: Callable[[], list[dict]]) -> None:
        if not callable(func):
            raise DatasetError(f"DatasetCatalog.register: func={func!r} for {name!r}, expected a callable")
        if name in self:
            raise DatasetError(f"DatasetCatalog.register: dataset {name!r} is already registered")
        self[name] = func

    def get(self, name: str) -> list[dict]:  # type: ignore[override]
        """Call the registered function (this is when files are read)."""
        try:
            func = self[name]
        except KeyError:
            raise DatasetNotRegisteredError(
                f"DatasetCatalog: dataset {name!r} is not registered! "
                f"Available datasets are: {', '.join(self.keys())}"
            ) from None
        return func()


DatasetCatalog = _DatasetCatalog()


class Metadata(types.SimpleNamespace):
    """Attribute bag for one dataset; an attribute, once set, cannot change to a different value.

    Reading a missing attribute raises AttributeError listing the attributes that exist; ``get``
    returns a default instead.
    """

    name: str = "N/A"

    _RENAMED = {
        "class_names": "thing_classes",
        "dataset_id_to_contiguous_id": "thing_dataset_id_to_contiguous_id",
        "stuff_class_names": "stuff_classes",
    }

    def __getattr__(self, key: str) -> Any:
        if key in self._RENAMED:
            logger.warning("Metadata '%s' was renamed to '%s'!", key, self._RENAMED[key])
            return getattr(self, self._RENAMED[key])
        if key.startswith("__"):  # copy/pickle probe dunders; never a metadata field
            raise AttributeError(key)
        if len(self.__dict__) > 1:  # "name" exists in every metadata
            raise AttributeError(
                f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}'. "
                f"Available keys are {sorted(self.__dict__)}."
            )
        raise AttributeError(
            f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}': metadata is empty."
        )

    def __setattr__(self, key: str, val: Any) -> None:
        if key in self._RENAMED:
            logger.warning("Metadata '%s' was renamed to '%s'!", key, self._RENAMED[key])
            key = self._RENAMED[key]
        if key in self.__dict__:
            old = self.__dict__[key]
            if old != val:
                raise DatasetError(
                    f"Metadata of {self.name!r}: {key}={val!r}, expected the value already set ({old!r}); "
                    "metadata cannot change once set"
                )
            return
        super().__setattr__(key, val)

    def as_dict(self) -> dict[str, Any]:
        return copy.copy(self.__dict__)

    def set(self, **kwargs: Any) -> "Metadata":
        """Set several attributes at once; returns self so calls can be chained."""
        for k, v in kwargs.items():
            setattr(self, k, v)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            return default


class _MetadataCatalog(_Catalog):
    """name -> :class:`Metadata`; ``get`` creates an empty one the first time a name is seen."""

    _name, _contents = "MetadataCatalog", "registered metadata"

    def get(self, name: str) -> Metadata:  # type: ignore[override]
        if not name:
            raise DatasetError(f"MetadataCatalog.get: name={name!r}, expected a non-empty dataset name")
        found = super().get(name, None)
        if found is None:
            found = self[name] = Metadata(name=name)
        return found


MetadataCatalog = _MetadataCatalog()
