"""The ``s3://`` fetcher (boto3, imported lazily: a node serving only local models never pays for it).

Each fetcher writes files into an empty folder it is given and raises :class:`StorageError`
(naming the URI and the reason) for anything that goes wrong; caching, locking and archive
unpacking are the caller's business (``pipelines.storage``).

Example::

    fetch_s3("s3://models/iris", Path("/tmp/staging/raw"), StorageSettings(...))
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import StorageError
from pipelines.storage.progress import track

if TYPE_CHECKING:
    from pipelines.storage.resolve import StorageSettings

__all__ = ["fetch_s3", "split_s3_uri"]

logger = logging.getLogger(__name__)

_S3_PARALLEL_OBJECTS = 8
_ACCESS_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` → ``("bucket", "some/prefix")``; the prefix may be empty."""
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise StorageError(f"{uri}: no bucket name; expected s3://bucket/prefix")
    return bucket, prefix.strip("/")


def fetch_s3(uri: str, dest: Path, settings: StorageSettings) -> None:
    """Download every object under ``s3://bucket/prefix`` into ``dest``, keeping relative paths.

    When the prefix is itself an object key, only that object is fetched, as ``dest/<basename>``.
    ``prefix`` matches whole path segments: ``s3://b/iris`` does not pick up ``iris2/...``.
    """
    bucket, prefix = split_s3_uri(uri)
    client = _s3_client(settings)
    with _s3_errors(uri, bucket):
        sizes = {
            obj["Key"]: int(obj.get("Size") or 0)
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        }
    keys = list(sizes)
    if prefix and prefix in sizes:
        plan = [(prefix, posixpath.basename(prefix))]
    else:
        folder = f"{prefix}/" if prefix else ""
        plan = [(k, k[len(folder) :]) for k in keys if k.startswith(folder) and not k.endswith("/")]
    if not plan:
        raise StorageError(f"{uri}: no objects found in bucket '{bucket}' under prefix '{prefix}'")
    for key, rel in plan:
        if rel.startswith("/") or ".." in rel.split("/"):
            raise StorageError(f"{uri}: object key {key!r} would be written outside the model folder")
    logger.info("fetching %d object(s) from %s", len(plan), uri)
    total = sum(sizes[key] for key, _ in plan)

    with track(uri, total=total or None) as progress:

        def one(item: tuple[str, str]) -> None:
            key, rel = item
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with _s3_errors(uri, bucket, key):
                client.download_file(bucket, key, str(target), Callback=progress.add)

        with ThreadPoolExecutor(max_workers=min(_S3_PARALLEL_OBJECTS, len(plan))) as pool:
            list(pool.map(one, plan))


def _s3_client(settings: StorageSettings) -> Any:
    try:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - boto3 is a declared dependency
        raise StorageError("s3:// storage needs boto3: pip install boto3") from exc
    endpoint = settings.resolved_s3_endpoint()
    # Custom endpoints (MinIO, Ceph, moto) want path-style URLs unless told otherwise, as in KServe.
    style = "virtual" if settings.s3_virtual_addressing else ("path" if endpoint else "auto")
    config = Config(
        signature_version=UNSIGNED if settings.s3_anonymous else None,
        s3={"addressing_style": style},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    session = boto3.session.Session(
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        aws_session_token=settings.aws_session_token,
        region_name=settings.aws_region,
    )
    return session.client("s3", endpoint_url=endpoint, verify=settings.s3_verify(), config=config)


@contextlib.contextmanager
def _s3_errors(uri: str, bucket: str, key: str | None = None) -> Iterator[None]:
    """Turn botocore exceptions into StorageError with the URI and a human reason."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), error.get("Message") or str(exc)
        if code == "NoSuchBucket":
            reason = f"bucket '{bucket}' does not exist"
        elif code in ("NoSuchKey", "404"):
            reason = f"object '{key}' does not exist in bucket '{bucket}'"
        elif code in _ACCESS_CODES:
            reason = f"access denied ({code}: {message}); check the AWS credentials"
        else:
            reason = f"{code}: {message}"
        raise StorageError(f"{uri}: {reason}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"{uri}: {exc}") from exc
