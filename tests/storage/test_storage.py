"""Tests for ``pipelines.storage``: local/pvc paths, S3 against moto's real server, HTTP, archives,
and the node-local cache under thread and process concurrency."""

from __future__ import annotations

import functools
import http.server
import io
import logging
import multiprocessing
import tarfile
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from pipelines.errors import StorageError
from pipelines.storage import StorageSettings, download, progress

BUCKET = "models"
MODEL_FILES = {"model.joblib": b"weights-v1", "config/settings.json": b'{"name": "iris"}'}


# --------------------------------------------------------------------------- fixtures


@dataclass
class S3Server:
    """A moto server on 127.0.0.1 with a request log, and a boto3 client to arrange objects."""

    endpoint: str
    client: Any
    requests: list[tuple[str, str, str]] = field(default_factory=list)

    def listings_since(self, start: int, prefix: str) -> int:
        """ListObjectsV2 calls for ``prefix`` logged after index ``start``."""
        return sum(
            1
            for method, _, query in self.requests[start:]
            if method == "GET" and "list-type=2" in query and f"prefix={prefix}" in query
        )

    def put_tree(self, prefix: str, files: dict[str, bytes]) -> None:
        for rel, data in files.items():
            self.client.put_object(Bucket=BUCKET, Key=f"{prefix}/{rel}", Body=data)


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """moto's server mode (its own WSGI app, served by werkzeug in a thread), counting requests."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        log: list[tuple[str, str, str]] = []
        moto_app = DomainDispatcherApplication(create_backend_app)

        def counting_app(environ: dict[str, Any], start_response: Any) -> Any:
            log.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("QUERY_STRING", "")))
            return moto_app(environ, start_response)

        server = make_server("127.0.0.1", 0, counting_app, threaded=True, request_handler=MotoRequestHandler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        s3 = S3Server(endpoint=endpoint, client=client, requests=log)
        s3.put_tree("iris", MODEL_FILES)
        s3.put_tree("iris2", {"other.bin": b"not part of iris"})
        client.put_object(Bucket=BUCKET, Key="single/model.bin", Body=b"single-object")
        client.put_object(Bucket=BUCKET, Key="archives/iris.tar.gz", Body=_tar_gz(MODEL_FILES))
        yield s3
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def settings(tmp_path: Path, s3: S3Server) -> StorageSettings:
    return StorageSettings(
        cache_dir=tmp_path / "cache",
        pvc_root=tmp_path / "pvc",
        s3_endpoint_url=s3.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_region="us-east-1",
    )


@pytest.fixture
def local_settings(tmp_path: Path) -> StorageSettings:
    return StorageSettings(cache_dir=tmp_path / "cache", pvc_root=tmp_path / "pvc")


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _cache_leftovers(cache_dir: Path) -> list[str]:
    """Anything in the cache besides lock files (which are kept on purpose)."""
    if not cache_dir.exists():
        return []
    return sorted(p.name for p in cache_dir.iterdir() if not p.name.endswith(".lock"))


# --------------------------------------------------------------------------- settings


def test_settings_from_env_kserve_variables() -> None:
    s = StorageSettings.from_env(
        {
            "S3_ENDPOINT": "minio.kubeflow:9000",
            "S3_USE_HTTPS": "0",
            "S3_VERIFY_SSL": "false",
            "AWS_ACCESS_KEY_ID": "key",
            "AWS_SECRET_ACCESS_KEY": "very-secret",
            "AWS_REGION": "eu-west-1",
            "ISVC_CACHE_DIR": "/data/cache",
            "ISVC_PVC_ROOT": "/volumes",
        }
    )
    assert s.resolved_s3_endpoint() == "http://minio.kubeflow:9000"
    assert (s.s3_verify_ssl, s.s3_verify(), s.aws_region) == (False, False, "eu-west-1")
    assert (s.cache_dir, s.pvc_root) == (Path("/data/cache"), Path("/volumes"))
    assert "very-secret" not in repr(s)


def test_settings_from_env_defaults_and_precedence() -> None:
    s = StorageSettings.from_env({})
    assert s.cache_dir == Path("~/.cache/isvc/models").expanduser()
    assert (s.pvc_root, s.resolved_s3_endpoint(), s.s3_use_https) == (Path("/mnt/pvc"), None, True)
    s = StorageSettings.from_env({"S3_ENDPOINT": "s3.local:443", "AWS_ENDPOINT_URL": "http://x:1"})
    assert s.resolved_s3_endpoint() == "http://x:1"
    assert StorageSettings.from_env({"S3_ENDPOINT": "h:1"}).resolved_s3_endpoint() == "https://h:1"
    with pytest.raises(StorageError, match="S3_USE_HTTPS"):
        StorageSettings.from_env({"S3_USE_HTTPS": "maybe"})


# --------------------------------------------------------------------------- local and pvc


def test_local_path_returned_in_place(
    tmp_path: Path, local_settings: StorageSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _write_tree(tmp_path / "models" / "iris", MODEL_FILES)
    assert download(str(model), local_settings) == model
    monkeypatch.chdir(tmp_path)
    assert download("models/iris", local_settings) == model
    assert download(f"file://{model}", local_settings) == model
    assert not (tmp_path / "cache").exists()


def test_missing_local_path_names_uri(tmp_path: Path, local_settings: StorageSettings) -> None:
    uri = f"file://{tmp_path}/nope"
    with pytest.raises(StorageError, match=f"{uri}: no such file or folder"):
        download(uri, local_settings)


def test_pvc_maps_under_root(tmp_path: Path, local_settings: StorageSettings) -> None:
    model = _write_tree(tmp_path / "pvc" / "claim" / "iris" / "v1", MODEL_FILES)
    assert download("pvc://claim/iris/v1", local_settings) == model


@pytest.mark.parametrize("uri", ["pvc://claim/../other", "pvc://claim/iris/../../../etc", "pvc://"])
def test_pvc_escape_refused(tmp_path: Path, local_settings: StorageSettings, uri: str) -> None:
    _write_tree(tmp_path / "pvc" / "other", {"x": b"x"})
    with pytest.raises(StorageError, match="pvc://"):
        download(uri, local_settings)


def test_pvc_symlink_escape_refused(tmp_path: Path, local_settings: StorageSettings) -> None:
    outside = _write_tree(tmp_path / "outside", {"secret": b"s"})
    (tmp_path / "pvc" / "claim").mkdir(parents=True)
    (tmp_path / "pvc" / "claim" / "link").symlink_to(outside)
    with pytest.raises(StorageError, match="outside the claim"):
        download("pvc://claim/link", local_settings)


def test_unknown_scheme(local_settings: StorageSettings) -> None:
    with pytest.raises(StorageError, match="unknown storage scheme 'ftp://'.*gs://.*hf://"):
        download("ftp://host/model", local_settings)


# --------------------------------------------------------------------------- s3


def test_s3_folder_download(settings: StorageSettings) -> None:
    path = download(f"s3://{BUCKET}/iris/", settings)
    assert path.parent == settings.cache_dir
    assert _read_tree(path) == MODEL_FILES  # iris2/ shares the string prefix but is not included
    entry = progress.current()[f"s3://{BUCKET}/iris/"]
    assert entry["done"] and entry["bytes"] == entry["total"] == sum(map(len, MODEL_FILES.values()))


def test_s3_single_object(settings: StorageSettings) -> None:
    path = download(f"s3://{BUCKET}/single/model.bin", settings)
    assert _read_tree(path) == {"model.bin": b"single-object"}


def test_s3_tar_gz_unpacked(settings: StorageSettings) -> None:
    path = download(f"s3://{BUCKET}/archives/iris.tar.gz", settings)
    assert _read_tree(path) == MODEL_FILES


def test_s3_missing_bucket(settings: StorageSettings) -> None:
    with pytest.raises(
        StorageError, match="s3://no-such-bucket/iris: bucket 'no-such-bucket' does not exist"
    ):
        download("s3://no-such-bucket/iris", settings)
    assert _cache_leftovers(settings.cache_dir) == []


def test_s3_missing_prefix(settings: StorageSettings) -> None:
    with pytest.raises(StorageError, match="no objects found"):
        download(f"s3://{BUCKET}/does-not-exist", settings)
    assert _cache_leftovers(settings.cache_dir) == []


def test_s3_cache_hit_does_not_download_again(settings: StorageSettings, s3: S3Server) -> None:
    s3.put_tree("cachehit", {"model.bin": b"v1"})
    uri = f"s3://{BUCKET}/cachehit"
    first = download(uri, settings)
    assert (settings.cache_dir / f"{first.name}.done").is_file()
    s3.client.delete_object(Bucket=BUCKET, Key="cachehit/model.bin")
    start = len(s3.requests)
    assert download(uri, settings) == first
    assert _read_tree(first) == {"model.bin": b"v1"}
    assert s3.requests[start:] == []


def test_concurrent_threads_download_once(settings: StorageSettings, s3: S3Server) -> None:
    files = {f"shard-{i}.bin": bytes([i]) * 50_000 for i in range(4)}
    s3.put_tree("threads", files)
    start, barrier = len(s3.requests), threading.Barrier(8)
    results: list[Path | BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(download(f"s3://{BUCKET}/threads", settings))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1, results
    assert isinstance(results[0], Path), results
    assert _read_tree(results[0]) == files
    assert s3.listings_since(start, "threads") == 1
    assert _cache_leftovers(settings.cache_dir) == sorted([results[0].name, f"{results[0].name}.done"])


def test_concurrent_processes_download_once(settings: StorageSettings, s3: S3Server) -> None:
    files = {f"part-{i}.bin": bytes([i]) * 100_000 for i in range(3)}
    s3.put_tree("processes", files)
    start = len(s3.requests)
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(download, [(f"s3://{BUCKET}/processes", settings)] * 3)
    assert len(set(results)) == 1
    assert _read_tree(results[0]) == files
    assert s3.listings_since(start, "processes") == 1
    assert _cache_leftovers(settings.cache_dir) == sorted([results[0].name, f"{results[0].name}.done"])


# --------------------------------------------------------------------------- archives


def test_local_zip_unpacked_into_cache(tmp_path: Path, local_settings: StorageSettings) -> None:
    archive = tmp_path / "iris.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in MODEL_FILES.items():
            zf.writestr(name, data)
    path = download(str(archive), local_settings)
    assert path.parent == local_settings.cache_dir
    assert _read_tree(path) == MODEL_FILES


def _evil_tar(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        good = tarfile.TarInfo("model.joblib")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return path


def test_tar_with_parent_member_refused(tmp_path: Path, local_settings: StorageSettings) -> None:
    archive = _evil_tar(tmp_path / "evil.tar.gz", tarfile.TarInfo("../evil"), b"pwned")
    with pytest.raises(StorageError, match=r"archive member '\.\./evil'"):
        download(str(archive), local_settings)
    assert not (local_settings.cache_dir.parent / "evil").exists()
    assert _cache_leftovers(local_settings.cache_dir) == []


def test_tar_with_symlink_outside_refused(tmp_path: Path, local_settings: StorageSettings) -> None:
    link = tarfile.TarInfo("sub/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
    archive = _evil_tar(tmp_path / "evil.tgz", link)
    with pytest.raises(StorageError, match=r"archive member 'sub/passwd' is a symlink"):
        download(str(archive), local_settings)
    assert _cache_leftovers(local_settings.cache_dir) == []


def test_zip_with_absolute_member_refused(tmp_path: Path, local_settings: StorageSettings) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model.joblib", b"ok")
        zf.writestr("/tmp/evil", b"pwned")
    with pytest.raises(StorageError, match=r"archive member '/tmp/evil'"):
        download(f"file://{archive}", local_settings)
    assert _cache_leftovers(local_settings.cache_dir) == []


# --------------------------------------------------------------------------- http(s)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files; ``?as=NAME`` adds ``Content-Disposition: attachment; filename="NAME"``.
    Each request's headers are appended to ``seen``."""

    seen: list[dict[str, str]] = []

    def end_headers(self) -> None:
        self.seen.append(dict(self.headers.items()))
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        if "as" in query:
            self.send_header("Content-Disposition", f'attachment; filename="{query["as"]}"')
        super().end_headers()

    def do_GET(self) -> None:
        if self.path == "/truncated.bin":  # promises 1000 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def http_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A stdlib HTTP server on 127.0.0.1 serving ``tmp_path/www`` from a thread."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_http_single_file(http_root: tuple[str, Path], local_settings: StorageSettings) -> None:
    base, root = http_root
    (root / "model.onnx").write_bytes(b"onnx-bytes")
    path = download(f"{base}/model.onnx", local_settings)
    assert _read_tree(path) == {"model.onnx": b"onnx-bytes"}
    (root / "model.onnx").unlink()
    assert download(f"{base}/model.onnx", local_settings) == path  # cache hit


