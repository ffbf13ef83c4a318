import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from detectron2_export.utils.file_io import atomic_write, staged_directory


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


def _listing(directory):
    return sorted(p.name for p in directory.iterdir())


def test_staged_directory_moves_entries_in_and_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.txt").write_text("old")
    (out / "model.pb").write_text("old")
    with staged_directory(out / ".." / "out") as tmp:
        assert os.path.basename(tmp).startswith(f".out.partial-{os.getpid()}-")
        (Path(tmp) / "model.pb").write_text("new")
        (Path(tmp) / "sub").mkdir()
    assert _listing(out) == ["kept.txt", "model.pb", "sub"] and (out / "model.pb").read_text() == "new"
    with pytest.raises(RuntimeError, match="boom"):
        with staged_directory(tmp_path / "new" / "deeper") as tmp:
            (Path(tmp) / "model.pb").write_text("half")
            raise RuntimeError("boom")
    assert _listing(tmp_path) == ["out"]  # neither the output nor a staging directory


def test_staged_directory_removes_what_a_killed_run_left(tmp_path):
    """Issue 15: SIGKILL during an export left hidden .NAME.partial-* directories that no run removed."""
    script = (
        "import os, sys, time\n"
        "from detectron2_export.utils.file_io import staged_directory\n"
        f"with staged_directory({str(tmp_path / 'out')!r}) as tmp:\n"
        "    open(os.path.join(tmp, 'model.pb'), 'w').write('x')\n"
        "    print(tmp, flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    left = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert os.path.isdir(left) and os.path.basename(left).startswith(".out.partial-")
    alive = tmp_path / f".out.partial-{os.getpid()}-inprogress"  # this process: alive, must stay
    alive.mkdir()
    other = tmp_path / f".other.partial-{proc.pid}-x"  # a dead process, but another output's: left alone
    other.mkdir()
    with staged_directory(tmp_path / "out") as tmp:
        (Path(tmp) / "model.pb").write_text("y")
    assert not os.path.exists(left)
    assert _listing(tmp_path) == sorted([other.name, alive.name, "out"])
