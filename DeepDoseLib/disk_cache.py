"""The disk cache of computed kernels and calibrations: one file per computation, keyed by its parameters.

Folder: ``$DEEPDOSE_CACHE_DIR`` or ``~/.cache/deepdose``, sub-folder ``vsv``. Each file stores the parameters
that made it, compared on reading (a hash collision or an older format is recomputed, never used). Writes are
atomic and safe when several processes compute the same entry at once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable

__all__ = ["cache_dir", "cache_path", "cached_json", "same_params", "write_cache_file"]

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Folder of cached kernels (``$DEEPDOSE_CACHE_DIR`` or ``~/.cache/deepdose``)/vsv."""
    root = os.environ.get("DEEPDOSE_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "deepdose")
    return Path(root) / "vsv"


def cache_path(prefix: str, params: dict, suffix: str) -> Path:
    """Cache file of one computation: ``<cache_dir>/<prefix>_<first 16 hex of the SHA-256 of its parameters><suffix>``
    (the parameters are stored in the file too and compared on reading)."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"{prefix}_{key}{suffix}"


def same_params(stored_json: str, params: dict) -> bool:
    """Whether the parameters stored (as JSON) in a cache file are ``params`` — compared after the same
    JSON round trip, since JSON turns tuples into lists."""
    return json.loads(stored_json) == json.loads(json.dumps(params))


def cached_json(prefix: str, params: dict, use_cache: bool, compute: Callable[[], dict]) -> dict:
    """A JSON result of ``compute`` kept in the kernel cache under ``params`` (recomputed when they differ)."""
    path = cache_path(prefix, params, ".json")
    if use_cache and path.is_file():
        try:
            saved = json.loads(path.read_text())
            if same_params(json.dumps(saved.get("params")), params):
                return saved
        except (OSError, ValueError, AttributeError) as exc:  # a damaged entry: compute it again
            logger.warning("cache file %s unreadable (%s); recomputing it", path, exc)
    result = dict(compute(), params=params)
    if use_cache:
        write_cache_file(path, lambda f: f.write(json.dumps(result).encode()))
    return result


def write_cache_file(path: Path, write: Callable) -> None:
    """Write a cache file safely when several processes compute the same entry at once: each writes its own
    uniquely named temporary file (``tempfile.mkstemp`` in the cache folder) and renames it onto ``path``
    (atomic). Entries with the same parameters hold the same result, so whichever rename comes last wins and
    a reader always sees one complete file."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
