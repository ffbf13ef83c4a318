"""utils.registry: Registry (duplicates, misses), locate and its inverse _convert_target_to_string."""

from __future__ import annotations

import pydoc

import pytest
import torch

from detectron2_export.layers import nms_rotated
from detectron2_export.structures import BoxMode
from detectron2_export.utils.registry import Registry, _convert_target_to_string, locate


def test_registry_register_get_duplicate_and_miss():
    reg = Registry("THINGS")

    @reg.register()
    class Alpha:
        pass

    reg.register(len, name="length")
    assert reg.get("Alpha") is Alpha and reg.get("length") is len
    assert "Alpha" in reg and len(reg) == 2
    with pytest.raises(KeyError, match="'Alpha' was already registered in 'THINGS'"):
        reg.register(Alpha)
    with pytest.raises(KeyError, match=r"No object named 'Beta' found in 'THINGS' registry! Registered: \['Alpha', 'length'\]"):
        reg.get("Beta")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("torch.nn.Conv2d", torch.nn.Conv2d),
        ("torch.nn.modules.conv.Conv2d", torch.nn.Conv2d),
        ("torch.optim.sgd.SGD", torch.optim.SGD),
        ("detectron2_export.layers.nms_rotated", nms_rotated),
        ("detectron2_export.structures.BoxMode.XYWHA_ABS", BoxMode.XYWHA_ABS),  # a nested qualname
    ],
)
def test_locate(name, expected):
    assert locate(name) is expected


def test_locate_falls_back_to_importing_the_longest_module(monkeypatch):
    monkeypatch.setattr(pydoc, "locate", lambda name: None)
    assert locate("torch.nn.modules.conv.Conv2d") is torch.nn.Conv2d
    assert locate("detectron2_export.structures.BoxMode.XYXY_ABS") is BoxMode.XYXY_ABS


@pytest.mark.parametrize("name", ["torch.nn.NoSuchLayer", "no_such_package.thing", "torch.nn.Conv2d.no_attr"])
def test_locate_miss_raises_import_error(name):
    with pytest.raises(ImportError, match=rf"locate: name='{name}', expected the dotted path of an importable object"):
        locate(name)


@pytest.mark.parametrize(
    "obj, expected",
    [
        # the shortest path that resolves to the same object, as upstream
        (torch.nn.Conv2d, "torch.nn.Conv2d"),
        (torch.optim.SGD, "torch.optim.SGD"),
        (nms_rotated, "detectron2_export.layers.nms_rotated"),
        (BoxMode, "detectron2_export.structures.BoxMode"),
        (pydoc.locate, "pydoc.locate"),
        # a method keeps its qualname
        (torch.nn.Module.__init__, "torch.nn.Module.__init__"),
    ],
)
def test_convert_target_to_string(obj, expected):
    assert _convert_target_to_string(obj) == expected
    assert locate(expected) is obj
