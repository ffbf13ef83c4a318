"""Scripting of models that use ``Instances``, and TorchScript IR dumps (SPEC 2.8, 2.9)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Union

import torch
from torch import nn

from ..errors import ExportAssertionError
from .torchscript_patch import freeze_training_mode, patch_instances

__all__ = ["scripting_with_instances", "dump_torchscript_IR", "export_torchscript_with_instances"]

ScriptedOrTraced = Union[torch.jit.ScriptModule, torch.jit.ScriptFunction]


def scripting_with_instances(model: nn.Module, fields: dict[str, type]) -> torch.jit.ScriptModule:
    """``torch.jit.script`` a model that uses ``Instances``.

    ``Instances`` adds attributes dynamically, which TorchScript cannot type. While scripting, it is
    replaced by a generated class with the statically typed ``fields``; the patch is reverted
    afterwards, so another model can be scripted with other fields.

    Args:
        model: a model in eval mode (training branches are compiled away).
        fields: every attribute name used on ``Instances`` anywhere in the model (inputs,
            intermediates, outputs) with its type, e.g. ``{"pred_boxes": Boxes, "scores": Tensor}``.

    Returns:
        The scripted model; it accepts any batch size. ``model`` itself is left as it was.
    """
    if model.training:
        raise ExportAssertionError(
            "Currently we only support exporting models in evaluation mode to torchscript: call model.eval()"
        )
    with _keep_submodules(model), freeze_training_mode(model), patch_instances(fields):
        return torch.jit.script(model)


@contextmanager
def _keep_submodules(model: nn.Module) -> Iterator[None]:
    """Undo ``torch.jit.script``'s in-place replacement of submodules.

    The compiler stores what each child's ``__prepare_scriptable__`` returns (e.g. the ResNet with
    ``stages`` as a ModuleList) into the parent's ``_modules``, which would change the eager model's
    structure and state_dict keys, and make a second scripting prepare an already prepared copy.
    """
    saved = [(module, dict(module._modules)) for module in model.modules()]
    try:
        yield
    finally:
        for module, children in saved:
            module._modules.clear()
            module._modules.update(children)


# the name used by detectron2 v0.3
export_torchscript_with_instances = scripting_with_instances


def _script_module(mod: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    if isinstance(mod, torch.jit.TracedModule):
        return mod._actual_script_module
    return mod


def _code(mod: ScriptedOrTraced) -> str | None:
    try:  # the C++ module's code also shows the methods' schemas
        return _script_module(mod)._c.code
    except AttributeError:
        pass
    try:
        return mod.code
    except AttributeError:
        return None


def _dump_code(f, prefix: str, mod: torch.jit.ScriptModule) -> None:
    name = prefix or "root model"
    code = _code(mod)
    if code is None:
        f.write(f"Could not found code for {name} (type={mod.original_name})\n\n")
    else:
        f.write(f"\nCode for {name}, type={mod.original_name}:\n{code}\n")
        f.write("-" * 80)
    for child_name, child in mod.named_children():
        _dump_code(f, prefix + "." + child_name, child)


def _graph(model: ScriptedOrTraced) -> str:
    try:  # every module's graph, recursively
        return _script_module(model)._c.dump_to_str(True, False, False)
    except AttributeError:
        return str(model.graph)


def dump_torchscript_IR(model: ScriptedOrTraced, dir: str) -> None:
    """Write what TorchScript made of a model, for debugging, into ``dir`` (created, ``~`` expanded):

    * ``model_ts_code.txt``: the code of the root module and of every submodule (or of the function);
    * ``model_ts_IR.txt``: the graphs of all modules (or the function's graph);
    * ``model_ts_IR_inlined.txt``: the whole graph with submodule calls inlined;
    * ``model.txt``: ``str(model)``, for modules only.

    Accepts a traced module, a scripted module or a scripted function.
    """
    dir = os.path.expanduser(dir)
    os.makedirs(dir, exist_ok=True)
    is_function = isinstance(model, torch.jit.ScriptFunction)

    with open(os.path.join(dir, "model_ts_code.txt"), "w") as f:
        if is_function:
            f.write(_code(model))
        else:
            _dump_code(f, "", model)
    with open(os.path.join(dir, "model_ts_IR.txt"), "w") as f:
        f.write(_graph(model))
    with open(os.path.join(dir, "model_ts_IR_inlined.txt"), "w") as f:
        f.write(str(model.inlined_graph))
    if not is_function:
        with open(os.path.join(dir, "model.txt"), "w") as f:
            f.write(str(model))
