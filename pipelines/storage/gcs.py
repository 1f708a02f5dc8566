"""The ``gs://`` fetcher (google-cloud-storage, imported lazily), as KServe's storage initializer does it.

Credentials: with ``STORAGE_EMULATOR_HOST`` set (fake-gcs-server, gcp-storage-emulator), requests
go there, anonymously. Otherwise Google's default credentials (``GOOGLE_APPLICATION_CREDENTIALS``,
``gcloud auth application-default login``, the metadata server); when there are none, an
anonymous client reads public buckets, as KServe's does.

Example::

    fetch_gcs("gs://models/iris", Path("/tmp/staging/raw"), StorageSettings(...))
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pipelines.errors import StorageError
from pipelines.storage.progress import Download, track

if TYPE_CHECKING:
    from pipelines.storage.resolve import StorageSettings

__all__ = ["fetch_gcs", "gcs_client", "split_gs_uri"]

logger = logging.getLogger(__name__)

_GCS_PARALLEL_OBJECTS = 8
_EMULATOR_PROJECT = "isvc"
RETRY_TIMEOUT_S = 120.0
"""How long one listing or object download retries transient errors (refused connections, 5xx)."""


def split_gs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/some/prefix/`` → ``("bucket", "some/prefix")``; the prefix may be empty."""
    bucket, _, prefix = uri[len("gs://") :].partition("/")
    if not bucket:
        raise StorageError(f"{uri}: no bucket name; expected gs://bucket/prefix")
    return bucket, prefix.strip("/")


def emulator_endpoint(host: str) -> str:
    """``STORAGE_EMULATOR_HOST`` as a URL: ``localhost:4443`` → ``http://localhost:4443``."""
    host = host.strip().rstrip("/")
    return host if "://" in host else f"http://{host}"


def gcs_client(settings: StorageSettings) -> Any:
    """A ``google.cloud.storage.Client`` for ``settings``: the emulator's, authenticated, or anonymous."""
    try:
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import storage
    except ImportError as exc:  # pragma: no cover - google-cloud-storage is a declared dependency
        raise StorageError(
            "gs:// storage needs google-cloud-storage: pip install google-cloud-storage"
        ) from exc
    if settings.gcs_emulator_host:
        return storage.Client(
            project=settings.gcs_project or _EMULATOR_PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": emulator_endpoint(settings.gcs_emulator_host)},
        )
    if settings.gcs_anonymous:
        return storage.Client.create_anonymous_client()
    try:
        return storage.Client(project=settings.gcs_project)
    except (DefaultCredentialsError, OSError) as exc:
        logger.info("no Google credentials (%s); reading gs:// anonymously (public buckets only)", exc)
        return storage.Client.create_anonymous_client()


def fetch_gcs(uri: str, dest: Path, settings: StorageSettings) -> None:
    """Download every object under ``gs://bucket/prefix`` into ``dest``, keeping relative paths.

    When the prefix is itself an object, only that object is fetched, as ``dest/<basename>``.
    ``prefix`` matches whole path segments: ``gs://b/iris`` does not pick up ``iris2/...``;
    folder placeholder objects (names ending in ``/``) are skipped.
    """
    bucket_name, prefix = split_gs_uri(uri)
    client = gcs_client(settings)
    with _gcs_errors(uri, bucket_name):
        blobs = list(client.list_blobs(bucket_name, prefix=prefix or None, retry=_retry()))
    by_name = {b.name: b for b in blobs}
    if prefix and prefix in by_name:
        plan = [(by_name[prefix], posixpath.basename(prefix))]
    else:
        folder = f"{prefix}/" if prefix else ""
        plan = [
            (b, b.name[len(folder) :])
            for b in blobs
            if b.name.startswith(folder) and not b.name.endswith("/")
        ]
    if not plan:
        raise StorageError(f"{uri}: no objects found in bucket '{bucket_name}' under prefix '{prefix}'")
    for blob, rel in plan:
        if rel.startswith("/") or ".." in rel.split("/"):
            raise StorageError(f"{uri}: object name {blob.name!r} would be written outside the model folder")
    total = sum(int(b.size or 0) for b, _ in plan)
    logger.info("fetching %d object(s) from %s", len(plan), uri)

    with track(uri, total=total or None) as progress:

        def one(item: tuple[Any, str]) -> None:
            blob, rel = item
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with _gcs_errors(uri, bucket_name, blob.name), open(target, "wb") as out:
                blob.download_to_file(_Counting(out, progress), retry=_retry())

        with ThreadPoolExecutor(max_workers=min(_GCS_PARALLEL_OBJECTS, len(plan))) as pool:
            list(pool.map(one, plan))


def _retry() -> Any:
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(RETRY_TIMEOUT_S)


class _Counting:
    """A write-only file object that reports each chunk to the progress tracker."""

    def __init__(self, out: BinaryIO, progress: Download) -> None:
        self._out, self._progress = out, progress

    def write(self, data: bytes) -> int:
        n = self._out.write(data)
        self._progress.add(len(data))
        return n

    def flush(self) -> None:
        self._out.flush()


@contextlib.contextmanager
def _gcs_errors(uri: str, bucket: str, name: str | None = None) -> Iterator[None]:
    """Turn google-cloud exceptions into StorageError with the URI and a human reason."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    try:
        yield
    except gexc.NotFound as exc:
        if name is None:
            reason = f"bucket '{bucket}' does not exist"
        else:
            reason = f"object '{name}' does not exist in bucket '{bucket}'"
        raise StorageError(f"{uri}: {reason}") from exc
    except (gexc.Forbidden, gexc.Unauthorized) as exc:
        raise StorageError(
            f"{uri}: access denied ({exc.code}: {exc.message}); check GOOGLE_APPLICATION_CREDENTIALS"
        ) from exc
    except gexc.GoogleAPIError as exc:
        raise StorageError(f"{uri}: {exc}") from exc
    except auth_exc.GoogleAuthError as exc:
        raise StorageError(f"{uri}: Google credentials failed: {exc}") from exc
    except OSError as exc:
        raise StorageError(f"{uri}: download failed: {exc}") from exc