def test_http_archive_unpacked(http_root: tuple[str, Path], local_settings: StorageSettings) -> None:
    base, root = http_root
    (root / "iris.tgz").write_bytes(_tar_gz(MODEL_FILES))
    assert _read_tree(download(f"{base}/iris.tgz", local_settings)) == MODEL_FILES


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_http_zip_unpacked(http_root: tuple[str, Path], local_settings: StorageSettings) -> None:
    base, root = http_root
    (root / "iris.zip").write_bytes(_zip(MODEL_FILES))
    path = download(f"{base}/iris.zip", local_settings)
    assert path.parent == local_settings.cache_dir and _read_tree(path) == MODEL_FILES


def test_http_archive_named_by_header_or_query(
    http_root: tuple[str, Path], local_settings: StorageSettings
) -> None:
    base, root = http_root
    (root / "blob").write_bytes(_tar_gz(MODEL_FILES))
    assert _read_tree(download(f"{base}/blob?as=iris.tar.gz", local_settings)) == MODEL_FILES
    (root / "get").write_bytes(_zip(MODEL_FILES))
    assert _read_tree(download(f"{base}/get?file=models/iris.zip&sig=x", local_settings)) == MODEL_FILES
    (root / "weights.bin").write_bytes(b"kept")
    path = download(f"{base}/weights.bin?sig=abc", local_settings)
    assert _read_tree(path) == {"weights.bin": b"kept"}  # not an archive: kept as it is


