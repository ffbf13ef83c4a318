"""The yacs config the Caffe2 rewrite reads, derived from a built model.

``Caffe2Tracer`` takes a model built from a LazyConfig (or from anything else) with ``cfg`` a
LazyConfig or None. The rewrite (``caffe2_modeling``, ``c10``) reads everything about the model
(thresholds, poolers, box2box weights, heads, size divisibility, pixel mean/std, device) from the
model's own attributes; from the config it reads only the keys built here:

* ``MODEL.META_ARCHITECTURE``: which ``Caffe2MetaArch`` wraps the model;
* ``MODEL.RPN.BBOX_REG_WEIGHTS``: ``Caffe2RPN.from_config``'s check (models with an RPN);
* ``EXPORT_CAFFE2.USE_HEATMAP_MAX_KEYPOINT``: upstream's default, False.
"""

from __future__ import annotations

from torch import nn

from ..config import CfgNode
from ..modeling import meta_arch
from ..modeling.proposal_generator.rpn import RPN

__all__ = ["caffe2_cfg_from_model", "meta_architecture_name"]


def meta_architecture_name(model: nn.Module) -> str:
    """The name of the Caffe2-exportable meta-architecture ``model`` is an instance of, nearest first
    in its class hierarchy (a PanopticFPN is also a GeneralizedRCNN); else its own class name, which
    the tracer then refuses naming it."""
    from .caffe2_modeling import META_ARCH_CAFFE2_EXPORT_TYPE_MAP

    for klass in type(model).__mro__:
        if klass.__name__ in META_ARCH_CAFFE2_EXPORT_TYPE_MAP and getattr(meta_arch, klass.__name__, None) is klass:
            return klass.__name__
    return type(model).__name__


def caffe2_cfg_from_model(model: nn.Module) -> CfgNode:
    """A CfgNode with exactly the keys the Caffe2 rewrite reads (see the module docstring), taken from
    ``model``; what ``Caffe2Tracer`` uses when it gets a LazyConfig or None."""
    cfg = CfgNode()
    cfg.MODEL = CfgNode()
    cfg.MODEL.META_ARCHITECTURE = meta_architecture_name(model)
    rpn = getattr(model, "proposal_generator", None)
    if isinstance(rpn, RPN):
        cfg.MODEL.RPN = CfgNode()
        cfg.MODEL.RPN.BBOX_REG_WEIGHTS = tuple(float(w) for w in rpn.box2box_transform.weights)
    cfg.EXPORT_CAFFE2 = CfgNode()
    cfg.EXPORT_CAFFE2.USE_HEATMAP_MAX_KEYPOINT = False
    cfg.freeze()
    return cfg
