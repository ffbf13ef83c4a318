"""Channels-last convolution filters: the memory layout oneDNN computes in, chosen once at load time.

A CPU ``Conv`` on plain NCHW tensors makes oneDNN reorder its input and output to a blocked layout on
every call; when the filter is channels-last (NHWC strides) PyTorch runs the convolution in that
layout and returns a channels-last output, which the element-wise ops, pooling and the next
convolution keep. Values are the same tensors (only strides differ), results agree to float
rounding, and Mask R-CNN R50-FPN runs about 15% faster (``benchmarks/caffe2_export.py``).

Ops whose kernels need row-major input declare it (``register_op(..., contiguous_inputs=...)``);
the executor then converts such a blob once and stores the copy back for later readers.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import torch

from .proto import caffe2_pb2

_FILTER_INPUT = {"Conv": 1, "ConvTranspose": 1}
"""op type -> index of its filter input."""


def channels_last_filters(net: caffe2_pb2.NetDef, blobs: MutableMapping[str, Any]) -> list[str]:
    """Re-store as channels-last the 4-D float CPU filters in ``blobs`` that ``net`` reads only as filters.

    Blobs the net writes or feeds (external inputs not in ``blobs``), or reads in any other slot,
    are left alone. Returns the converted blob names.
    """
    filter_reads: set[str] = set()
    other_reads: set[str] = set()
    written: set[str] = set()
    for op in net.op:
        slot = _FILTER_INPUT.get(op.type)
        for i, name in enumerate(op.input):
            (filter_reads if i == slot else other_reads).add(name)
        written.update(op.output)
    converted = []
    for name in sorted(filter_reads - other_reads - written):
        value = blobs.get(name)
        if (
            isinstance(value, torch.Tensor)
            and value.dim() == 4
            and value.is_floating_point()
            and value.device.type == "cpu"
        ):
            blobs[name] = value.contiguous(memory_format=torch.channels_last)
            converted.append(name)
    return converted
