import os

import pytest

from detectron2_export.utils.file_io import atomic_write


def test_the_file_appears_complete_and_alone(tmp_path):
    path = tmp_path / "a.json"
    with atomic_write(path, "w") as f:
        f.write("{")
        assert not path.exists()  # nothing under the final name while writing
        f.write("}")
    assert path.read_text() == "{}"
    assert os.listdir(tmp_path) == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.pb"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path) as f:
            f.write(b"new, half written")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.pb"]
