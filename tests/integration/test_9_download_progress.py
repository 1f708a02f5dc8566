"""A model download shows in ``isvc get -o yaml`` while it runs: the predictor's ``storageUri`` is
an ``http://`` archive served by a server in this test that sends the first megabytes slowly and
then holds the rest until the test has seen the download in the status. ``modelStatus`` says
``Loading`` with the download's bytes, total, percent and rate (read from the starting replica's
log through Ray's dashboard), then ``Loaded`` once the rest arrived; the model answers."""

from __future__ import annotations

import http.server
import io
import os
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
import yaml

from pipelines.control import Dashboard
from pipelines.control.plane import ControlPlane
from tests.helpers import ROW
from tests.integration.cluster import Cluster, free_port

NAME, NS = "slow-download", "dl-test"
FIRST, DRIP, HELD = 1 << 20, 1 << 17, 2 << 20


class Gate:
    """Serves one archive: ``FIRST`` bytes at once, then ``DRIP`` every 0.5 s up to ``HELD``
    (the replica logs progress every 2 s while bytes flow), the rest once ``release`` is set."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.release = threading.Event()
        self.requests = 0


def archive(model: Path) -> bytes:
    """``model.joblib`` plus 3 MB of incompressible padding, as ``.tar.gz``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(model, arcname="model.joblib")
        pad = os.urandom(3_000_000)
        info = tarfile.TarInfo("padding.bin")
        info.size = len(pad)
        tar.addfile(info, io.BytesIO(pad))
    return buf.getvalue()


@pytest.fixture
def gated_server(churn_artifacts: Path) -> Iterator[tuple[str, Gate]]:
    gate = Gate(archive(churn_artifacts / "predictor" / "model.joblib"))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            gate.requests += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(gate.body)))
            self.end_headers()
            self.wfile.write(gate.body[:FIRST])
            sent = FIRST
            while sent < HELD and not gate.release.is_set():  # a slow link: 256 KB/s
                self.wfile.write(gate.body[sent : sent + DRIP])
                self.wfile.flush()
                sent += DRIP
                time.sleep(0.5)
            gate.release.wait(120)
            self.wfile.write(gate.body[sent:])

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/churn-{time.time_ns()}.tar.gz", gate
    finally:
        gate.release.set()
        server.shutdown()
        server.server_close()


def status(cluster: Cluster) -> dict[str, Any]:
    control = ControlPlane(Dashboard(cluster.env["RAY_DASHBOARD_ADDRESS"]))
    try:
        return control.get(NAME, NS)
    finally:
        control.close()


def test_isvc_get_shows_the_download_while_the_model_loads(
    cluster: Cluster, churn_artifacts: Path, gated_server: tuple[str, Gate]
) -> None:
    uri, gate = gated_server
    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {"predictor": {"sklearn": {"storageUri": uri, "resources": {"requests": {"cpu": "250m"}}}}},
    }
    path = cluster.cwd / "slow-download.yaml"
    path.write_text(yaml.safe_dump(doc))
    done = cluster.cli("isvc", "apply", str(path), "--no-wait", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    try:
        deadline = time.monotonic() + 120
        while True:  # the replica has the first megabyte and waits for the rest
            model = status(cluster)["status"]["modelStatus"]
            mine = [d for d in model.get("downloads") or [] if d["uri"] == uri]
            if mine and mine[0]["bytes"] and not mine[0]["done"]:
                break
            assert time.monotonic() < deadline, model
            time.sleep(0.5)
        done = cluster.cli("isvc", "get", NAME, "-n", NS, "-o", "yaml", timeout=60)
        assert done.returncode == 0, done.stderr
        shown = yaml.safe_load(done.stdout)["status"]
        assert shown["modelStatus"]["states"] == {"activeModelState": "Loading", "targetModelState": "Loaded"}
        assert shown["modelStatus"]["transitionStatus"] == "InProgress"
        assert not any(c["status"] == "True" for c in shown["conditions"] if c["type"] == "Ready")
        (dl,) = [d for d in shown["modelStatus"]["downloads"] if d["uri"] == uri]
        assert dl["deployment"] == "predictor" and dl["application"].startswith(f"{NS}-{NAME}-predictor-")
        assert dl["done"] is False and FIRST * 0.9 <= dl["bytes"] < len(gate.body)
        assert abs(dl["totalBytes"] - len(gate.body)) <= 50_000  # the log's 0.1 MB
        assert 0 < dl["percent"] < 100 and dl["rateBytesPerSecond"] > 0 and dl["elapsedSeconds"] > 0

        gate.release.set()
        deadline = time.monotonic() + 120
        while True:
            obj = status(cluster)
            ready = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
            if ready.get("Ready") == "True":
                break
            assert time.monotonic() < deadline, obj["status"]
            time.sleep(0.5)
        model = obj["status"]["modelStatus"]
        assert model["states"]["activeModelState"] == "Loaded" and model["transitionStatus"] == "UpToDate"
        assert model["copies"] == {"totalCopies": 1} and "downloads" not in model
        row = list(ROW.values())
        expected = joblib.load(churn_artifacts / "predictor" / "model.joblib").predict(np.array([row]))
        r = httpx.post(f"{obj['status']['url']}:predict", json={"instances": [row]}, timeout=30)
        assert r.status_code == 200 and r.json() == {"predictions": expected.tolist()}, r.text
        assert gate.requests == 1
    finally:
        gate.release.set()
        cluster.cli("isvc", "delete", NAME, "-n", NS, "--no-wait", timeout=60)
