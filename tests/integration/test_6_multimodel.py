"""Many models on few replicas on the session's Ray cluster: ``serve deploy configs/multi-model.yaml``
(24 TrainedModels, 2 multiplexed predictor replicas of at most 4 models), then over real HTTP:
every model answers its own answer, residency per replica stays within the cap (each replica asked
by broadcast), repeat requests stay on the replica that holds the model, LRU evictions and
load/unload show in the V2 repository index, a model loaded at run time is served, errors are 4xx.
The application is deleted at the end."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import ROOT
from tests.integration.cluster import Cluster

APP = "ml-serving-tiny-models"
CAP, REPLICAS, N_SPEC = 4, 2, 24
ZERO, ONES = [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]


def name(i: int) -> str:
    return f"model-{i:02d}"


def _build_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_multimodel", ROOT / "scripts" / "build_multimodel.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def service(cluster: Cluster, served_dir: Path) -> Iterator[httpx.Client]:
    """The models under the cluster's working folder, the app deployed; deleted afterwards."""
    start = time.monotonic()
    _build_module().build(served_dir / "artifacts" / "multimodel")
    cluster.deploy("multi-model.yaml", {"ingress", "predictor"}, apps={APP: "/v2/health/ready"})
    print(f"[multimodel] built and deployed in {time.monotonic() - start:.1f} s")
    try:
        with httpx.Client(base_url=cluster.base, timeout=60) as c:
            yield c
    finally:
        delete_app(cluster)


