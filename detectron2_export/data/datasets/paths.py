"""Where dataset files are looked for, and the error raised when one is missing."""

from __future__ import annotations

import os

from detectron2_export.errors import DatasetError

__all__ = ["MissingDatasetFileError", "require_path", "datasets_root", "bundled_datasets_dir"]


class MissingDatasetFileError(DatasetError, FileNotFoundError):
    """A dataset's json file, image directory or label directory does not exist."""

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


def require_path(path: str | os.PathLike, where: str, field: str, hint: str = "") -> None:
    """Raise MissingDatasetFileError naming ``path`` (and its absolute form) if it does not exist."""
    if os.path.exists(path):
        return
    absolute = os.path.abspath(path)
    shown = repr(os.fspath(path)) if absolute == os.fspath(path) else f"{os.fspath(path)!r} ({absolute})"
    raise MissingDatasetFileError(f"{where}: {field}={shown} does not exist" + (f". {hint}" if hint else ""))


def datasets_root() -> str:
    """``$DETECTRON2_DATASETS`` (default "datasets", relative to the working directory), as upstream."""
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def bundled_datasets_dir() -> str:
    """The repository's datasets/ directory (next to the detectron2_export package)."""
    package_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(os.path.dirname(package_dir), "datasets")
