"""Reduced-precision execution: convolutions and matrix products in bfloat16, everything else fp32.

``ProtobufModel(..., precision="bf16")`` works like autocast, decided once at load time: the filters
and biases of Conv, ConvTranspose, FC and FCTransposed (parameters read by nothing else) are cast to
bfloat16 once; at each such op the float32 activations are cast to bfloat16 on the way in and the
output back to float32 on the way out, so that box decoding, NMS, RoIAlign, softmax and the other
post-processing ops stay in fp32. The fused convolutions (``fusion.py``) take bfloat16 filters
packed once for oneDNN, and an output that only fused convolutions read stays bfloat16 between
them (the backbone's chain of convolutions runs without casts; the FPN outputs that RoIAlign and the
heads read come back as float32). R50-FPN at 800x1216, 2 threads, runs alternating: 0.47x the
unfused fp32 latency, where fused fp32 took 0.75x (and bf16 with a cast around every convolution
0.86x). bfloat16 needs a CPU with native support (AVX-512 BF16 or AMX): elsewhere
oneDNN emulates it far slower than fp32, so it is refused with a ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import replace
from typing import Any

import torch

from ..errors import ConfigError
from .executor import BoundOp

PRECISIONS = ("fp32", "bf16")
GEMM_OPS = frozenset({"Conv", "ConvTranspose", "FC", "FCTransposed"})
"""Ops computed in bfloat16 under ``precision="bf16"``; their inputs 1 and 2 are filter and bias."""


def bf16_supported() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def check_precision(precision: str) -> torch.dtype:
    """The compute dtype of ``precision``; ConfigError for unknown names or bf16 without CPU support."""
    if precision not in PRECISIONS:
        raise ConfigError(f"ProtobufModel: precision={precision!r}, expected one of {list(PRECISIONS)}")
    if precision == "fp32":
        return torch.float32
    if not torch.backends.mkldnn.is_available():
        raise ConfigError("ProtobufModel: precision='bf16' needs torch built with oneDNN (torch.backends.mkldnn), this one is not")
    if not bf16_supported():
        raise ConfigError(
            "ProtobufModel: precision='bf16' needs a CPU with native bfloat16 (AVX-512 BF16 or AMX); this one "
            f"has {torch.backends.cpu.get_cpu_capability()} without it (oneDNN would emulate it slower than fp32)"
        )
    return torch.bfloat16


def _to_float32(results: tuple) -> tuple:
    return tuple(r.float() if isinstance(r, torch.Tensor) and r.dtype == torch.bfloat16 else r for r in results)


def _in_bf16(fn: Callable[..., tuple]) -> Callable[..., tuple]:
    def run(*args: Any, **kwargs: Any) -> tuple:
        cast = [a.bfloat16() if isinstance(a, torch.Tensor) and a.dtype == torch.float32 else a for a in args]
        return _to_float32(fn(*cast, **kwargs))

    return run


def cast_gemm_ops_to_bf16(ops: Sequence[BoundOp], params: MutableMapping[str, Any]) -> list[BoundOp]:
    """``ops`` with every GEMM_OPS op computing in bfloat16; their float32 filters/biases in ``params``
    (those no other op reads, and the net never writes) replaced by bfloat16 copies."""
    written = {name for op in ops for name in op.outputs}
    other_reads = {name for op in ops for slot, name in enumerate(op.inputs) if op.op_type not in GEMM_OPS or slot == 0}
    for op in ops:
        if op.op_type not in GEMM_OPS:
            continue
        for name in op.inputs[1:3]:
            value = params.get(name)
            if name not in written and name not in other_reads and isinstance(value, torch.Tensor) and value.dtype == torch.float32:
                params[name] = value.bfloat16()
    return [replace(op, fn=_in_bf16(op.fn)) if op.op_type in GEMM_OPS else op for op in ops]


def fused_output(y: torch.Tensor) -> torch.Tensor:
    """A fused convolution's output back in float32 (a no-op in fp32)."""
    return y.float() if y.dtype == torch.bfloat16 else y
