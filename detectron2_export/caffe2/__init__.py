"""The Caffe2 format and runtime: ``caffe2.proto`` messages, workspaces, the net executor, the
operator registry and ``ProtobufModel``, all on torch kernels (Caffe2 itself is not needed)."""

from .arguments import decode_argument, get_arg, make_argument
from .executor import Net
from .proto import caffe2_pb2
from .protobuf_model import ProtobufModel
from .registry import Arg, get_op, register_op, registered_ops
from .serialization import load_net, net_to_text, parse_message, parse_text, save_net
from .tensor_proto import caffe2_data_type, proto_to_tensor, tensor_to_proto, torch_dtype
from .workspace import ScopedWS, Workspace

__all__ = [
    "Arg",
    "Net",
    "ProtobufModel",
    "ScopedWS",
    "Workspace",
    "caffe2_data_type",
    "caffe2_pb2",
    "decode_argument",
    "get_arg",
    "get_op",
    "load_net",
    "make_argument",
    "net_to_text",
    "parse_message",
    "parse_text",
    "proto_to_tensor",
    "register_op",
    "registered_ops",
    "save_net",
    "tensor_to_proto",
    "torch_dtype",
]
