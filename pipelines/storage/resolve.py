"""Resolve a KServe ``storageUri`` to a local path, downloading into a node-local cache if needed.

Supported URIs (KServe's spelling):

=============================  ==============================================================
``/abs/path``, ``rel/path``    returned in place (must exist)
``file:///abs/path``           same, without the scheme
``pvc://claim/sub/path``       ``settings.pvc_root/claim/sub/path`` (must exist, no ``..``)
``s3://bucket/prefix``         every object under the prefix (or the one object so named)
``gs://bucket/prefix``         the same on Google Cloud Storage (or ``STORAGE_EMULATOR_HOST``)
``https://host/model.tgz``     one file over HTTP(S)
``hf://org/model[@revision]``  the snapshot folder in the local Hugging Face cache, in place
=============================  ==============================================================

Remote URIs land in ``settings.cache_dir/<sha256 of the URI>/`` and are fetched once per node:
other replicas, restarts and concurrent callers (threads or processes) reuse the entry. A
downloaded single file, or a local/PVC file, that is an archive (``.tar.gz``, ``.tgz``,
``.tar``, ``.zip``, …) is unpacked into a cache folder and that folder is returned. Downloads
log their progress and show it in :func:`pipelines.storage.progress.current`.

Example::

    from pipelines.storage import StorageSettings, download

    settings = StorageSettings.from_env()            # read os.environ once, at startup
    model_dir = download("s3://models/churn/v3", settings)
    predictor.load(model_dir)
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import StorageError
from pipelines.storage import progress
from pipelines.storage.archive import is_archive, unpack
from pipelines.storage.cache import cached
from pipelines.storage.gcs import emulator_endpoint, fetch_gcs, split_gs_uri
from pipelines.storage.hf import hf_hub_cache, resolve_hf
from pipelines.storage.http import fetch_http
from pipelines.storage.s3 import fetch_s3, split_s3_uri

__all__ = ["SUPPORTED_SCHEMES", "StorageSettings", "download"]

SUPPORTED_SCHEMES: tuple[str, ...] = ("file", "pvc", "s3", "gs", "http", "https", "hf")
_HEADERS_SUFFIX = "-headers"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _default_cache_dir() -> Path:
    return Path("~/.cache/isvc/models").expanduser()


@dataclass(frozen=True)
class StorageSettings:
    """Where models are cached and how S3, GCS, HTTP hosts and the Hugging Face cache are
    reached; build it once with :meth:`from_env`.

    ``s3_endpoint_url`` may be a full URL (``http://minio:9000``) or KServe's ``host:port``, in
    which case ``s3_use_https`` picks the scheme. Credentials left as ``None`` fall back to
    boto3's own chain (instance profile, web identity, ``~/.aws``). ``gcs_emulator_host`` sends
    ``gs://`` to an emulator, anonymously; otherwise Google's default credentials are used, or
    an anonymous client when there are none (or ``gcs_anonymous``). ``http_headers`` holds
    extra request headers per host name.

    Example::

        StorageSettings(cache_dir=Path("/tmp/models"), s3_endpoint_url="localhost:9000",
                        s3_use_https=False, aws_access_key_id="minio",
                        aws_secret_access_key="minio123")
    """

    cache_dir: Path = field(default_factory=_default_cache_dir)
    pvc_root: Path = Path("/mnt/pvc")
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_region: str | None = None
    s3_use_https: bool = True
    s3_verify_ssl: bool = True
    s3_ca_bundle: str | None = None
    s3_anonymous: bool = False
    s3_virtual_addressing: bool = False
    gcs_emulator_host: str | None = None
    gcs_project: str | None = None
    gcs_anonymous: bool = False
    hf_cache_dir: Path = field(default_factory=hf_hub_cache)
    http_headers: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = field(default=(), repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageSettings:
        """Read settings from ``environ`` (default ``os.environ``), once.

        ``ISVC_CACHE_DIR``, ``ISVC_PVC_ROOT``; S3 endpoint from ``AWS_ENDPOINT_URL_S3``, else
        ``AWS_ENDPOINT_URL``, else KServe's ``S3_ENDPOINT`` (``host:port``) with ``S3_USE_HTTPS``
        (default 1); ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
        ``AWS_DEFAULT_REGION`` or ``AWS_REGION``, ``S3_VERIFY_SSL`` (default 1), ``AWS_CA_BUNDLE``,
        and KServe's ``awsAnonymousCredential`` and ``S3_USER_VIRTUAL_BUCKET`` (default false).
        GCS: ``STORAGE_EMULATOR_HOST``, ``GOOGLE_CLOUD_PROJECT``, ``ISVC_GCS_ANONYMOUS``. Hugging
        Face: ``HF_HUB_CACHE``, ``HF_HOME`` (see :func:`pipelines.storage.hf.hf_hub_cache`). HTTP:
        KServe's ``<host>-headers`` variables, each a JSON object of header names to values.
        """
        env = os.environ if environ is None else environ

        def flag(name: str, default: bool) -> bool:
            raw = env.get(name)
            if raw is None:
                return default
            value = raw.strip().lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            raise StorageError(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")

        return cls(
            cache_dir=Path(env.get("ISVC_CACHE_DIR") or "~/.cache/isvc/models").expanduser(),
            pvc_root=Path(env.get("ISVC_PVC_ROOT") or "/mnt/pvc"),
            s3_endpoint_url=(
                env.get("AWS_ENDPOINT_URL_S3")
                or env.get("AWS_ENDPOINT_URL")
                or env.get("S3_ENDPOINT")
                or None
            ),
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
            aws_region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
            s3_use_https=flag("S3_USE_HTTPS", True),
            s3_verify_ssl=flag("S3_VERIFY_SSL", True),
            s3_ca_bundle=env.get("AWS_CA_BUNDLE") or None,
            s3_anonymous=flag("awsAnonymousCredential", False),
            s3_virtual_addressing=flag("S3_USER_VIRTUAL_BUCKET", False),
            gcs_emulator_host=env.get("STORAGE_EMULATOR_HOST") or None,
            gcs_project=env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT") or None,
            gcs_anonymous=flag("ISVC_GCS_ANONYMOUS", False),
            hf_cache_dir=hf_hub_cache(env),
            http_headers=_http_headers(env),
        )

    def headers_for(self, host: str | None) -> dict[str, str]:
        """The extra HTTP headers configured for ``host`` (none by default)."""
        for name, headers in self.http_headers:
            if host is not None and name.lower() == host.lower():
                return dict(headers)
        return {}

    def resolved_s3_endpoint(self) -> str | None:
        """The S3 endpoint as a URL: ``host:port`` gets ``https://`` or ``http://`` per ``s3_use_https``."""
        if not self.s3_endpoint_url:
            return None
        if "://" in self.s3_endpoint_url:
            return self.s3_endpoint_url
        return f"{'https' if self.s3_use_https else 'http'}://{self.s3_endpoint_url}"

    def s3_verify(self) -> bool | str:
        """What boto3's ``verify=`` gets: False, a CA bundle path, or True."""
        if not self.s3_verify_ssl:
            return False
        return self.s3_ca_bundle or True


def download(uri: str, settings: StorageSettings | None = None) -> Path:
    """Return a local path holding the model named by ``uri``, downloading it if needed.

    Local paths (and ``file://``, ``pvc://``) come back in place, as given (absolute), file or
    folder; remote URIs and local archives come back as a cache folder. Raises StorageError
    with the URI and the reason for anything that cannot be resolved.

    Example::

        download("s3://models/iris")          # -> ~/.cache/isvc/models/3f1c.../
        download("pvc://models-claim/iris")   # -> /mnt/pvc/models-claim/iris
    """
    settings = settings if settings is not None else StorageSettings.from_env()
    uri = uri.strip()
    if not uri:
        raise StorageError("storageUri is empty")
    match = _SCHEME.match(uri)
    if match is None:
        return _local(Path(uri), uri, settings)
    scheme = match.group(1).lower()
    rest = uri[match.end() :]
    if scheme == "file":
        path = rest[len("localhost") :] if rest.startswith("localhost/") else rest
        return _local(Path(path), uri, settings)
    if scheme == "pvc":
        return _local(_pvc_path(rest, uri, settings.pvc_root), uri, settings)
    if scheme == "s3":
        bucket, prefix = split_s3_uri(f"s3://{rest}")
        endpoint = settings.resolved_s3_endpoint() or "aws"
        identity = f"s3://{bucket}/{prefix}|endpoint={endpoint}"
        return _remote(identity, uri, settings, lambda dest: fetch_s3(uri, dest, settings))
    if scheme == "gs":
        bucket, prefix = split_gs_uri(f"gs://{rest}")
        emulator = emulator_endpoint(settings.gcs_emulator_host) if settings.gcs_emulator_host else "gcs"
        identity = f"gs://{bucket}/{prefix}|endpoint={emulator}"
        return _remote(identity, uri, settings, lambda dest: fetch_gcs(uri, dest, settings))
    if scheme in ("http", "https"):
        url = f"{scheme}://{rest}"
        headers = settings.headers_for(urllib.parse.urlsplit(url).hostname)
        return _remote(url, uri, settings, lambda dest: fetch_http(url, dest, headers))
    if scheme == "hf":
        return resolve_hf(f"hf://{rest}", settings.hf_cache_dir)
    supported = ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
    raise StorageError(f"{uri}: unknown storage scheme '{scheme}://'; supported: a local path, {supported}")


def _http_headers(env: Mapping[str, str]) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """KServe's ``<host>-headers='{"Name": "value"}'`` variables, parsed; bad JSON is a StorageError."""
    found = []
    for key, raw in env.items():
        if not key.endswith(_HEADERS_SUFFIX) or len(key) == len(_HEADERS_SUFFIX):
            continue
        try:
            headers = json.loads(raw)
        except ValueError as exc:
            raise StorageError(f"{key}: not a JSON object of HTTP headers: {exc}") from exc
        if not isinstance(headers, dict):
            raise StorageError(f"{key}: expected a JSON object of HTTP headers, got {type(headers).__name__}")
        found.append((key[: -len(_HEADERS_SUFFIX)], tuple((str(k), str(v)) for k, v in headers.items())))
    return tuple(found)


def _pvc_path(rest: str, uri: str, pvc_root: Path) -> Path:
    """``claim/sub/path`` → ``pvc_root/claim/sub/path``, refusing anything that leaves the claim."""
    parts = [p for p in rest.split("/") if p not in ("", ".")]
    if not parts:
        raise StorageError(f"{uri}: no claim name; expected pvc://claim/path")
    if ".." in parts or "\\" in rest:
        raise StorageError(f"{uri}: '..' and backslashes are not allowed in a pvc:// path")
    claim = pvc_root / parts[0]
    path = pvc_root.joinpath(*parts)
    if not path.resolve().is_relative_to(claim.resolve()):
        raise StorageError(f"{uri}: resolves to {path.resolve()}, outside the claim folder {claim}")
    return path


def _local(path: Path, uri: str, settings: StorageSettings) -> Path:
    """An existing local path, as an absolute path; an archive file is unpacked into the cache."""
    if not path.exists():
        raise StorageError(f"{uri}: no such file or folder: {path}")
    path = path.absolute()
    if path.is_file() and is_archive(path.name):
        stat = path.stat()
        identity = f"local:{path}|size={stat.st_size}|mtime_ns={stat.st_mtime_ns}"

        def fill(staging: Path) -> Path:
            unpack(path, staging, uri)
            return staging

        return cached(settings.cache_dir, identity, fill)
    return path


def _remote(identity: str, uri: str, settings: StorageSettings, fetch: Callable[[Path], None]) -> Path:
    """Fetch into a cache entry; a lone downloaded archive is replaced by its unpacked content."""
    filled = False

    def fill(staging: Path) -> Path:
        nonlocal filled
        filled = True
        raw = staging / "raw"
        raw.mkdir()
        fetch(raw)
        files = [p for p in raw.rglob("*") if p.is_file()]
        if len(files) == 1 and is_archive(files[0].name):
            out = staging / "unpacked"
            out.mkdir()
            unpack(files[0], out, uri)
            return out
        return raw

    path = cached(settings.cache_dir, identity, fill)
    if not filled:
        progress.note_cached(uri)
    return path
