"""The ``http(s)://`` fetcher: one file over the stdlib's ``urllib``; errors are StorageErrors naming the URI.

The file is named after ``Content-Disposition``'s filename when the server sends one, else the
URL's last path segment, else an archive name found in the query (``...?file=model.tar.gz``,
as KServe guesses), else ``model``. An archive name (``.tar.gz``, ``.tgz``, ``.zip``, …) makes the
caller unpack it; any other file is kept as it is. Extra request headers per host come from
KServe's ``<host>-headers`` environment variables (a JSON object, e.g.
``models.example.com-headers='{"Authorization": "Bearer …"}'``); see ``StorageSettings``.

Example::

    fetch_http("https://example.com/models/iris.tar.gz", Path("/tmp/staging/raw"))
"""

from __future__ import annotations

import email.message
import http.client
import logging
import posixpath
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from pipelines.errors import StorageError
from pipelines.storage.archive import is_archive
from pipelines.storage.progress import track

__all__ = ["fetch_http", "file_name"]

logger = logging.getLogger(__name__)

_HTTP_TIMEOUT_S = 300.0
_CHUNK = 1 << 18  # 256 KiB reads: a progress line can follow a slow transfer
_USER_AGENT = "isvc-storage"


def _safe(name: str) -> str | None:
    name = posixpath.basename(name.replace("\\", "/")).strip()
    return None if name in ("", ".", "..") else name


def file_name(uri: str, content_disposition: str | None = None) -> str:
    """The local file name for a download of ``uri``; see the module docstring.

    >>> file_name("https://h/models/iris.tgz?sig=abc")
    'iris.tgz'
    >>> file_name("https://h/download?file=models/iris.zip")
    'iris.zip'
    >>> file_name("https://h/get", 'attachment; filename="churn.tar.gz"')
    'churn.tar.gz'
    """
    if content_disposition:
        msg = email.message.Message()
        msg["content-disposition"] = content_disposition
        given = msg.get_filename()
        if given and (name := _safe(given)):
            return name
    parts = urllib.parse.urlsplit(uri)
    from_path = _safe(urllib.parse.unquote(parts.path))
    if from_path and is_archive(from_path):
        return from_path
    for _, value in urllib.parse.parse_qsl(parts.query):
        if is_archive(value) and (name := _safe(value)):
            return name
    return from_path or "model"


def fetch_http(uri: str, dest: Path, headers: Mapping[str, str] | None = None) -> None:
    """Download one file from an ``http(s)://`` URL into ``dest``, logging progress as it goes."""
    request = urllib.request.Request(uri, headers={"User-Agent": _USER_AGENT, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT_S) as response:
            name = file_name(uri, response.headers.get("Content-Disposition"))
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with track(uri, total=total) as progress, open(dest / name, "wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    progress.add(len(chunk))
                if total is not None and progress.bytes != total:
                    raise StorageError(f"{uri}: connection closed after {progress.bytes} of {total} bytes")
    except urllib.error.HTTPError as exc:
        raise StorageError(f"{uri}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise StorageError(f"{uri}: cannot connect: {exc.reason}") from exc
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise StorageError(f"{uri}: download failed: {exc}") from exc
