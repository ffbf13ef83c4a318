"""Patches that make detectron2 models traceable and scriptable (SPEC 7.2, 7.3).

``patch_instances`` replaces the dynamically-typed ``Instances`` by a generated, statically-typed
class while ``torch.jit.script`` runs; ``patch_builtin_len`` keeps ``len()`` symbolic while tracing;
``freeze_training_mode`` lets the compiler drop training-only branches.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from copy import deepcopy
from typing import Any, Iterator
from unittest import mock

import torch
from torch import nn

from ..structures import Boxes, Instances

_counter = 0

_LEN_PATCHED_MODULES = [
    "detectron2_export.modeling.roi_heads.fast_rcnn",
    "detectron2_export.modeling.roi_heads.mask_head",
    "detectron2_export.modeling.roi_heads.keypoint_head",
]


def _clear_jit_cache() -> None:
    from torch.jit._recursive import concrete_type_store
    from torch.jit._state import _jit_caching_layer

    concrete_type_store.type_store.clear()  # for modules
    _jit_caching_layer.clear()  # for free functions


def _add_instances_conversion_methods(new_instances: type) -> None:
    cls_name = new_instances.__name__

    @torch.jit.unused
    def from_instances(instances: Instances):
        """Build the generated class from a real ``Instances`` (fields deep-copied)."""
        fields = instances.get_fields()
        ret = new_instances(instances.image_size)
        for name, val in fields.items():
            assert hasattr(ret, f"_{name}"), f"No attribute named {name} in {cls_name}"
            setattr(ret, name, deepcopy(val))
        return ret

    new_instances.from_instances = from_instances


@contextmanager
def patch_instances(fields: dict[str, type]) -> Iterator[type]:
    """While active, TorchScript compiles every use of ``Instances`` as a generated class whose
    fields (``name -> type``) are declared statically."""
    with tempfile.TemporaryDirectory(prefix="detectron2_export") as tmpdir:
        module = None
        try:
            _clear_jit_cache()
            cls_name, source = _gen_instance_module(fields)
            path = os.path.join(tmpdir, f"scripted_instances_{_counter}.py")
            with open(path, "w", encoding="utf-8") as f:
                f.write(source)
            module = _import(path)
            new_instances = getattr(module, cls_name)
            torch.jit.script(new_instances)

            # let torchscript think Instances was scripted already
            Instances.__torch_script_class__ = True
            # let torchscript find new_instances when looking for the jit type of Instances
            Instances._jit_override_qualname = torch._jit_internal._qualified_name(new_instances)

            _add_instances_conversion_methods(new_instances)
            yield new_instances
        finally:
            for attr in ("__torch_script_class__", "_jit_override_qualname"):
                if attr in Instances.__dict__:
                    delattr(Instances, attr)
            if module is not None:
                sys.modules.pop(module.__name__, None)


def _type_annotation(type_: type) -> str:
    return f"{type_.__module__}.{type_.__name__}"


def _gen_instance_class(fields: dict[str, type]) -> tuple[str, str]:
    """Python source of a TorchScript class with the given statically typed fields."""
    global _counter
    _counter += 1
    cls_name = f"ScriptedInstances{_counter}"
    items = [(name, type_, _type_annotation(type_)) for name, type_ in fields.items()]
    for name, _, _ in items:
        assert isinstance(name, str) and name.isidentifier(), f"Invalid field name: {name!r}"
    field_names = tuple(name for name, _, _ in items)
    none_args = ", None" * len(items)
    extra_args = "".join(f", {n}: Optional[{a}] = None" for n, _, a in items)

    out: list[str] = [
        f"class {cls_name}:",
        f"    def __init__(self, image_size: Tuple[int, int]{extra_args}):",
        "        self.image_size = image_size",
        f"        self._field_names = {field_names!r}",
    ]
    out += [f"        self._{n} = torch.jit.annotate(Optional[{a}], {n})" for n, _, a in items]

    for n, _, a in items:
        out += [
            "",
            "    @property",
            f"    def {n}(self) -> {a}:",
            f"        t = self._{n}",  # a local is needed for Optional refinement
            f'        assert t is not None, "{n} is None and cannot be accessed!"',
            "        return t",
            "",
            f"    @{n}.setter",
            f"    def {n}(self, value: {a}) -> None:",
            f"        self._{n} = value",
        ]

    out += ["", "    def __len__(self) -> int:"]
    for n, _, _ in items:
        out += [f"        t = self._{n}", "        if t is not None:", "            return len(t)"]
    out += ['        raise NotImplementedError("Empty Instances does not support __len__!")']

    out += ["", "    def has(self, name: str) -> bool:"]
    for n, _, _ in items:
        out += [f'        if name == "{n}":', f"            return self._{n} is not None"]
    out += ["        return False"]

    out += ["", f'    def to(self, device: torch.device) -> "{cls_name}":', f"        ret = {cls_name}(self.image_size{none_args})"]
    for n, t, _ in items:
        if hasattr(t, "to"):  # fields that cannot move to a device are dropped
            out += [f"        t = self._{n}", "        if t is not None:", f"            ret._{n} = t.to(device)"]
    out += ["        return ret"]

    out += ["", f'    def __getitem__(self, item) -> "{cls_name}":', f"        ret = {cls_name}(self.image_size{none_args})"]
    for n, _, _ in items:
        out += [f"        t = self._{n}", "        if t is not None:", f"            ret._{n} = t[item]"]
    out += ["        return ret"]

    # no consistency checks between the instances, as upstream
    out += ["", f'    def cat(self, instances: List["{cls_name}"]) -> "{cls_name}":', f"        ret = {cls_name}(self.image_size{none_args})"]
    for n, _, a in items:
        out += [
            f"        t = self._{n}",
            "        if t is not None:",
            f"            values: List[{a}] = [x.{n} for x in instances]",
            "            if torch.jit.isinstance(t, torch.Tensor):",
            f"                ret._{n} = torch.cat(values, dim=0)",
            "            else:",
            f"                ret._{n} = t.cat(values)",
        ]
    out += ["        return ret"]

    out += ["", "    def get_fields(self) -> Dict[str, Tensor]:", "        ret = {}"]
    for n, t, _ in items:
        if t == Boxes:
            stmt = "t.tensor"
        elif t == torch.Tensor:
            stmt = "t"
        else:
            stmt = f'assert False, "unsupported type {t}"'
        out += [f"        t = self._{n}", "        if t is not None:", f'            ret["{n}"] = {stmt}']
    out += ["        return ret", ""]
    return cls_name, "\n".join(out)


def _gen_instance_module(fields: dict[str, type]) -> tuple[str, str]:
    header = "\n".join(
        [
            "from copy import deepcopy",
            "import torch",
            "from torch import Tensor",
            "import typing",
            "from typing import *",
            "",
            "import detectron2_export",
            "import detectron2_export.structures",
            "from detectron2_export.structures import Boxes, Instances",
            "",
            "",
        ]
    )
    modules = sorted({t.__module__ for t in fields.values() if t.__module__ not in ("builtins", "torch")})
    header += "".join(f"import {m}\n" for m in modules)
    cls_name, cls_def = _gen_instance_class(fields)
    return cls_name, header + "\n" + cls_def


def _import(path: str) -> Any:
    name = f"{__name__}{_counter}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # TorchScript resolves the class through sys.modules
    spec.loader.exec_module(module)
    return module


@contextmanager
def patch_builtin_len(modules: tuple[str, ...] | list[str] = ()) -> Iterator[None]:
    """Replace ``len`` in the ROI head modules (and ``modules``) by ``obj.__len__()``, so that the
    tracer records a dynamic length instead of a constant."""

    def _new_len(obj: Any) -> Any:
        return obj.__len__()

    with ExitStack() as stack:
        for mod in _LEN_PATCHED_MODULES + list(modules):
            m = stack.enter_context(mock.patch(mod + ".len", create=True))
            m.side_effect = _new_len
        yield


def patch_nonscriptable_classes() -> None:
    """Give ResNet / FPN scriptable layouts and make StandardROIHeads' flags constants.
    No effect on eager use: ``__prepare_scriptable__`` is only called by ``torch.jit.script``."""
    from ..modeling.backbone import FPN, ResNet
    from ..modeling.roi_heads import StandardROIHeads

    def prepare_resnet(self):
        ret = deepcopy(self)
        ret.stages = nn.ModuleList(ret.stages)
        for k in self.stage_names:
            delattr(ret, k)
        return ret

    ResNet.__prepare_scriptable__ = prepare_resnet

    def prepare_fpn(self):
        ret = deepcopy(self)
        ret.lateral_convs = nn.ModuleList(ret.lateral_convs)
        ret.output_convs = nn.ModuleList(ret.output_convs)
        for name, _ in self.named_children():
            if name.startswith("fpn_"):
                delattr(ret, name)
        return ret

    FPN.__prepare_scriptable__ = prepare_fpn

    annotations = dict(StandardROIHeads.__dict__.get("__annotations__", {}))
    annotations["mask_on"] = torch.jit.Final[bool]
    annotations["keypoint_on"] = torch.jit.Final[bool]
    StandardROIHeads.__annotations__ = annotations


@contextmanager
def freeze_training_mode(model: nn.Module) -> Iterator[None]:
    """Annotate ``training`` as ``Final[bool]`` on the model's classes while scripting, so that
    training-only branches are compiled away."""
    classes = {type(x) for x in model.modules()}
    # __constants__ is the old way to annotate constants and is not compatible with __annotations__
    classes = {x for x in classes if not hasattr(x, "__constants__")}
    saved = {}
    for cls in classes:
        own = cls.__dict__.get("__annotations__")
        saved[cls] = None if own is None else dict(own)
        new = dict(own or {})
        new["training"] = torch.jit.Final[bool]
        cls.__annotations__ = new
    try:
        yield
    finally:
        for cls, own in saved.items():
            if own is None:
                del cls.__annotations__
            else:
                cls.__annotations__ = own
