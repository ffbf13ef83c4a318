"""``detectron2://`` names and URLs -> a local file, through ``utils.file_io.PathManager``.

``detectron2://X`` is upstream's model zoo, ``https://dl.fbaipublicfiles.com/detectron2/X``;
downloads are cached once (layout and cache directory: :mod:`detectron2_export.utils.file_io`).
Any scheme with a handler registered on ``PathManager`` works. Without network the error says
exactly where to put the file by hand.
"""

from __future__ import annotations

from ..errors import CheckpointError
from ..utils.file_io import Detectron2Handler, PathManager, cached_path, get_cache_dir

__all__ = ["D2_PREFIX", "S3_DETECTRON2_PREFIX", "resolve_url", "get_cache_dir", "cached_path", "get_local_path"]

D2_PREFIX = Detectron2Handler.PREFIX
S3_DETECTRON2_PREFIX = Detectron2Handler.S3_DETECTRON2_PREFIX
_URL_SCHEMES = ("http://", "https://")


def resolve_url(path: str) -> str | None:
    """The download URL for a ``detectron2://`` name or an http(s) URL; None for a local path."""
    if path.startswith(D2_PREFIX):
        return S3_DETECTRON2_PREFIX + path[len(D2_PREFIX):]
    if path.startswith(_URL_SCHEMES):
        return path
    return None


def get_local_path(path: str) -> str:
    """``PathManager.get_local_path(path)``: the path itself if local, else the cached download."""
    try:
        return PathManager.get_local_path(path)
    except (OSError, ValueError) as e:  # URLError is an OSError; a malformed URL a ValueError
        url = resolve_url(path)
        if url is None:  # a custom handler's own failure
            raise CheckpointError(f"{path}: cannot get a local copy ({type(e).__name__}: {e})") from e
        raise CheckpointError(
            f"{path}: cannot download {url} ({e}). Without network access, fetch that URL on another "
            f"machine and put the file at {cached_path(url)} (the cache directory is $DETECTRON2_EXPORT_CACHE, "
            f"now {get_cache_dir()})"
        ) from e
