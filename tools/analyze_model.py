#!/usr/bin/env python3
"""Print the flops, activations, parameters or structure of a detectron2 model; see ``--help``."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detectron2_export.cli.analyze_model import cli  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(cli())
