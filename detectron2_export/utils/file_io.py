"""File access as detectron2's ``detectron2.utils.file_io``: iopath's ``PathManager``, atomic writes.

``PathManager`` resolves ``detectron2://X`` (upstream's model zoo,
``https://dl.fbaipublicfiles.com/detectron2/X``), http(s) URLs (downloaded once into a cache
directory) and local paths; users register their own ``PathHandler`` on it for other schemes, and
the checkpointer loads through it. The cache layout is iopath's (``<cache>/<url path>``), so files
already fetched by detectron2 are found: ``<cache>`` is ``$DETECTRON2_EXPORT_CACHE``, else
``$FVCORE_CACHE``, else ``~/.torch/iopath_cache``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import IO, Any

from iopath.common.file_io import HTTPURLHandler as _IopathHTTPURLHandler
from iopath.common.file_io import OneDrivePathHandler, PathHandler
from iopath.common.file_io import PathManager as PathManagerBase

__all__ = ["PathManager", "PathHandler", "Detectron2Handler", "HTTPURLHandler", "atomic_write",
           "staged_directory", "get_cache_dir", "cached_path"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; move it onto ``path`` when the block ends.

    If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


_PARTIAL = ".partial-"


def _existing_ancestor(path: str) -> str:
    while not os.path.isdir(path):
        path = os.path.dirname(path)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _remove_stale_partials(parent: str, base: str) -> None:
    """Remove ``.<base>.partial-<pid>-*`` directories left by processes that no longer run.

    SIGKILL (or a power cut) gives the staging process no chance to clean up; the next run does.
    A directory whose process is alive is someone's export in progress and is left alone.
    """
    prefix = f".{base}{_PARTIAL}"
    for name in os.listdir(parent):
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        full = os.path.join(parent, name)
        if pid.isdigit() and os.path.isdir(full) and not _pid_alive(int(pid)):
            logger.info("Removing %s, left by an interrupted run (process %s)", full, pid)
            shutil.rmtree(full, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(path: str | os.PathLike) -> Iterator[str]:
    """Yield an empty staging directory; when the block succeeds its entries are moved into ``path``.

    The staging directory, ``.<name>.partial-<pid>-<random>``, lives in the nearest existing ancestor
    of ``path`` (same filesystem: the moves are renames) and is always removed, so a failed block
    leaves nothing behind; ones left by killed processes are removed by the next call for ``path``.
    Entries of ``path`` that the block did not write are kept; those it wrote are replaced.
    """
    path = os.path.abspath(os.fspath(path))
    parent, base = _existing_ancestor(path), os.path.basename(path)
    _remove_stale_partials(parent, base)
    tmp = tempfile.mkdtemp(prefix=f".{base}{_PARTIAL}{os.getpid()}-", dir=parent)
    try:
        yield tmp
        os.makedirs(path, exist_ok=True)
        for name in sorted(os.listdir(tmp)):
            dst = os.path.join(path, name)
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            os.replace(os.path.join(tmp, name), dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def get_cache_dir(cache_dir: str | None = None) -> str:
    """Where downloaded files live (see module docstring); ``cache_dir`` wins when given."""
    cache = cache_dir or os.getenv("DETECTRON2_EXPORT_CACHE") or os.getenv("FVCORE_CACHE") or "~/.torch/iopath_cache"
    return os.path.expanduser(cache)


def cached_path(url: str, cache_dir: str | None = None) -> str:
    """The local file for ``url``: ``<cache>/<url path>`` (query string dropped), as iopath does."""
    url_path = urllib.parse.urlparse(url).path.lstrip("/")
    return os.path.join(get_cache_dir(cache_dir), *url_path.split("/"))


class HTTPURLHandler(_IopathHTTPURLHandler):
    """iopath's URL handler with this project's cache directory and atomic downloads.

    A partial download never appears under the cached name, so an interrupted fetch is retried
    next time instead of being read as a corrupt checkpoint.
    """

    def __init__(self, timeout: float = 60.0) -> None:
        super().__init__()
        self.timeout = timeout

    def _get_local_path(self, path: str, force: bool = False, cache_dir: str | None = None,
                        **kwargs: Any) -> str:
        self._check_kwargs(kwargs)
        local = cached_path(path, cache_dir)
        if force or not os.path.isfile(local):
            os.makedirs(os.path.dirname(local), exist_ok=True)
            logger.info("Downloading %s ...", path)
            with atomic_write(local) as out, urllib.request.urlopen(path, timeout=self.timeout) as response:
                shutil.copyfileobj(response, out, length=1 << 20)
        logger.info("URL %s cached in %s", path, local)
        return local


class Detectron2Handler(PathHandler):
    """``detectron2://X`` -> upstream's model-zoo URL, fetched through the URL handler."""

    PREFIX = "detectron2://"
    S3_DETECTRON2_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"

    def _get_supported_prefixes(self) -> list[str]:
        return [self.PREFIX]

    def _get_local_path(self, path: str, **kwargs: Any) -> str:
        return PathManager.get_local_path(self.S3_DETECTRON2_PREFIX + path[len(self.PREFIX):], **kwargs)

    def _open(self, path: str, mode: str = "r", **kwargs: Any) -> IO:
        return PathManager.open(self.S3_DETECTRON2_PREFIX + path[len(self.PREFIX):], mode, **kwargs)


PathManager = PathManagerBase()
PathManager.register_handler(HTTPURLHandler())
PathManager.register_handler(OneDrivePathHandler())
PathManager.register_handler(Detectron2Handler())
