"""Fixtures of the integration tier: an S3 server and one Ray cluster per session (see cluster.py)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import ROOT
from tests.integration.cluster import BIN, MARKER, Cluster, free_port, start_cluster, stop


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def served_dir(churn_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working folder: ``artifacts/churn`` and ``configs/`` where the configs expect them."""
    d = tmp_path_factory.mktemp("served")
    (d / "artifacts").mkdir()
    (d / "artifacts" / "churn").symlink_to(churn_artifacts)
    (d / "configs").symlink_to(ROOT / "configs")
    return d


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real S3 server (moto's server mode); yields the env that points boto3 at it."""
    marker = uuid.uuid4().hex
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, MARKER: marker}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    s3 = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(s3["AWS_ENDPOINT_URL"], timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"moto_server did not start:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield s3
    finally:
        stop(marker, proc.pid)


@pytest.fixture(scope="session")
def cluster(served_dir: Path, s3_server: dict[str, str]) -> Iterator[Cluster]:
    """``ray start --head`` with isvc's settings (and the S3 server's env, as a KServe pod has it)."""
    with start_cluster(served_dir, s3_server) as c:
        yield c
