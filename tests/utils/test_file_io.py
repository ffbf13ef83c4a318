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


def test_path_manager_reads_detectron2_names_through_the_url_cache(tmp_path, monkeypatch):
    """detectron2://X is fetched once from upstream's model-zoo URL into <cache>/detectron2/X."""
    import io
    import urllib.request

    from detectron2_export.utils.file_io import PathManager

    monkeypatch.setenv("DETECTRON2_EXPORT_CACHE", str(tmp_path))
    fetched = []

    def serve(url, timeout=None):
        fetched.append(url)
        return io.BytesIO(b"zoo file")

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    with PathManager.open("detectron2://Misc/a/model.pkl", "rb") as f:
        assert f.read() == b"zoo file"
    local = PathManager.get_local_path("detectron2://Misc/a/model.pkl")
    assert local == str(tmp_path / "detectron2" / "Misc" / "a" / "model.pkl")
    assert fetched == ["https://dl.fbaipublicfiles.com/detectron2/Misc/a/model.pkl"]  # the second use is cached
