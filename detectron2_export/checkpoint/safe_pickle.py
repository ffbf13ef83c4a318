"""Unpickle model-zoo ``.pkl`` checkpoints without running code from the file.

A pickle can call any importable function while it is read (``os.system`` included). Model-zoo
files only need numpy's array reconstruction, a few container types, and ``_codecs.encode`` (which
protocol-2 pickles use for raw bytes), so those are the only globals this unpickler resolves;
anything else is refused before it is called.
"""

from __future__ import annotations

import collections
import pickle
from typing import Any

import numpy as np

from ..errors import CheckpointError

__all__ = ["safe_load_pickle", "ALLOWED_GLOBALS"]


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: latin-1 only."""
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"_codecs.encode: encoding={encoding!r}, expected 'latin1'")
    return text.encode("latin1", errors)


def _numpy_globals() -> dict[tuple[str, str], Any]:
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own _reconstruct, whatever its module
    scalar = np.float32(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # protocol >= 5 pickles arrays through _frombuffer
    found: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):  # numpy 1.x and 2.x files
        found[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        found[(f"{core}.multiarray", "scalar")] = scalar
        found[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return found


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **_numpy_globals(),
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    ("builtins", "bytearray"): bytearray,
    ("__builtin__", "set"): set,  # Python 2 pickles
    ("_codecs", "encode"): _latin1_encode,
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle asked for a global outside ALLOWED_GLOBALS."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(
                f"it asks for the global {module}.{name}, and only numpy arrays and plain containers are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise _ForbiddenGlobal(f"it uses persistent id {pid!r} (a torch.save file, not a plain pickle)")


def safe_load_pickle(path: str) -> Any:
    """Unpickle ``path`` allowing only numpy arrays and plain Python data (latin-1 for py2 files)."""
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, encoding="latin1").load()
    except _ForbiddenGlobal as e:
        raise CheckpointError(
            f"{path}: refusing to unpickle: {e}; a checkpoint that needs other code to load is unsafe"
        ) from e
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: corrupt pickle ({e})") from e
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as e:
        raise CheckpointError(f"{path}: corrupt pickle ({type(e).__name__}: {e})") from e
