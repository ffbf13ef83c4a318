"""``zoo_export_table.py``: which model-zoo configs each exporter accepts, as a Markdown table.

Every config under ``configs/`` (YAML and LazyConfig, except the bases, ``common/`` and the bundled
shapes model) is built on the meta device (shapes only: fast) and given to each exporter's own
acceptance check, the one it runs before tracing: ``Caffe2Tracer``'s ``_check_exportable`` (YAML
configs only, as upstream), the standard-ONNX lowering (``lower_model``, with the opset it needs),
and TorchScript tracing (every meta-architecture the tracing CLI evaluates). The README's table is
this command's output; the end-to-end tests export one config of each architecture.
"""

from __future__ import annotations

import argparse
import copy
import glob
import logging
import os
from typing import Callable, Dict, List

import torch

from ..errors import Detectron2ExportError

logger = logging.getLogger(__name__)

PROG = "zoo_export_table.py"
CONFIG_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")
TRACEABLE = {"GeneralizedRCNN", "RetinaNet", "FCOS", "PanopticFPN", "SemanticSegmentor"}


def zoo_configs(root: str = CONFIG_ROOT) -> List[str]:
    """Config paths relative to ``root``: the model zoo's YAML and ``.py`` files."""
    paths = []
    for path in sorted(glob.glob(os.path.join(root, "**", "*.*"), recursive=True)):
        rel = os.path.relpath(path, root)
        top = rel.split(os.sep)[0]
        if top in ("common", "shapes", "quick_schedules") or os.sep not in rel:
            continue
        if rel.endswith((".yaml", ".py")) and not os.path.basename(rel).startswith("Base-"):
            paths.append(rel.replace(os.sep, "/"))
    return paths


def _build(rel: str):
    """(cfg or None for a LazyConfig, model on the meta device)."""
    from ..config import instantiate
    from ..model_zoo import get_config
    from ..modeling import build_model

    cfg = get_config(rel)
    with torch.device("meta"):
        if rel.endswith(".py"):
            return None, instantiate(cfg.model)
        cfg.MODEL.DEVICE = "meta"
        return cfg, build_model(cfg)


def _caffe2(cfg, model) -> str:
    """Caffe2Tracer's own checks; a LazyConfig's keys come from the model, as Caffe2Tracer derives them."""
    from ..export.api import _caffe2_cfg, _check_exportable

    _check_exportable(_caffe2_cfg(cfg, model), model, [{"image": torch.zeros(3, 1, 1)}])
    return "yes"


def _onnx(cfg, model) -> str:
    from ..export.onnx.export import required_opset
    from ..export.onnx.meta_arch import lower_model

    lower_model(copy.deepcopy(model))
    return f"yes (opset {required_opset(model)})"


def _torchscript(cfg, model) -> str:
    if type(model).__name__ not in TRACEABLE:
        return f"no ({type(model).__name__})"
    return "yes"


EXPORTERS: Dict[str, Callable] = {"Caffe2": _caffe2, "standard ONNX": _onnx, "TorchScript tracing": _torchscript}


def _verdict(check: Callable, cfg, model) -> str:
    try:
        return check(cfg, model)
    except Detectron2ExportError as e:
        reason = str(e).split(": ", 1)[-1].split(";")[0].replace("|", "/")
        if len(reason) > 60:
            reason = reason[:60].rsplit(" ", 1)[0] + " ..."
        return f"no: {reason}"


def table(configs: List[str]) -> str:
    lines = ["| config | meta-architecture | " + " | ".join(EXPORTERS) + " |", "|---" * (2 + len(EXPORTERS)) + "|"]
    for rel in configs:
        try:
            cfg, model = _build(rel)
        except Exception as e:  # a config that does not build here (e.g. mmdet) is reported as such
            lines.append(f"| `{rel}` | does not build: {type(e).__name__} |" + " |" * len(EXPORTERS))
            continue
        cells = [_verdict(check, cfg, model) for check in EXPORTERS.values()]
        lines.append(f"| `{rel}` | {type(model).__name__} | " + " | ".join(cells) + " |")
        logger.info("%s: %s", rel, cells)
    return "\n".join(lines)


def main(argv: List[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog=PROG, description="Markdown table: which zoo configs each exporter accepts.")
    parser.add_argument("--configs", nargs="*", help="config paths under configs/ (default: all)")
    args = parser.parse_args(argv)
    text = table(args.configs or zoo_configs())
    print(text)
    return text


def cli(argv: List[str] | None = None) -> int:
    main(argv)
    return 0
