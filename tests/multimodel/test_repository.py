"""pipelines.multimodel.repository: the live catalog, the index's real state, load/unload, over HTTP.

The replicas are a fake that does what Ray's multiplexing does (a holder first, else the replica
with the fewest models; a full replica evicts its least recently used model), each keeping a
:class:`Residency` as the real replicas do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest

from pipelines.dataplane import ModelPipeline, create_app
from pipelines.errors import StorageError
from pipelines.multimodel import (
    EVICTED,
    READY,
    UNAVAILABLE,
    ModelCatalog,
    ModelEntry,
    ModelLoadFailed,
    Repository,
    Residency,
    merge_index,
    runtime_entry,
)
from pipelines.plan import PredictorNode

PARENT = PredictorNode("predictors.sklearn:SKLearnPredictor", model_format="sklearn")
CAP = 2


def entry(i: int) -> ModelEntry:
    return runtime_entry(f"m{i}", {"storageUri": f"store/{i}", "framework": "sklearn"}, PARENT)


def spec_entry(i: int) -> ModelEntry:
    e = entry(i)
    return ModelEntry(e.name, e.node, e.framework, source="spec")


class FakeReplicas:
    """Two replicas of ``CAP`` models; a model at ``store/N`` answers ``N`` (``store/bad`` fails)."""

    def __init__(self) -> None:
        self.replicas = {"r0": Residency(CAP), "r1": Residency(CAP)}
        self.shared: list[str] = []

    def _place(self, e: ModelEntry) -> tuple[str, bool]:
        for rid, r in self.replicas.items():
            if e.name in r:
                r.hit(e.name)
                return rid, False
        rid = min(self.replicas, key=lambda k: len(self.replicas[k]))
        r = self.replicas[rid]
        if e.node.storage_uri == "store/bad":
            r.load_failed(e.name, "no model file")
            raise ModelLoadFailed(f"model '{e.name}' failed to load: no model file")
        if (victim := r.next_eviction()) is not None:
            r.evicted(victim)
        r.begin_load(e.name)
        r.loaded(e.name, 0.001)
        return rid, True

    async def predict(self, e: ModelEntry, batch: Any) -> Any:
        self._place(e)
        return np.full(len(batch), float(str(e.node.storage_uri).split("/")[-1]))

    async def states(self) -> list[dict[str, Any]]:
        return [r.snapshot(rid) for rid, r in self.replicas.items()]

    async def load(self, e: ModelEntry) -> dict[str, Any]:
        before = {rid: r.evictions for rid, r in self.replicas.items()}
        rid, loaded = self._place(e)
        r = self.replicas[rid]
        n = r.evictions - before[rid]
        evicted = list(r.recent_evictions)[-n:] if n else []
        meta = {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}], "platform": "sklearn"}
        return {"replica": rid, "loaded": loaded, "evicted": evicted, "metadata": meta}

    async def unload(self, name: str) -> list[str]:
        return [rid for rid, r in self.replicas.items() if r.unloaded(name)]

    async def share(self, e: ModelEntry) -> None:
        self.shared.append(e.name)


@pytest.fixture
def fake() -> FakeReplicas:
    return FakeReplicas()


@pytest.fixture
async def client(fake: FakeReplicas) -> AsyncIterator[httpx.AsyncClient]:
    def make(e: ModelEntry) -> ModelPipeline:
        async def predict(batch: Any) -> Any:
            return await fake.predict(e, batch)

        return ModelPipeline(e.name, predict=predict, platform=e.framework)

    catalog = ModelCatalog(make, tuple(spec_entry(i) for i in range(6)))
    repo = Repository(catalog, fake, PARENT, version="1", models_per_replica=CAP)
    app = create_app(catalog, extra_routes=repo.routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def index(c: httpx.AsyncClient, **body: Any) -> dict[str, dict[str, Any]]:
    r = await c.post("/v2/repository/index", json=body)
    assert r.status_code == 200, r.text
    return {m["name"]: m for m in r.json()}


async def predict(c: httpx.AsyncClient, name: str) -> httpx.Response:
    return await c.post(f"/v1/models/{name}:predict", json={"instances": [[0, 0, 0, 0]]})


async def test_every_model_answers_and_the_index_shows_evictions(client: httpx.AsyncClient):
    first = await index(client)
    assert list(first) == [f"m{i}" for i in range(6)]
    assert {m["state"] for m in first.values()} == {UNAVAILABLE}
    assert first["m0"]["reason"] == "not loaded yet" and first["m0"]["version"] == "1"
    for i in range(6):
        r = await predict(client, f"m{i}")
        assert r.status_code == 200 and r.json() == {"predictions": [float(i)]}
    now = await index(client)
    ready = [n for n, m in now.items() if m["state"] == READY]
    assert len(ready) == 2 * CAP and {"m4", "m5"} <= set(ready)  # the others were evicted
    assert now["m0"]["state"] == UNAVAILABLE and now["m0"]["reason"].startswith(EVICTED)
    assert all(len(now[n]["replicas"]) == 1 for n in ready)
    assert list(await index(client, ready=True)) == ready
    replicas = (await client.get("/v2/repository/replicas")).json()
    assert replicas["models_per_replica"] == CAP
    assert all(len(r["models"]) <= CAP for r in replicas["replicas"])


async def test_load_and_unload_change_the_index(client: httpx.AsyncClient, fake: FakeReplicas):
    r = await client.post("/v2/repository/models/m1/load")
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "m1", "load": True, "replica": "r0", "loaded": True, "evicted": []}
    assert (await index(client))["m1"]["state"] == READY
    meta = (await client.get("/v2/models/m1")).json()  # learnt from the load
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    r = await client.post("/v2/repository/models/m1/unload")
    assert r.json() == {"name": "m1", "unload": True, "replicas": ["r0"]}
    after = (await index(client))["m1"]
    assert after["state"] == UNAVAILABLE and after["reason"] == "unloaded on replica r0"
    # Unloading what no replica holds is fine; the next request loads it again.
    assert (await client.post("/v2/repository/models/m1/unload")).json()["replicas"] == []
    assert (await predict(client, "m1")).json() == {"predictions": [1.0]}
    assert fake.shared == []


async def test_a_load_that_evicts_says_so(client: httpx.AsyncClient):
    for i in range(4):
        assert (await client.post(f"/v2/repository/models/m{i}/load")).status_code == 200
    r = await client.post("/v2/repository/models/m4/load")
    assert r.json()["evicted"] == ["m0"]
    assert (await index(client))["m0"]["reason"].startswith(EVICTED)


async def test_a_model_loaded_at_run_time_is_served_at_once(client: httpx.AsyncClient, fake: FakeReplicas):
    assert (await predict(client, "m24")).status_code == 404
    r = await client.post("/v2/repository/models/m24/load")
    assert r.status_code == 404 and '"storageUri"' in r.json()["error"]
    body = {"parameters": {"storageUri": "store/24", "framework": "sklearn"}}
    r = await client.post("/v2/repository/models/m24/load", json=body)
    assert r.status_code == 200, r.text
    assert fake.shared == ["m24"]
    assert "m24" in (await client.get("/v1/models")).json()["models"]
    assert (await predict(client, "m24")).json() == {"predictions": [24.0]}
    assert (await index(client))["m24"]["state"] == READY
    # The same load again is a plain load; another storageUri needs an unload first.
    assert (await client.post("/v2/repository/models/m24/load", json=body)).status_code == 200
    other = {"parameters": {"storageUri": "store/7", "framework": "sklearn"}}
    r = await client.post("/v2/repository/models/m24/load", json=other)
    assert r.status_code == 400 and "unload it before" in r.json()["error"]
    await client.post("/v2/repository/models/m24/unload")
    assert (await client.post("/v2/repository/models/m24/load", json=other)).status_code == 200
    assert (await predict(client, "m24")).json() == {"predictions": [7.0]}
    # A TrainedModel's storageUri is the YAML's.
    r = await client.post("/v2/repository/models/m3/load", json=other)
    assert r.status_code == 400 and "change it in the YAML" in r.json()["error"]


async def test_bad_requests_are_4xx_and_the_server_keeps_serving(client: httpx.AsyncClient):
    cases = [
        ("/v2/repository/models/m1/load", b'{"parameters": {"storageUri": "x", "framwork": "sklearn"}}', 400),
        ("/v2/repository/models/m1/load", b'{"params": {}}', 400),
        ("/v2/repository/models/m1/load", b"{not json", 400),
        ("/v2/repository/models/m1/load", b"[1]", 400),
        ("/v2/repository/index", b'{"ready": "yes"}', 400),
        ("/v2/repository/models/nope/unload", b"", 404),
        ("/v1/models/nope:predict", b'{"instances": [[0, 0, 0, 0]]}', 404),
        ("/v1/models/m1:predict", b'{"instances": [', 400),
    ]
    for path, raw, status in cases:
        r = await client.post(path, content=raw)
        assert r.status_code == status, (path, raw, r.text)
        assert "error" in r.json()
        assert (await predict(client, "m1")).status_code == 200
    failing = {"parameters": {"storageUri": "store/bad", "framework": "sklearn"}}
    r = await client.post("/v2/repository/models/m9/load", json=failing)
    assert r.status_code == 503 and "failed to load" in r.json()["error"]
    assert "m9" not in (await client.get("/v1/models")).json()["models"]  # a failed load registers nothing
    assert "m9" not in await index(client)


def test_merge_index_unions_replicas_and_keeps_catalog_order():
    a, b = Residency(2), Residency(2)
    for r, names in ((a, ["m1", "x"]), (b, ["m1"])):
        for n in names:
            r.begin_load(n)
            r.loaded(n, 0.0)
    b.begin_load("m2")
    catalog = [spec_entry(2), spec_entry(1), spec_entry(0)]
    items = merge_index(catalog, [a.snapshot("a"), b.snapshot("b")], "3")
    assert [(i["name"], i["state"], i["replicas"]) for i in items] == [
        ("m2", "LOADING", ["b"]),
        ("m1", "READY", ["a", "b"]),
        ("m0", "UNAVAILABLE", []),
        ("x", "READY", ["a"]),  # held by a replica though this ingress does not know it
    ]
    assert all(i["version"] == "3" for i in items)
    # m0 was evicted on a, then loaded and unloaded on b: the latest reason is the one shown.
    t = iter([1.0, 2.0])
    a, b = Residency(2, wall=lambda: next(t)), Residency(2, wall=lambda: next(t))
    for r in (a, b):
        r.begin_load("m0")
        r.loaded("m0", 0.0)
    a.evicted("m0")
    b.unloaded("m0")
    (m0,) = [i for i in merge_index(catalog, [b.snapshot("b"), a.snapshot("a")], "3") if i["name"] == "m0"]
    assert m0["reason"] == "unloaded on replica b"


def test_storage_errors_keep_their_message():
    err = ModelLoadFailed(f"model 'm' failed to load: {StorageError('no such file')}")
    assert err.status_code == 503 and "no such file" in str(err)
