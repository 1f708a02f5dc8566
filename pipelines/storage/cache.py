"""The node-local model cache: one folder per URI, filled once, safe across threads and processes.

Layout under ``cache_dir`` for a URI whose identity hashes to ``KEY`` (sha256 hex)::

    KEY/            the published model folder (what ``download`` returns)
    KEY.done        marker, written last; its content is the identity (handy for ``cat``)
    KEY.lock        flock(2) lock file; never deleted (deleting lock files races)
    .tmp-KEY-xxxx/  staging folder of an in-flight (or crashed) download

Protocol: a reader that finds ``KEY.done`` returns at once. Otherwise it takes an exclusive
``flock`` on ``KEY.lock`` (flock locks belong to the open file description, so two threads of
one process exclude each other as two processes do), re-checks the marker, clears what a
crashed predecessor left, fills a fresh staging folder, ``os.rename``\\ s it to ``KEY`` (atomic
on one filesystem, and staging lives in ``cache_dir``) and finally writes ``KEY.done``. Waiters
then see the marker and reuse the folder. A failed fill leaves nothing behind.

Example::

    path = cached(Path("/tmp/cache"), "s3://bucket/iris", lambda staging: fill_into(staging))
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["Fill", "cache_key", "cached"]

logger = logging.getLogger(__name__)

Fill = Callable[[Path], Path]
"""Given an empty staging folder, write the model under it and return the folder to publish
(the staging folder itself or one inside it)."""


def cache_key(identity: str) -> str:
    """The folder name for a normalized URI identity: its sha256 in hex."""
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def cached(cache_dir: Path, identity: str, fill: Fill) -> Path:
    """Return ``cache_dir/<cache_key(identity)>``, calling ``fill`` only if no complete entry exists.

    Exactly one caller per node runs ``fill`` for a given identity at a time; the others wait on
    the lock and then reuse its result. Exceptions from ``fill`` propagate after the staging
    folder is removed; the next caller tries again.
    """
    key = cache_key(identity)
    final = cache_dir / key
    marker = cache_dir / f"{key}.done"
    if marker.is_file() and final.is_dir():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(cache_dir / f"{key}.lock", identity):
        if marker.is_file() and final.is_dir():
            return final
        _clear_leftovers(cache_dir, key)
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=cache_dir))
        try:
            ready = fill(staging)
            os.rename(ready, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _write_marker(marker, identity)
    return final


@contextlib.contextmanager
def _exclusive(lock_path: Path, identity: str) -> Iterator[None]:
    """Hold an exclusive flock on ``lock_path``; the kernel releases it if the process dies."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another download of %s", identity)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _clear_leftovers(cache_dir: Path, key: str) -> None:
    """Remove staging folders of crashed downloads and a folder published without its marker.

    Safe only under the key's lock: nobody else may be filling this key right now.
    """
    for leftover in cache_dir.glob(f".tmp-{key}-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    final = cache_dir / key
    if final.exists():
        shutil.rmtree(final)


def _write_marker(marker: Path, identity: str) -> None:
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(identity + "\n", encoding="utf-8")
    os.replace(tmp, marker)
