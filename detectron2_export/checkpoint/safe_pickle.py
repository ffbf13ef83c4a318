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


def _bytearray(source: Any = b"", *args: Any) -> bytearray:
    """``bytearray`` as pickles rebuild one: from bytes or a latin-1 string, never from a size.

    ``bytearray(n)`` allocates n bytes, so a 55-byte pickle could claim gigabytes.
    """
    if not isinstance(source, (bytes, bytearray, str)):
        raise _ForbiddenGlobal(
            f"it calls bytearray({type(source).__name__}), and a checkpoint's bytearray is built from bytes, "
            "not from a size or an iterable"
        )
    return bytearray(source, *args)


class _NDArrayType:
    """Stands for ``numpy.ndarray`` in a pickle: accepted as ``_reconstruct``'s subtype, refused as a call.

    Calling ``ndarray(shape)`` allocates an uninitialised array of any claimed size; numpy's own pickles
    only name the type and send the data through ``__setstate__``, which checks its length.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        raise _ForbiddenGlobal("it calls numpy.ndarray(...) directly, which allocates an array of any claimed size")


_NDARRAY = _NDArrayType()


def _numpy_globals() -> dict[tuple[str, str], Any]:
    numpy_reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own _reconstruct, whatever its module
    scalar = np.float32(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # protocol >= 5 pickles arrays through _frombuffer

    def reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        """numpy's ``_reconstruct`` for plain ndarrays of the placeholder shape its pickles use (0,)."""
        if subtype is not _NDARRAY:
            raise _ForbiddenGlobal(f"it reconstructs an array of type {subtype!r}, expected numpy.ndarray")
        if not (isinstance(shape, tuple) and all(isinstance(d, int) and 0 <= d <= 1 for d in shape)):
            raise _ForbiddenGlobal(f"it reconstructs an array of shape {shape!r}, numpy pickles use (0,)")
        return numpy_reconstruct(np.ndarray, shape, dtype)

    found: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): np.dtype}
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
    ("builtins", "bytearray"): _bytearray,
    ("__builtin__", "set"): set,  # Python 2 pickles (and protocols 0-2 written by Python 3)
    ("__builtin__", "bytearray"): _bytearray,
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
