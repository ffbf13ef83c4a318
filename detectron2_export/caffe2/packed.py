"""Filling repeated numeric protobuf fields from raw bytes.

``extend`` over millions of Python numbers dominates the export of nets with large weights; parsing
the packed wire encoding (tag, byte length, little-endian values) once is several times faster and
gives an equal message.
"""

from __future__ import annotations

import numpy as np
from google.protobuf.message import Message


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def extend_packed(message: Message, field_number: int, values: np.ndarray, wire_dtype: str) -> None:
    """Append ``values`` to the packed fixed-width field ``field_number`` (``"<f4"`` float, ``"<f8"`` double)."""
    payload = np.ascontiguousarray(values, dtype=wire_dtype).tobytes()
    if payload:
        message.MergeFromString(_varint(field_number << 3 | 2) + _varint(len(payload)) + payload)
