#!/bin/sh
# Regenerates caffe2_pb2.py from caffe2.proto.
# Used: grpcio-tools 1.85.1 (bundled libprotoc 35.1, Python gencode 7.35.1, which the pinned
# protobuf 7.36.2 runtime accepts). Install with: pip install grpcio-tools==1.85.1
# Any protoc whose Python gencode major version matches the protobuf runtime works too:
#   protoc -I. --python_out=. caffe2.proto
set -eu
cd "$(dirname "$0")"
python3 -m grpc_tools.protoc -I. --python_out=. caffe2.proto
