import os
import sys

# Make `tools/` importable for CLI tests, and keep tests single-threaded per worker (2 cores, 2 workers).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402

torch.set_num_threads(1)
