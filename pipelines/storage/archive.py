"""Unpack model archives (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``; also ``.tar.bz2``/``.tbz2`` and
``.tar.xz``/``.txz``) without letting them escape.

Every member is checked *before* anything is written: an absolute name, a ``..`` step, a
link that points outside the destination, or a device/fifo member refuses the whole archive
with a :class:`StorageError` that names the member. Tar extraction additionally runs under
Python's ``"data"`` filter as a second line of defence (it re-checks links with realpath).

Example::

    if is_archive(path.name):
        unpack(path, dest, uri="s3://models/iris.tar.gz")
"""

from __future__ import annotations

import os
import posixpath
import re
import tarfile
import zipfile
from pathlib import Path

from pipelines.errors import StorageError

__all__ = ["ARCHIVE_SUFFIXES", "is_archive", "unpack"]

ARCHIVE_SUFFIXES: tuple[str, ...] = (
    ".tar.gz",
    ".tgz",
    ".tar",
    ".zip",
    ".tar.bz2",
    ".tbz2",
    ".tar.xz",
    ".txz",
)
_DRIVE = re.compile(r"^[A-Za-z]:")


def is_archive(name: str) -> bool:
    """True when ``name`` ends with one of :data:`ARCHIVE_SUFFIXES` (case-insensitive)."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def unpack(archive: Path, dest: Path, uri: str) -> None:
    """Extract ``archive`` into the existing folder ``dest``; ``uri`` is only used in messages.

    Raises StorageError for an unreadable archive or for any member that would land outside
    ``dest``. On error ``dest`` may hold partial output: callers unpack into a staging folder
    that they throw away (see ``pipelines.storage.cache.cached``).
    """
    try:
        if archive.name.lower().endswith(".zip"):
            _unpack_zip(archive, dest, uri)
        else:
            _unpack_tar(archive, dest, uri)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        filter_error = getattr(tarfile, "FilterError", ())
        if isinstance(exc, filter_error) and getattr(exc, "tarinfo", None) is not None:
            member = exc.tarinfo.name
            raise StorageError(f"{uri}: archive member {member!r} refused: {exc}") from exc
        raise StorageError(f"{uri}: cannot unpack {archive.name}: {exc}") from exc


def _escapes(name: str) -> bool:
    """Whether an archive-relative member name is absolute or climbs out with ``..``."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return True
    return ".." in re.split(r"[\\/]", name)


def _inside(base: str, target: str) -> bool:
    """Lexical containment of a normalized posix ``target`` in ``base`` (both relative)."""
    norm = posixpath.normpath(posixpath.join(base, target))
    return not (norm == ".." or norm.startswith("../") or posixpath.isabs(norm))


def _check_tar_member(member: tarfile.TarInfo, uri: str) -> None:
    def refuse(reason: str) -> StorageError:
        return StorageError(f"{uri}: archive member {member.name!r} {reason}; refusing to unpack")

    if _escapes(member.name):
        raise refuse("would be written outside the target folder")
    if member.issym():
        parent = posixpath.dirname(member.name)
        if posixpath.isabs(member.linkname) or not _inside(parent, member.linkname):
            raise refuse(f"is a symlink to {member.linkname!r}, outside the target folder")
    elif member.islnk():
        if posixpath.isabs(member.linkname) or not _inside("", member.linkname):
            raise refuse(f"is a hard link to {member.linkname!r}, outside the target folder")
    elif member.ischr() or member.isblk() or member.isfifo():
        raise refuse("is a device or fifo")


def _unpack_tar(archive: Path, dest: Path, uri: str) -> None:
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            _check_tar_member(member, uri)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python without PEP 706 backport
            tar.extractall(dest, members=members)


def _unpack_zip(archive: Path, dest: Path, uri: str) -> None:
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            if _escapes(name):
                raise StorageError(
                    f"{uri}: archive member {name!r} would be written outside the target folder; "
                    "refusing to unpack"
                )
        zf.extractall(os.fspath(dest))
