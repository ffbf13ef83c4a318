"""The restricted unpickler: numpy arrays and plain data only."""

import os
import pickle

import numpy as np
import pytest

from detectron2_export.checkpoint.safe_pickle import safe_load_pickle
from detectron2_export.errors import CheckpointError


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_and_containers_round_trip(tmp_path, protocol):
    from collections import OrderedDict

    obj = {
        "arrays": OrderedDict(a=np.arange(6, dtype=np.float32).reshape(2, 3), b=np.array(3, dtype=np.int64)),
        "scalar": np.float32(1.5),
        "plain": [1, 2.0, "s", None, (True, b"raw"), {4, 5}],
    }
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    loaded = safe_load_pickle(str(path))
    np.testing.assert_array_equal(loaded["arrays"]["a"], obj["arrays"]["a"])
    assert loaded["arrays"]["b"].shape == () and loaded["arrays"]["b"] == 3
    assert loaded["scalar"] == np.float32(1.5) and loaded["plain"] == obj["plain"]


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


@pytest.mark.parametrize("fn,args", [
    (os.system, ("touch {marker}",)),
    (eval, ("open({marker!r}, 'w')",)),
    (__import__, ("os",)),
])
def test_forbidden_globals_are_never_called(tmp_path, fn, args):
    marker = str(tmp_path / "pwned")
    args = tuple(a.format(marker=marker) if isinstance(a, str) else a for a in args)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"model": _Reduce(fn, args)}, protocol=2))
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        safe_load_pickle(str(path))
    assert not os.path.exists(marker)


def test_codecs_encode_only_latin1(tmp_path):
    import _codecs

    path = tmp_path / "rot.pkl"
    path.write_bytes(pickle.dumps(_Reduce(_codecs.encode, ("abc", "rot13")), protocol=2))
    with pytest.raises(CheckpointError, match="corrupt pickle"):
        safe_load_pickle(str(path))


def _reconstruct():
    return np.ndarray.__reduce__(np.zeros(1))[0]


@pytest.mark.parametrize("fn,args,why", [
    (bytearray, (2 ** 31,), r"bytearray\(int\)"),  # issue 15: 55 bytes on disk, 2 GiB allocated before
    (bytearray, ([1, 2, 3],), r"bytearray\(list\)"),
    (np.ndarray, ((10 ** 5, 10 ** 5),), "numpy.ndarray"),  # 80 GB uninitialised
    (_reconstruct(), (np.ndarray, (10 ** 5, 10 ** 5), b"b"), r"shape \(100000, 100000\)"),
])
@pytest.mark.parametrize("protocol", [2, 3, 5])
def test_allocations_claimed_by_the_file_are_refused_before_they_happen(tmp_path, fn, args, why, protocol):
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps({"model": _Reduce(fn, args)}, protocol=protocol))
    assert path.stat().st_size < 200
    with pytest.raises(CheckpointError, match=f"refusing to unpickle: .*{why}"):
        safe_load_pickle(str(path))


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_real_bytearrays_and_object_free_arrays_still_load(tmp_path, protocol):
    obj = {"raw": bytearray(b"\x00\xffab"), "w": np.arange(4, dtype=np.float32)}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    loaded = safe_load_pickle(str(path))
    assert loaded["raw"] == obj["raw"] and isinstance(loaded["raw"], bytearray)
    np.testing.assert_array_equal(loaded["w"], obj["w"])
