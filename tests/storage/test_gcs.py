"""``gs://`` against a real GCS emulator (``gcp-storage-emulator``) run as a subprocess on a free port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from sklearn.linear_model import LogisticRegression

from pipelines.errors import StorageError
from pipelines.storage import StorageSettings, download, progress
from pipelines.storage.gcs import gcs_client
from predictors.sklearn import SKLearnPredictor

BUCKET = "models"


@dataclass
class Emulator:
    endpoint: str
    client: Any

    def upload_tree(self, prefix: str, root: Path) -> dict[str, bytes]:
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        bucket = self.client.bucket(BUCKET)
        for rel, data in files.items():
            bucket.blob(f"{prefix}/{rel}").upload_from_string(data)
        return files


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """``python -m gcp_storage_emulator start`` in memory on 127.0.0.1; stopped by its pid."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        port = _free_port()
        log = tmp_path_factory.mktemp("gcs") / "emulator.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1"]
                + ["--port", str(port), "--in-memory"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        endpoint = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"GCS emulator did not start: {log.read_text()}") from None
                    time.sleep(0.05)
            client = storage.Client(
                project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
            )
            client.create_bucket(BUCKET)
            yield Emulator(endpoint=endpoint, client=client)
        finally:
            proc.terminate()  # SIGTERM to this pid only
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def sklearn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sk") / "iris"
    (root / "meta").mkdir(parents=True)
    x = np.array([[0.0, 0.1], [0.2, 0.0], [1.0, 0.9], [0.8, 1.0]])
    joblib.dump(LogisticRegression().fit(x, [0, 0, 1, 1]), root / "model.joblib")
    (root / "meta" / "info.json").write_text('{"classes": [0, 1]}')
    return root


@pytest.fixture
def settings(tmp_path: Path, gcs: Emulator) -> StorageSettings:
    return StorageSettings(
        cache_dir=tmp_path / "cache", gcs_emulator_host=gcs.endpoint.removeprefix("http://")
    )


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_settings_read_storage_emulator_host() -> None:
    s = StorageSettings.from_env({"STORAGE_EMULATOR_HOST": "localhost:4443", "GOOGLE_CLOUD_PROJECT": "p"})
    assert (s.gcs_emulator_host, s.gcs_project) == ("localhost:4443", "p")
    client = gcs_client(s)
    assert isinstance(client._credentials, AnonymousCredentials)
    assert client._connection.API_BASE_URL == "http://localhost:4443"


def test_folder_lands_in_cache_and_second_resolve_hits_it(
    gcs: Emulator, sklearn_model: Path, settings: StorageSettings
) -> None:
    files = gcs.upload_tree("sklearn/iris", sklearn_model)
    gcs.client.bucket(BUCKET).blob("sklearn/iris2/other.bin").upload_from_string(b"not part of iris")
    uri = f"gs://{BUCKET}/sklearn/iris"
    path = download(uri, settings)
    assert path.parent == settings.cache_dir and (settings.cache_dir / f"{path.name}.done").is_file()
    assert _read_tree(path) == files  # iris2/ shares the string prefix but is not included
    entry = progress.current()[uri]
    assert (
        entry["done"]
        and not entry["cached"]
        and entry["bytes"] == entry["total"] == sum(map(len, files.values()))
    )

    predictor = SKLearnPredictor("iris")
    predictor.load(path)
    assert predictor.predict(np.array([[0.0, 0.0], [1.0, 1.0]])).tolist() == [0, 1]

    gcs.client.bucket(BUCKET).blob("sklearn/iris/model.joblib").delete()
    assert download(uri, settings) == path  # from the node-local cache: the emulator is not asked
    assert _read_tree(path) == files


def test_single_object(gcs: Emulator, settings: StorageSettings) -> None:
    gcs.client.bucket(BUCKET).blob("single/model.onnx").upload_from_string(b"onnx-bytes")
    path = download(f"gs://{BUCKET}/single/model.onnx", settings)
    assert _read_tree(path) == {"model.onnx": b"onnx-bytes"}


def test_emulator_from_environment(gcs: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gcs.client.bucket(BUCKET).blob("env/model.bin").upload_from_string(b"via-env")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint)
    monkeypatch.setenv("ISVC_CACHE_DIR", str(tmp_path / "cache"))
    path = download(f"gs://{BUCKET}/env")
    assert path.parent == tmp_path / "cache" and _read_tree(path) == {"model.bin": b"via-env"}


def test_missing_bucket_names_uri(settings: StorageSettings) -> None:
    with pytest.raises(
        StorageError, match="gs://no-such-bucket/iris: bucket 'no-such-bucket' does not exist"
    ):
        download("gs://no-such-bucket/iris", settings)
    assert not [p for p in settings.cache_dir.iterdir() if not p.name.endswith(".lock")]


def test_missing_object_names_uri(settings: StorageSettings) -> None:
    uri = f"gs://{BUCKET}/does-not-exist/model.joblib"
    with pytest.raises(StorageError, match=f"{uri}: no objects found in bucket 'models'"):
        download(uri, settings)
    assert progress.current().get(uri) is None  # nothing was downloaded


def test_no_credentials_fall_back_to_anonymous(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_credentials(*args: Any, **kwargs: Any) -> Any:
        raise DefaultCredentialsError("no credentials here")

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setattr(google.auth, "default", no_credentials)  # never probes a metadata server
    client = gcs_client(StorageSettings())
    assert isinstance(client._credentials, AnonymousCredentials)
    assert isinstance(gcs_client(StorageSettings(gcs_anonymous=True))._credentials, AnonymousCredentials)


def test_emulator_down_is_a_storage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipelines.storage.gcs.RETRY_TIMEOUT_S", 0.5)
    settings = StorageSettings(cache_dir=tmp_path / "cache", gcs_emulator_host=f"127.0.0.1:{_free_port()}")
    uri = f"gs://{BUCKET}/iris"
    with pytest.raises(StorageError, match=f"{uri}: "):
        download(uri, settings)
