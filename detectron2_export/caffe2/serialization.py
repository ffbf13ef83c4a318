"""Reading and writing NetDef files: binary ``.pb`` and protobuf text ``.pbtxt``.

A file that does not parse raises ProtobufError naming it; files appear atomically (written to a
temporary name in the same directory, then renamed).
"""

from __future__ import annotations

import os
from typing import TypeVar

from google.protobuf import text_format
from google.protobuf.message import DecodeError, Message

from ..errors import ProtobufError
from ..utils.file_io import atomic_write
from .proto import caffe2_pb2

M = TypeVar("M", bound=Message)

TEXT_SUFFIXES = (".pbtxt", ".prototxt", ".txt")


def _is_text(path: str | os.PathLike) -> bool:
    return os.fspath(path).endswith(TEXT_SUFFIXES)


def _check_required(message: Message, what: str) -> None:
    # Python's parsers do not enforce proto2 `required` fields; C++ readers (Caffe2, netron) do.
    if not message.IsInitialized():
        raise ProtobufError(f"{what}: required fields missing: {message.FindInitializationErrors()}")


def parse_message(data: bytes, message_type: type[M] = caffe2_pb2.NetDef, where: str = "<bytes>") -> M:
    """Binary protobuf bytes -> message; any decode failure is a ProtobufError naming ``where``."""
    message = message_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as e:
        raise ProtobufError(f"{where}: not a valid binary caffe2.{message_type.__name__} ({len(data)} bytes): {e}") from e
    _check_required(message, f"{where}: not a valid binary caffe2.{message_type.__name__} ({len(data)} bytes)")
    return message


def parse_text(text: str, message_type: type[M] = caffe2_pb2.NetDef, where: str = "<text>") -> M:
    """Protobuf text format -> message."""
    try:
        message = text_format.Parse(text, message_type())
    except (text_format.ParseError, RecursionError, ValueError) as e:
        raise ProtobufError(f"{where}: not a valid text caffe2.{message_type.__name__}: {e}") from e
    _check_required(message, f"{where}: not a valid text caffe2.{message_type.__name__}")
    return message


def load_net(path: str | os.PathLike, message_type: type[M] = caffe2_pb2.NetDef) -> M:
    """Read a NetDef (or ``message_type``) from a binary file, or text for .pbtxt/.prototxt/.txt."""
    with open(path, "rb") as f:
        data = f.read()
    if _is_text(path):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtobufError(f"{os.fspath(path)}: not UTF-8 text, expected protobuf text format: {e}") from e
        return parse_text(text, message_type, os.fspath(path))
    return parse_message(data, message_type, os.fspath(path))


def net_to_text(message: Message) -> str:
    """Protobuf text format, the same as ``str(message)`` (what detectron2 writes to model.pbtxt)."""
    return text_format.MessageToString(message)


def save_net(message: Message, path: str | os.PathLike, as_text: bool | None = None) -> None:
    """Write ``message`` atomically: text when ``as_text`` (default: by the file suffix), else binary."""
    text = _is_text(path) if as_text is None else as_text
    payload = net_to_text(message).encode("utf-8") if text else message.SerializeToString()
    with atomic_write(path) as f:
        f.write(payload)
