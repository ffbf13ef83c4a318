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
