"""Caffe2's protobuf schema: ``caffe2.proto`` and its generated ``caffe2_pb2`` module (see generate.sh)."""

from . import caffe2_pb2

__all__ = ["caffe2_pb2"]
