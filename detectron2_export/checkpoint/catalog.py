"""``detectron2://`` names and URLs -> a local file, downloaded once into a cache directory.

``detectron2://X`` is upstream's model zoo, ``https://dl.fbaipublicfiles.com/detectron2/X``. The
cache layout is iopath's (``<cache>/<url path>``), so files already fetched by detectron2 are found:
``<cache>`` is ``$DETECTRON2_EXPORT_CACHE``, else ``$FVCORE_CACHE``, else ``~/.torch/iopath_cache``.
Without network the error says exactly where to put the file by hand.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request

from ..errors import CheckpointError
from ..utils.file_io import atomic_write

__all__ = ["D2_PREFIX", "S3_DETECTRON2_PREFIX", "resolve_url", "get_cache_dir", "cached_path", "get_local_path"]

logger = logging.getLogger(__name__)

D2_PREFIX = "detectron2://"
S3_DETECTRON2_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"
_URL_SCHEMES = ("http://", "https://")


def resolve_url(path: str) -> str | None:
    """The download URL for a ``detectron2://`` name or an http(s) URL; None for a local path."""
    if path.startswith(D2_PREFIX):
        return S3_DETECTRON2_PREFIX + path[len(D2_PREFIX):]
    if path.startswith(_URL_SCHEMES):
        return path
    return None


def get_cache_dir() -> str:
    """Where downloaded checkpoints live (see module docstring)."""
    cache = os.getenv("DETECTRON2_EXPORT_CACHE") or os.getenv("FVCORE_CACHE") or "~/.torch/iopath_cache"
    return os.path.expanduser(cache)


def cached_path(url: str) -> str:
    """The local file for ``url``: ``<cache>/<url path>`` (query string dropped), as iopath does."""
    url_path = urllib.parse.urlparse(url).path.lstrip("/")
    return os.path.join(get_cache_dir(), *url_path.split("/"))


def get_local_path(path: str, timeout: float = 60.0) -> str:
    """``path`` itself if local; else the cached download of its URL, fetching it if needed."""
    url = resolve_url(path)
    if url is None:
        return path
    local = cached_path(url)
    if os.path.isfile(local):
        logger.info("URL %s cached in %s", url, local)
        return local
    try:
        _download(url, local, timeout)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path}: cannot download {url} ({e}). Without network access, fetch that URL on another "
            f"machine and put the file at {local} (the cache directory is $DETECTRON2_EXPORT_CACHE, "
            f"now {get_cache_dir()})"
        ) from e
    logger.info("URL %s cached in %s", url, local)
    return local


def _download(url: str, local: str, timeout: float) -> None:
    """Fetch ``url`` to ``local`` atomically (a partial download never appears under that name)."""
    os.makedirs(os.path.dirname(local), exist_ok=True)
    logger.info("Downloading %s ...", url)
    with atomic_write(local) as out, urllib.request.urlopen(url, timeout=timeout) as response:
        shutil.copyfileobj(response, out, length=1 << 20)
