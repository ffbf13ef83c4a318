"""Registry of ONNX -> Caffe2 translation rules, keyed by (domain, op_type) and opset.

A rule is a function ``fn(node, ctx) -> list[OperatorDef]`` registered with ``@converts("Conv")``.
``since`` selects a rule by opset when an ONNX op changed meaning between versions: the rule with
the highest ``since`` not above the model's opset for the node's domain wins. Caffe2 custom ops
exported by PyTorch live in a domain named after the ``_caffe2`` namespace; every domain ending
in ``_caffe2`` maps to the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import onnx

from ...caffe2.proto import caffe2_pb2
from ...errors import UnsupportedOnnxNodeError

if TYPE_CHECKING:
    from .context import ConversionContext

ConverterFn = Callable[[onnx.NodeProto, "ConversionContext"], list[caffe2_pb2.OperatorDef]]

ONNX_DOMAIN = ""
CAFFE2_DOMAIN = "_caffe2"
ATEN_DOMAIN = "org.pytorch.aten"


@dataclass(frozen=True)
class _Rule:
    since: int
    fn: ConverterFn


_RULES: dict[tuple[str, str], list[_Rule]] = {}


def domain_key(domain: str) -> str:
    """The registry key of an ONNX domain: "" for the default domain, "_caffe2" for Caffe2 ops."""
    if domain in ("", "ai.onnx"):
        return ONNX_DOMAIN
    if domain.endswith("_caffe2"):
        return CAFFE2_DOMAIN
    return domain


def converts(*op_types: str, domain: str = ONNX_DOMAIN, since: int = 1) -> Callable[[ConverterFn], ConverterFn]:
    """Decorator registering ``fn`` as the rule for ``op_types`` from opset ``since`` on."""

    def deco(fn: ConverterFn) -> ConverterFn:
        for op_type in op_types:
            rules = _RULES.setdefault((domain_key(domain), op_type), [])
            clash = [r for r in rules if r.since == since]
            if clash:
                raise ValueError(
                    f"ONNX converter for {op_type!r} (domain {domain!r}, since opset {since}) registered twice: "
                    f"{clash[0].fn.__module__}.{clash[0].fn.__name__} and {fn.__module__}.{fn.__name__}"
                )
            rules.append(_Rule(since, fn))
            rules.sort(key=lambda r: r.since)
        return fn

    return deco


def _ensure_converters_imported() -> None:
    from . import converters  # noqa: F401  (each module registers its rules on import)


def supported_ops() -> list[str]:
    """Every convertible op: ``"Conv"`` for the default domain, ``"<domain>::<op>"`` otherwise."""
    _ensure_converters_imported()
    return sorted(op if dom == ONNX_DOMAIN else f"{dom}::{op}" for dom, op in _RULES)


def get_converter(node: onnx.NodeProto, opset: int) -> ConverterFn:
    """The rule for ``node`` at ``opset`` (the model's version of the node's domain)."""
    _ensure_converters_imported()
    rules = _RULES.get((domain_key(node.domain), node.op_type), [])
    usable = [r for r in rules if r.since <= opset]
    if usable:
        return usable[-1].fn
    reason = f"rules exist only from opset {rules[0].since}" if rules else "there is no Caffe2 translation for it"
    raise UnsupportedOnnxNodeError(
        f"ONNX node {node.name!r}: op_type={node.op_type!r} (domain={node.domain!r}, opset {opset}) "
        f"is not supported: {reason}; supported ops: {', '.join(supported_ops())}"
    )