def delete_app(cluster: Cluster) -> None:
    """``serve.delete`` without waiting for the replicas to drain (HAProxy takes >= 35 s)."""
    code = (
        "import ray; from ray import serve; ray.init(logging_level='error'); "
        f"serve.delete({APP!r}, _blocking=False)"
    )
    done = cluster.cli("python", "-c", code, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    status = yaml.safe_load(cluster.cli("serve", "status").stdout) or {}
    app = (status.get("applications") or {}).get(APP)
    assert app is None or app["status"] == "DELETING", app


def predict(c: httpx.Client, model: str, rows: list[list[float]] | None = None) -> list[float]:
    r = c.post(f"/v1/models/{model}:predict", json={"instances": rows or [ZERO, ONES]})
    assert r.status_code == 200, (model, r.text)
    return [float(p) for p in r.json()["predictions"]]


def index(c: httpx.Client) -> dict[str, dict[str, Any]]:
    r = c.post("/v2/repository/index", json={})
    assert r.status_code == 200, r.text
    return {m["name"]: m for m in r.json()}


def replicas(c: httpx.Client) -> dict[str, dict[str, Any]]:
    r = c.get("/v2/repository/replicas")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["models_per_replica"] == CAP
    return {s["replica"]: s for s in body["replicas"]}


def resident(state: dict[str, Any]) -> list[str]:
    return [m["name"] for m in state["models"]]


def check_residency(c: httpx.Client) -> dict[str, dict[str, Any]]:
    """Each replica within the cap, its own record equal to Ray's LRU, the index agreeing."""
    states = replicas(c)
    assert len(states) == REPLICAS, states
    for s in states.values():
        assert len(s["models"]) <= CAP, s
        assert resident(s) == s["ray_lru"], s  # the mirror is Ray's LRU, in the same order
    idx = index(c)
    for model, item in idx.items():
        holders = sorted(r for r, s in states.items() if model in resident(s))
        assert sorted(item["replicas"]) == holders, (model, item, states)
        assert item["state"] == ("READY" if holders else "UNAVAILABLE"), item
    return states


def test_every_model_answers_within_the_cap(service: httpx.Client) -> None:
    c = service
    assert sorted(c.get("/v1/models").json()["models"]) == [name(i) for i in range(N_SPEC)]
    for i in range(N_SPEC):
        assert predict(c, name(i)) == pytest.approx([i, 10 + i], abs=1e-6)
    v2 = c.post(
        f"/v2/models/{name(5)}/infer",
        json={"id": "q", "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ONES}]},
    )
    assert v2.status_code == 200 and v2.json()["outputs"][0]["data"] == pytest.approx([15.0])
    states = check_residency(c)
    assert sum(len(s["models"]) for s in states.values()) == REPLICAS * CAP  # both replicas full
    assert sum(s["evictions"] for s in states.values()) >= N_SPEC - REPLICAS * CAP
    held = {m for s in states.values() for m in resident(s)}  # a model may sit on both replicas
    evicted = [m for m in index(c).values() if m["state"] == "UNAVAILABLE"]
    assert len(evicted) == N_SPEC - len(held) >= N_SPEC - REPLICAS * CAP
    assert all(m["reason"].startswith("evicted (least recently used) on replica") for m in evicted)
    deadline = time.monotonic() + 10  # the tensors are learnt after the first answer
    while not (meta := c.get(f"/v2/models/{name(23)}").json())["inputs"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert meta["platform"] == "sklearn"


def test_repeat_requests_land_on_the_replica_that_holds_the_model(service: httpx.Client) -> None:
    c = service
    states = replicas(c)
    holder, model = next((r, resident(s)[-1]) for r, s in states.items() if s["models"])
    time.sleep(0.5)  # the replicas push what they hold to the routers every 0.1 s
    hits = {m["name"]: m["hits"] for m in states[holder]["models"]}
    loads = {r: s["loads"] for r, s in states.items()}
    for _ in range(20):
        assert predict(c, model, [ZERO])[0] == pytest.approx(int(model[-2:]), abs=1e-6)
    after = replicas(c)
    assert {m["name"]: m["hits"] for m in after[holder]["models"]}[model] == hits[model] + 20
    assert {r: s["loads"] for r, s in after.items()} == loads  # no replica loaded it again
    assert [r for r, s in after.items() if model in resident(s)] == [holder]


def test_load_and_unload_change_the_index(service: httpx.Client) -> None:
    c = service
    ready = [m for m in index(c).values() if m["state"] == "READY"]
    model, holder = ready[0]["name"], ready[0]["replicas"][0]
    r = c.post(f"/v2/repository/models/{model}/unload")
    assert r.status_code == 200 and r.json() == {"name": model, "unload": True, "replicas": [holder]}
    item = index(c)[model]
    assert (item["state"], item["reason"]) == ("UNAVAILABLE", f"unloaded on replica {holder}")
    check_residency(c)
    r = c.post(f"/v2/repository/models/{model}/load", json={})
    assert r.status_code == 200 and r.json()["loaded"] is True, r.text
    assert index(c)[model]["replicas"] == [r.json()["replica"]]
    # Every replica is full: loading an evicted model evicts the least recently used one there.
    cold = next(m["name"] for m in index(c).values() if m["state"] == "UNAVAILABLE")
    r = c.post(f"/v2/repository/models/{cold}/load")
    assert r.status_code == 200, r.text
    (victim,) = r.json()["evicted"]
    idx, where = index(c), r.json()["replica"]
    assert idx[cold]["state"] == "READY" and where in idx[cold]["replicas"]
    assert where not in idx[victim]["replicas"]
    if not idx[victim]["replicas"]:  # unless the other replica holds a copy too
        assert idx[victim]["state"] == "UNAVAILABLE"
        assert idx[victim]["reason"] == f"evicted (least recently used) on replica {where}"
    check_residency(c)


def test_a_model_loaded_at_run_time(service: httpx.Client, served_dir: Path) -> None:
    c = service
    extra = name(N_SPEC)  # built, not in the YAML
    assert c.post(f"/v1/models/{extra}:predict", json={"instances": [ZERO]}).status_code == 404
    body = {"parameters": {"storageUri": "artifacts/multimodel/model-24", "framework": "sklearn"}}
    r = c.post(f"/v2/repository/models/{extra}/load", json=body)
    assert r.status_code == 200, r.text
    for _ in range(6):  # whichever ingress replica answers knows it (registered by broadcast)
        assert extra in c.get("/v1/models").json()["models"]
        assert predict(c, extra) == pytest.approx([24.0, 34.0], abs=1e-6)
    assert index(c)[extra]["state"] == "READY"
    bad = {"parameters": {"storageUri": "artifacts/multimodel/nothing-here", "framework": "sklearn"}}
    r = c.post("/v2/repository/models/model-99/load", json=bad)
    assert r.status_code == 503 and "failed to load" in r.json()["error"], r.text
    assert "model-99" not in c.get("/v1/models").json()["models"]


def test_errors_are_json_and_the_service_keeps_serving(service: httpx.Client) -> None:
    c = service
    cases = [
        ("/v1/models/nope:predict", b'{"instances": [[0, 0, 0, 0]]}', 404),
        ("/v2/models/nope/infer", b'{"inputs": []}', 404),
        (f"/v1/models/{name(1)}:predict", b'{"instances": [[1, 2]]}', 400),
        (f"/v1/models/{name(1)}:predict", b'{"instances": [', 400),
        ("/v2/repository/models/nope/load", b"{}", 404),
        ("/v2/repository/models/nope/unload", b"", 404),
        (
            f"/v2/repository/models/{name(1)}/load",
            b'{"parameters": {"storageUri": "x", "framwork": "x"}}',
            400,
        ),
        ("/v2/repository/index", b'{"ready": "yes"}', 400),
    ]
    for path, raw, status in cases:
        r = c.post(path, content=raw)
        assert r.status_code == status, (path, raw, r.text)
        assert "error" in r.json()
        assert predict(c, name(1), [ZERO]) == pytest.approx([1.0], abs=1e-6)
    assert [m["name"] for m in c.post("/v2/repository/index", json={"ready": True}).json()] == [
        m["name"] for m in index(c).values() if m["state"] == "READY"
    ]
