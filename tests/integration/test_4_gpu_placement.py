"""GPU predictor replicas apart from the ingress, on a real multi-node Ray cluster with a fake GPU.

Its own ``ray.cluster_utils.Cluster`` in this process (never the session cluster of conftest.py):
a CPU head without labels, as a laptop's ``ray start --head`` has it, and a worker advertising
``GPU: 1`` and the label ``isvc.dev/pool=gpu``. The churn service asks for one GPU for its
predictor (one replica) and two ingress replicas (the transformer's minReplicas). Serve spreads
replicas over nodes by default, so without the ingress's label selector one of the two would
land on the GPU node. Checked: the predictor only on the GPU node, both ingress replicas on the
head, the replica counts each deployment's own, requests answered.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from pipelines._ray.options import POOL_LABEL
from pipelines.settings import serve_env
from tests.integration.cluster import MARKER, free_port, marked

ROW = {"age": 41, "tenure_days": 30, "monthly_spend": 120.5, "support_tickets": 6, "last_login_days": 21}


def churn_isvc(artifacts: Path) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "churn-gpu", "namespace": "placement"},
        "spec": {
            "transformer": {
                "minReplicas": 2,
                "maxReplicas": 2,
                "custom": {
                    "class": "transformers_.churn:ChurnTransformer",
                    "storageUri": str(artifacts / "transformer"),
                },
            },
            "predictor": {
                "minReplicas": 1,
                "maxReplicas": 1,
                "sklearn": {
                    "storageUri": str(artifacts / "predictor"),
                    "args": ["--method=predict_proba"],
                    "resources": {"limits": {"cpu": "500m", "nvidia.com/gpu": "1"}},
                },
            },
        },
    }


@contextlib.contextmanager
def fake_gpu_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Head (CPU, unlabelled) + one fake-GPU worker; only this cluster's processes are stopped."""
    import ray
    from ray.cluster_utils import Cluster

    marker = uuid.uuid4().hex
    # A short folder: Ray's unix sockets live under it (108-byte limit); RAY_TMPDIR as the session's.
    tmp = Path(os.environ.get("RAY_TMPDIR", "/tmp/isvc-it")) / f"gpu-{marker[:6]}"
    (tmp / "ray").mkdir(parents=True, exist_ok=True)  # RAY_TMPDIR/ray: the session and its address file
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # "" would refuse the fake GPU
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for key, value in serve_env({}).items():
        monkeypatch.setenv(key, value)
    # Ray's own proxy on the head: HAProxy's per-node files and ports are beside the point here.
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "0")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp))
    monkeypatch.setenv(MARKER, marker)  # every Ray process of this cluster carries it
    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 2,
                "gcs_server_port": free_port(),
                "dashboard_agent_listen_port": free_port(),
                "include_dashboard": True,  # the state API (list_actors) lives there
                "dashboard_host": "127.0.0.1",
                "dashboard_port": free_port(),
                "ray_client_server_port": free_port(),
                "temp_dir": str(tmp / "ray"),
            },
            shutdown_at_exit=True,
        )
        gpu_node = cluster.add_node(num_cpus=2, num_gpus=1, labels={POOL_LABEL: "gpu"})
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        yield {"head": cluster.head_node.node_id, "gpu": gpu_node.node_id}
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.shutdown()
        me = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
        left = [p for p in marked(marker) if p.pid not in me]  # pytest carries the marker too
        for p in left:
            with contextlib.suppress(psutil.Error):
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def replica_nodes(app: str) -> dict[str, list[str]]:
    """Deployment name → the node id of each live replica actor (``SERVE_REPLICA::app#dep#id``)."""
    from ray.util.state import list_actors

    nodes: dict[str, list[str]] = {}
    for actor in list_actors(filters=[("state", "=", "ALIVE")], limit=1000):
        name = actor.name or ""
        if name.startswith(f"SERVE_REPLICA::{app}#"):
            deployment = name.split("#")[1]
            nodes.setdefault(deployment, []).append(actor.node_id)
    return nodes


def deploy_and_wait(serve: Any, app: Any, name: str, timeout_s: float) -> None:
    """``serve.run``, bounded: it waits without limit for replicas that cannot be placed."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            serve.run(app, name=name, route_prefix="/")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if errors:
        raise errors[0]
    if thread.is_alive():
        pytest.fail(f"not running after {timeout_s:.0f} s: {serve.status()}; replicas: {replica_nodes(name)}")


def test_gpu_predictor_and_cpu_ingress_are_placed_and_scaled_apart(
    churn_artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray import serve

    from pipelines._ray.builder import build_app
    from pipelines.plan import build_plan
    from pipelines.spec import isvc_from_serve_args

    with fake_gpu_cluster(monkeypatch) as node:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port}, proxy_location="HeadOnly")
        plan = build_plan(isvc_from_serve_args(churn_isvc(churn_artifacts)))
        deploy_and_wait(serve, build_app(plan), plan.app_name, timeout_s=150)

        placed = replica_nodes(plan.app_name)
        assert placed["predictor"] == [node["gpu"]], placed
        assert placed["ingress"] == [node["head"], node["head"]], placed
        assert set(placed) == {"predictor", "ingress"}

        url = f"http://127.0.0.1:{port}/v1/models/churn-gpu:predict"
        for _ in range(4):  # both ingress replicas, one predictor
            r = httpx.post(url, json={"instances": [ROW, ROW]}, timeout=60)
            assert r.status_code == 200, r.text
            predictions = r.json()["predictions"]
            assert len(predictions) == 2 and predictions[0]["risk_tier"] == "HIGH"
        v2 = httpx.post(
            f"http://127.0.0.1:{port}/v2/models/churn-gpu/infer",
            json={
                "inputs": [
                    {"name": "features", "shape": [1, 5], "datatype": "FP64", "data": [41, 30, 120.5, 6, 21]}
                ]
            },
            timeout=60,
        )
        assert v2.status_code == 200, v2.text

        status = serve.status().applications[plan.app_name]
        assert status.deployments["ingress"].replica_states.get("RUNNING") == 2
        assert status.deployments["predictor"].replica_states.get("RUNNING") == 1
