"""Scripting of models that use ``Instances``, and TorchScript IR dumps (SPEC 2.8, 2.9)."""

from __future__ import annotations

import os

import torch
from torch import nn

from .torchscript_patch import freeze_training_mode, patch_instances, patch_nonscriptable_classes

__all__ = ["scripting_with_instances", "dump_torchscript_IR", "export_torchscript_with_instances"]


def scripting_with_instances(model: nn.Module, fields: dict[str, type]) -> torch.jit.ScriptModule:
    """``torch.jit.script`` a model that uses ``Instances``.

    Args:
        model: a model in eval mode.
        fields: every attribute name used on ``Instances`` anywhere in the model (inputs,
            intermediates, outputs) with its type, e.g. ``{"pred_boxes": Boxes, "scores": torch.Tensor}``.

    The global patches are reverted afterwards, so another model can be scripted with other fields.
    """
    assert (
        not model.training
    ), "Currently we only support exporting models in evaluation mode to torchscript"
    patch_nonscriptable_classes()
    with freeze_training_mode(model), patch_instances(fields):
        return torch.jit.script(model)


# alias for old name
export_torchscript_with_instances = scripting_with_instances


def _get_script_mod(mod):
    if isinstance(mod, torch.jit.TracedModule):
        return mod._actual_script_module
    return mod


def _get_code(mod) -> str | None:
    try:
        return _get_script_mod(mod)._c.code
    except AttributeError:
        return None


def dump_torchscript_IR(model, dir: str) -> None:
    """Write the code, graph and inlined graph of a traced/scripted module (or function) into
    ``dir``: ``model_ts_code.txt``, ``model_ts_IR.txt``, ``model_ts_IR_inlined.txt``, ``model.txt``."""
    dir = os.path.expanduser(dir)
    os.makedirs(dir, exist_ok=True)

    def dump_code(prefix: str, mod, f) -> None:
        code = _get_code(mod)
        name = prefix or "root model"
        if code is None:
            f.write(f"Could not found code for {name} (type={mod.original_name})\n")
            f.write("\n")
        else:
            f.write(f"\nCode for {name}, type={mod.original_name}:\n")
            f.write(code)
            f.write("\n")
            f.write("-" * 80)

        for name, m in mod.named_children():
            dump_code(prefix + "." + name, m, f)

    if isinstance(model, torch.jit.ScriptFunction):
        with open(os.path.join(dir, "model_ts_code.txt"), "w") as f:
            f.write(model.code)
    else:
        with open(os.path.join(dir, "model_ts_code.txt"), "w") as f:
            dump_code("", model, f)

    def _get_graph(model) -> str:
        try:
            # Recursively dump IR of all modules
            return _get_script_mod(model)._c.dump_to_str(True, False, False)
        except AttributeError:
            return str(model.graph)

    with open(os.path.join(dir, "model_ts_IR.txt"), "w") as f:
        f.write(_get_graph(model))

    with open(os.path.join(dir, "model_ts_IR_inlined.txt"), "w") as f:
        f.write(str(model.inlined_graph))

    if not isinstance(model, torch.jit.ScriptFunction):
        with open(os.path.join(dir, "model.txt"), "w") as f:
            f.write(str(model))
