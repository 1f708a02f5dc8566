"""The ``http(s)://`` fetcher: one file over the stdlib's ``urllib``; errors are StorageErrors naming the URI.

Example::

    fetch_http("https://example.com/models/iris.tar.gz", Path("/tmp/staging/raw"))
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from pipelines.errors import StorageError

__all__ = ["fetch_http"]

logger = logging.getLogger(__name__)

_HTTP_TIMEOUT_S = 300.0


def fetch_http(uri: str, dest: Path) -> None:
    """Download one file from an ``http(s)://`` URL into ``dest``, named after the URL's last
    path segment (``model`` when there is none)."""
    path = urllib.parse.urlsplit(uri).path
    name = posixpath.basename(urllib.parse.unquote(path))
    if name in ("", ".", "..") or "/" in name or "\\" in name:
        name = "model"
    logger.info("downloading %s", uri)
    try:
        with urllib.request.urlopen(uri, timeout=_HTTP_TIMEOUT_S) as response, open(dest / name, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except urllib.error.HTTPError as exc:
        raise StorageError(f"{uri}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise StorageError(f"{uri}: cannot connect: {exc.reason}") from exc
    except (OSError, ValueError) as exc:
        raise StorageError(f"{uri}: download failed: {exc}") from exc
