"""Instances (detectron2.structures.instances): per-image detections as named, equal-length fields."""

import itertools
import warnings
from typing import Any, Dict, List, Tuple, Union

import torch

__all__ = ["Instances"]


class Instances:
    """The instances (boxes, scores, masks...) of one image, stored as named fields.

    Every field has the same length N (anything with ``__len__``: a tensor, Boxes, a list...).
    Fields are read and written as attributes (``instances.scores = t``), or with
    ``set``/``get``/``has``/``remove``. Indexing (int, slice, bool mask, index tensor) indexes
    every field. Attributes starting with "_" are ordinary Python attributes, not fields.
    """

    def __init__(self, image_size: Tuple[int, int], **kwargs: Any):
        """``image_size`` = (height, width) of the image; kwargs are initial fields."""
        self._image_size = image_size
        self._fields: Dict[str, Any] = {}
        for k, v in kwargs.items():
            self.set(k, v)

    @property
    def image_size(self) -> Tuple[int, int]:
        """(height, width)."""
        return self._image_size

    def __setattr__(self, name: str, val: Any) -> None:
        if name.startswith("_"):
            super().__setattr__(name, val)
        else:
            self.set(name, val)

    def __getattr__(self, name: str) -> Any:
        if name == "_fields" or name not in self._fields:
            raise AttributeError("Cannot find field '{}' in the given Instances!".format(name))
        return self._fields[name]

    def set(self, name: str, value: Any) -> None:
        """Set a field; its length must equal the length of the existing fields."""
        with warnings.catch_warnings(record=True):  # len() of a tensor warns while tracing
            data_len = len(value)
        if len(self._fields):
            assert len(self) == data_len, "Adding a field of length {} to a Instances of length {}".format(
                data_len, len(self)
            )
        self._fields[name] = value

    def has(self, name: str) -> bool:
        return name in self._fields

    def remove(self, name: str) -> None:
        del self._fields[name]

    def get(self, name: str) -> Any:
        return self._fields[name]

    def get_fields(self) -> Dict[str, Any]:
        """The field dict itself: modifying it modifies the Instances."""
        return self._fields

    def to(self, *args: Any, **kwargs: Any) -> "Instances":
        """A new Instances with every field that has ``to`` converted (others shared)."""
        ret = Instances(self._image_size)
        for k, v in self._fields.items():
            if hasattr(v, "to"):
                v = v.to(*args, **kwargs)
            ret.set(k, v)
        return ret

    def __getitem__(self, item: Union[int, slice, torch.BoolTensor]) -> "Instances":
        """Index every field; an int gives an Instances of length 1."""
        if type(item) == int:  # noqa: E721 (exactly int: bool is not a position)
            if item >= len(self) or item < -len(self):
                raise IndexError("Instances index out of range!")
            item = slice(item, None, len(self))

        ret = Instances(self._image_size)
        for k, v in self._fields.items():
            ret.set(k, v[item])
        return ret

    def __len__(self) -> int:
        for v in self._fields.values():
            # __len__ rather than len(): len() must return an int, which breaks tracing
            return v.__len__()
        raise NotImplementedError("Empty Instances does not support __len__!")

    def __iter__(self):
        raise NotImplementedError("`Instances` object is not iterable!")

    @staticmethod
    def cat(instance_lists: List["Instances"]) -> "Instances":
        """Concatenate Instances of the same image field by field.

        Tensors use torch.cat, lists are chained, other types use their ``cat`` classmethod.
        """
        assert all(isinstance(i, Instances) for i in instance_lists)
        assert len(instance_lists) > 0
        if len(instance_lists) == 1:
            return instance_lists[0]

        image_size = instance_lists[0].image_size
        if not isinstance(image_size, torch.Tensor):  # a tensor while tracing
            for i in instance_lists[1:]:
                assert i.image_size == image_size
        ret = Instances(image_size)
        for k in instance_lists[0]._fields.keys():
            values = [i.get(k) for i in instance_lists]
            v0 = values[0]
            if isinstance(v0, torch.Tensor):
                values = torch.cat(values, dim=0)
            elif isinstance(v0, list):
                values = list(itertools.chain(*values))
            elif hasattr(type(v0), "cat"):
                values = type(v0).cat(values)
            else:
                raise ValueError("Unsupported type {} for concatenation".format(type(v0)))
            ret.set(k, values)
        return ret

    def __str__(self) -> str:
        s = self.__class__.__name__ + "("
        s += "num_instances={}, ".format(len(self))
        s += "image_height={}, ".format(self._image_size[0])
        s += "image_width={}, ".format(self._image_size[1])
        s += "fields=[{}])".format(", ".join((f"{k}: {v}" for k, v in self._fields.items())))
        return s

    __repr__ = __str__
