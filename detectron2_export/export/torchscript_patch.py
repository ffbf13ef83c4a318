"""Patches that make detectron2 models traceable and scriptable (SPEC 7.2, 7.3).

``patch_instances`` replaces the dynamically-typed ``Instances`` by a generated, statically-typed
class while ``torch.jit.script`` runs; ``patch_builtin_len`` keeps ``len()`` symbolic while tracing;
``freeze_training_mode`` lets the compiler drop training-only branches;
``patch_nonscriptable_classes`` (applied on import) gives ResNet/FPN scriptable layouts.
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from copy import deepcopy
from typing import Any, Callable, Iterator, Sequence
from unittest import mock

import torch
from torch import nn

from ..structures import Boxes, Instances

__all__ = ["patch_instances", "patch_builtin_len", "freeze_training_mode", "patch_nonscriptable_classes"]

_counter = 0

_LEN_PATCHED_MODULES = (
    "detectron2_export.modeling.roi_heads.fast_rcnn",
    "detectron2_export.modeling.roi_heads.mask_head",
    "detectron2_export.modeling.roi_heads.keypoint_head",
)


def _clear_jit_cache() -> None:
    """Forget compiled module types and free functions: ``Instances`` may map to another class now."""
    from torch.jit._recursive import concrete_type_store
    from torch.jit._state import _jit_caching_layer

    concrete_type_store.type_store.clear()
    _jit_caching_layer.clear()


@contextmanager
def patch_instances(fields: dict[str, type]) -> Iterator[type]:
    """While active, TorchScript compiles every use of ``Instances`` as a generated class whose
    fields (``name -> type``, e.g. ``{"pred_boxes": Boxes, "scores": torch.Tensor}``) are declared
    statically. Yields the generated class."""
    global _counter
    _counter += 1
    with tempfile.TemporaryDirectory(prefix="detectron2_export") as tmpdir:
        module = None
        try:
            _clear_jit_cache()
            cls_name, source = _gen_instance_module(fields, _counter)
            path = os.path.join(tmpdir, f"scripted_instances_{_counter}.py")
            with open(path, "w", encoding="utf-8") as f:
                f.write(source)
            module = _import_file(f"{__name__}{_counter}", path)
            new_instances = getattr(module, cls_name)
            # torch.jit.script(cls) resolves names in the *caller's* frame by default; the generated
            # annotations (detectron2_export.structures.boxes.Boxes, ...) live in the generated module.
            torch.jit.script(new_instances, _rcb=_module_resolution_callback(module))

            # the compiler now believes Instances is scripted already, and finds its TorchScript
            # type under the generated class's qualified name
            Instances.__torch_script_class__ = True
            Instances._jit_override_qualname = torch._jit_internal._qualified_name(new_instances)
            _add_instances_conversion_methods(new_instances)
            yield new_instances
        finally:
            for attr in ("__torch_script_class__", "_jit_override_qualname"):
                if attr in Instances.__dict__:
                    delattr(Instances, attr)
            if module is not None:
                sys.modules.pop(module.__name__, None)


class _ModuleEnv:
    """Looks names up as Python code in ``module`` would: its globals, then builtins."""

    def __init__(self, module: Any) -> None:
        self._globals = vars(module)

    def __getattr__(self, key: str) -> Any:
        if key in self._globals:
            return self._globals[key]
        return getattr(builtins, key, None)


def _module_resolution_callback(module: Any) -> Callable[[str], Any]:
    """A TorchScript resolution callback for code defined in ``module`` (dotted names allowed)."""
    return torch._jit_internal.createResolutionCallbackFromEnv(_ModuleEnv(module))


def _add_instances_conversion_methods(new_instances: type) -> None:
    cls_name = new_instances.__name__

    def from_instances(instances: Instances) -> Any:
        """Build the generated class from a real ``Instances`` (fields deep-copied)."""
        ret = new_instances(instances.image_size)
        for name, val in instances.get_fields().items():
            if not hasattr(ret, f"_{name}"):
                raise AttributeError(f"{cls_name}.from_instances: field {name!r} was not declared in `fields`")
            setattr(ret, name, deepcopy(val))
        return ret

    # added after scripting the class, so it stays a Python-only helper
    new_instances.from_instances = staticmethod(from_instances)


def _type_annotation(type_: type) -> str:
    return f"{type_.__module__}.{type_.__qualname__}"


def _if_field_set(name: str) -> list[str]:
    """Generated lines opening a block that runs when field ``name`` is set (bound to ``t``)."""
    return [f"        t = self._{name}", "        if t is not None:"]


def _gen_instance_class(fields: dict[str, type], counter: int) -> tuple[str, str]:
    """Python source of a TorchScript class ``ScriptedInstances{counter}`` with the given fields."""
    cls_name = f"ScriptedInstances{counter}"
    for name in fields:
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f"patch_instances: field name={name!r}, expected a Python identifier")
    items = [(name, type_, _type_annotation(type_)) for name, type_ in fields.items()]
    field_names = tuple(fields)
    new_empty = f"        ret = {cls_name}(self.image_size{', None' * len(items)})"
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
        out += _if_field_set(n) + ["            return len(t)"]
    out += ['        raise NotImplementedError("Empty Instances does not support __len__!")']

    out += ["", "    def has(self, name: str) -> bool:"]
    for n, _, _ in items:
        out += [f'        if name == "{n}":', f"            return self._{n} is not None"]
    out += ["        return False"]

    out += ["", f'    def to(self, device: torch.device) -> "{cls_name}":', new_empty]
    for n, type_, _ in items:
        if hasattr(type_, "to"):  # fields that cannot move to a device are dropped
            out += _if_field_set(n) + [f"            ret._{n} = t.to(device)"]
    out += ["        return ret"]

    out += ["", f'    def __getitem__(self, item) -> "{cls_name}":', new_empty]
    for n, _, _ in items:
        out += _if_field_set(n) + [f"            ret._{n} = t[item]"]
    out += ["        return ret"]

    # no consistency checks between the instances (image sizes, field sets), as upstream
    out += ["", f'    def cat(self, instances: List["{cls_name}"]) -> "{cls_name}":', new_empty]
    for n, type_, a in items:
        out += _if_field_set(n) + [f"            values: List[{a}] = [x.{n} for x in instances]"]
        if type_ is torch.Tensor:
            out += [f"            ret._{n} = torch.cat(values, dim=0)"]
        else:
            out += [f"            ret._{n} = t.cat(values)"]
    out += ["        return ret"]

    out += ["", "    def get_fields(self) -> Dict[str, Tensor]:", "        ret = {}"]
    for n, type_, _ in items:
        out += _if_field_set(n)
        if type_ is Boxes:
            out += [f'            ret["{n}"] = t.tensor']
        elif type_ is torch.Tensor:
            out += [f'            ret["{n}"] = t']
        else:
            out += [f'            assert False, "get_fields: unsupported type {a} of field {n}"']
    out += ["        return ret", ""]
    return cls_name, "\n".join(out)


def _gen_instance_module(fields: dict[str, type], counter: int) -> tuple[str, str]:
    header = [
        "from copy import deepcopy",
        "import torch",
        "from torch import Tensor",
        "import typing",
        "from typing import *",
        "",
        "import detectron2_export",
        "from detectron2_export.structures import Boxes, Instances",
    ]
    modules = sorted({t.__module__ for t in fields.values()} - {"builtins", "torch"})
    header += [f"import {m}" for m in modules]
    cls_name, cls_def = _gen_instance_class(fields, counter)
    return cls_name, "\n".join(header) + "\n\n\n" + cls_def


def _import_file(name: str, path: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # TorchScript finds the source and the class through sys.modules
    spec.loader.exec_module(module)
    return module


@contextmanager
def patch_builtin_len(modules: Sequence[str] = ()) -> Iterator[None]:
    """Replace ``len`` in the ROI head modules (and ``modules``, dotted names) by ``obj.__len__()``.

    Under tracing, ``len()`` must return a Python int, which the tracer records as a constant;
    ``obj.__len__()`` of an ``Instances``/``Boxes`` returns the traced size instead, so a graph
    traced with N boxes works with M boxes.
    """

    def _new_len(obj: Any) -> Any:
        return obj.__len__()

    with ExitStack() as stack:
        for mod in list(_LEN_PATCHED_MODULES) + list(modules):
            patched = stack.enter_context(mock.patch(mod + ".len", create=True))
            patched.side_effect = _new_len
        yield


@contextmanager
def freeze_training_mode(model: nn.Module) -> Iterator[None]:
    """Annotate ``training`` as ``Final[bool]`` on the model's classes while scripting, so the
    compiler treats it as a constant and drops training-only branches; restored afterwards."""
    classes = {type(x) for x in model.modules()}
    # __constants__ (the old way to declare constants) does not mix with Final annotations
    classes = {x for x in classes if not hasattr(x, "__constants__")}
    saved: dict[type, dict | None] = {}
    for cls in classes:
        own = cls.__dict__.get("__annotations__")
        saved[cls] = None if own is None else dict(own)
        cls.__annotations__ = {**(own or {}), "training": torch.jit.Final[bool]}
    try:
        yield
    finally:
        for cls, own in saved.items():
            if own is None:
                del cls.__annotations__
            else:
                cls.__annotations__ = own


def patch_nonscriptable_classes() -> None:
    """Give ResNet / FPN scriptable layouts and make StandardROIHeads' head flags constants.

    No effect on eager use: ``__prepare_scriptable__`` is only called by ``torch.jit.script``, and
    ``Final`` annotations only matter to the compiler. The scripted ResNet keeps its stages in an
    ``nn.ModuleList`` (``stages.0...`` instead of ``res2...`` parameter names), as upstream.
    """
    from ..modeling.backbone import FPN, ResNet
    from ..modeling.roi_heads import StandardROIHeads

    def prepare_resnet(self: ResNet) -> ResNet:
        ret = deepcopy(self)
        ret.stages = nn.ModuleList(ret.stages)
        for name in self.stage_names:
            delattr(ret, name)
        return ret

    def prepare_fpn(self: FPN) -> FPN:
        ret = deepcopy(self)
        ret.lateral_convs = nn.ModuleList(ret.lateral_convs)
        ret.output_convs = nn.ModuleList(ret.output_convs)
        for name, _ in self.named_children():
            if name.startswith("fpn_"):
                delattr(ret, name)
        return ret

    ResNet.__prepare_scriptable__ = prepare_resnet
    FPN.__prepare_scriptable__ = prepare_fpn

    # a copy, so the annotations of the base class are not modified
    annotations = dict(StandardROIHeads.__dict__.get("__annotations__", {}))
    annotations["mask_on"] = torch.jit.Final[bool]
    annotations["keypoint_on"] = torch.jit.Final[bool]
    StandardROIHeads.__annotations__ = annotations


patch_nonscriptable_classes()