def test_http_progress_and_log(
    http_root: tuple[str, Path], local_settings: StorageSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=progress.LOGGER_NAME)
    base, root = http_root
    (root / "model.pt").write_bytes(b"x" * 300_000)
    uri = f"{base}/model.pt"
    download(uri, local_settings)
    entry = progress.current()[uri]
    assert (entry["bytes"], entry["total"], entry["done"], entry["cached"]) == (300_000, 300_000, True, False)
    lines = [r.getMessage() for r in caplog.records if r.name == progress.LOGGER_NAME]
    assert lines[0] == f"downloading {uri} (0.3 MB)"
    assert lines[-1].startswith(f"downloaded {uri}: 0.3 MB of 0.3 MB (100%), ") and "MB/s" in lines[-1]
    progress.clear()  # as in a fresh replica on this node: the cache answers
    download(uri, local_settings)
    assert progress.current()[uri]["cached"] is True


def test_http_truncated_body(http_root: tuple[str, Path], local_settings: StorageSettings) -> None:
    base, _ = http_root
    with pytest.raises(StorageError, match=f"{base}/truncated.bin: .*10 .*1000"):
        download(f"{base}/truncated.bin", local_settings)
    assert _cache_leftovers(local_settings.cache_dir) == []
    assert progress.current()[f"{base}/truncated.bin"]["error"]


def test_http_headers_per_host(http_root: tuple[str, Path], tmp_path: Path) -> None:
    base, root = http_root
    (root / "private.bin").write_bytes(b"secret-model")
    env = {"ISVC_CACHE_DIR": str(tmp_path / "c"), "127.0.0.1-headers": '{"Authorization": "Bearer t0k"}'}
    settings = StorageSettings.from_env(env)
    assert "t0k" not in repr(settings)
    _QuietHandler.seen.clear()
    download(f"{base}/private.bin", settings)
    assert _QuietHandler.seen[-1]["Authorization"] == "Bearer t0k"
    with pytest.raises(StorageError, match="h-headers: not a JSON object"):
        StorageSettings.from_env({"h-headers": "{nope"})


def test_http_404(http_root: tuple[str, Path], local_settings: StorageSettings) -> None:
    base, _ = http_root
    with pytest.raises(StorageError, match=f"{base}/missing.bin: HTTP 404"):
        download(f"{base}/missing.bin", local_settings)
    assert _cache_leftovers(local_settings.cache_dir) == []
