#!/usr/bin/env python3
"""Convert a detectron2 model to Caffe2 protobuf via ONNX; see ``--help``."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detectron2_export.cli.caffe2_converter import cli  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(cli())
