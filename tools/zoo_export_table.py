#!/usr/bin/env python3
"""Print the README's table of which model-zoo configs each exporter accepts; see ``--help``."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detectron2_export.cli.zoo_export_table import cli  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(cli())
