"""The traffic router without Ray: weighted split, tag routing, revisions coming and going,
shadow copies and their agreement, the cold-start bound, and the response headers."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import numpy as np
import pytest

from pipelines.dataplane import REQUEST_INFO, ModelPipeline, create_app
from pipelines.errors import ColdStartTimeout, InvalidInput, RevisionUnavailable
from pipelines.routing import Revision, Shadow, TrafficRouter, agreement


def answering(value: float, calls: list[str] | None = None, name: str = ""):
    async def submit(batch: Any) -> Any:
        if calls is not None:
            calls.append(name)
        return np.full((len(batch), 2), [value, 1 - value])

    return submit


def table(percent: float, calls: list[str]) -> list[Revision]:
    return [
        Revision("prev", "v1", 100 - percent, answering(0.9, calls, "v1")),
        Revision("latest", "v2", percent, answering(0.2, calls, "v2")),
    ]


@pytest.mark.parametrize("percent", [0, 20, 50, 100])
async def test_share_over_2000_requests_is_within_3_points(percent: int) -> None:
    calls: list[str] = []
    router = TrafficRouter(table(percent, calls), rand=random.Random(7).random)
    for _ in range(2000):
        await router.predict(np.ones((1, 3)))
    share = 100 * calls.count("v2") / len(calls)
    assert abs(share - percent) <= 3, share


@pytest.mark.parametrize("percent", [1, 20, 37.5, 50, 99])
async def test_the_default_split_is_even_in_every_window_not_only_on_average(percent: float) -> None:
    """The router's own points (golden-ratio steps): 2,000 requests give the canary its percent
    within 0.2 points, and every run of 100 consecutive ones within 2 — independent draws miss
    that in most windows (their σ over 100 requests at 20 % is 4 points)."""
    calls: list[str] = []
    router = TrafficRouter(table(percent, calls))
    for _ in range(2000):
        await router.predict(np.ones((1, 3)))
    share = 100 * calls.count("v2") / len(calls)
    assert abs(share - percent) <= 0.2, share
    windows = [100 * calls[i : i + 100].count("v2") / 100 for i in range(0, 1901, 50)]
    assert max(abs(w - percent) for w in windows) <= 2, windows


async def test_each_router_starts_its_points_somewhere_else() -> None:
    firsts = set()
    for _ in range(10):
        calls: list[str] = []
        router = TrafficRouter(table(50, calls))
        for _ in range(8):
            await router.predict(np.ones((1, 3)))
        firsts.add(tuple(calls))
    assert len(firsts) > 1, firsts  # replicas do not step in lockstep


async def test_a_tag_forces_the_revision_and_an_unknown_tag_is_a_400() -> None:
    calls: list[str] = []
    router = TrafficRouter(table(0, calls))
    token = REQUEST_INFO.set({"force_tag": "latest"})
    try:
        await router.predict(np.ones((1, 3)))  # the canary at 0%: only reachable by its tag
        info = REQUEST_INFO.get()
        assert info is not None and info["served_by"] == "latest" and info["revision"] == "v2"
        REQUEST_INFO.set({"force_tag": "v1"})  # a revision name works too
        await router.predict(np.ones((1, 3)))
        REQUEST_INFO.set({"force_tag": "canary"})
        with pytest.raises(
            InvalidInput, match="no predictor revision tagged 'canary' here; tags: prev, latest"
        ):
            await router.predict(np.ones((1, 3)))
    finally:
        REQUEST_INFO.reset(token)
    assert calls == ["v2", "v1"]


async def test_a_revision_not_up_yet_gets_no_weighted_traffic() -> None:
    calls: list[str] = []
    revs = table(50, calls)
    revs[1].ready = False
    router = TrafficRouter(revs)
    for _ in range(50):
        await router.predict(np.ones((1, 3)))
    assert set(calls) == {"v1"}
    revs[1].ready = True
    for _ in range(200):
        await router.predict(np.ones((1, 3)))
    assert "v2" in calls


async def test_a_gone_revision_is_retried_on_the_other_and_marked_down() -> None:
    calls: list[str] = []

    async def gone(batch: Any) -> Any:
        calls.append("v1-gone")
        raise RevisionUnavailable("deployment deleted")

    revs = [Revision("prev", "v1", 100, gone), Revision("latest", "v2", 0, answering(0.2, calls, "v2"))]
    router = TrafficRouter(revs)
    down: list[str] = []
    router.on_unavailable = lambda rev: down.append(rev.name)  # the ingress re-watches readiness
    out = await router.predict(np.ones((2, 3)))
    assert out.shape == (2, 2) and calls == ["v1-gone", "v2"]
    assert revs[0].ready is False and down == ["v1"]
    await router.predict(np.ones((1, 3)))  # v1 is down now: v2 serves (the only one up)
    assert calls[-1] == "v2"


async def test_set_revisions_swaps_the_table_in_one_step() -> None:
    calls: list[str] = []
    router = TrafficRouter(table(0, calls))
    await router.predict(np.ones((1, 3)))
    router.set_revisions(table(100, calls))
    await router.predict(np.ones((1, 3)))
    assert calls == ["v1", "v2"]
    assert [r["percent"] for r in router.to_json()["traffic"]] == [0, 100]
    with pytest.raises(ValueError):
        router.set_revisions([])


def test_agreement_compares_decisions() -> None:
    assert agreement(np.array([[0.9, 0.1], [0.4, 0.6]]), np.array([[0.8, 0.2], [0.7, 0.3]])) == (2, 1)
    assert agreement(np.array([1.0, 2.0]), np.array([1.0000001, 2.5])) == (2, 1)
    assert agreement(np.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 5]])) == (2, 1)
    assert agreement(np.zeros((3, 2)), np.zeros((3, 3))) == (3, 0)  # shapes differ: no row agrees


async def test_shadow_counts_agreement_and_never_changes_the_response() -> None:
    calls: list[str] = []
    revs = [
        Revision("prev", "v1", 100, answering(0.9, calls, "v1")),
        Revision("latest", "v2", 0, answering(0.3, calls, "v2")),  # picks the other class
    ]
    seen: list[tuple[str, int, int]] = []
    shadow = Shadow("prev", revs[1], queue_size=8, on_compared=lambda k, r, a: seen.append((k, r, a)))
    router = TrafficRouter(revs, shadow)
    out = await router.predict(np.ones((4, 3)))
    assert out[0, 0] == 0.9  # the served answer, not the shadow's
    for _ in range(20):
        await asyncio.sleep(0)
    stats = router.to_json()["shadow"]
    assert stats["served"] == "prev" and stats["shadow"] == "v2"
    assert stats["mirrored"] == 1 and stats["rows"] == 4 and stats["agreement"] == 0.0
    assert seen == [("compared", 4, 0)]
    assert calls == ["v1", "v2"]


async def test_a_full_shadow_queue_drops_copies_without_waiting() -> None:
    release = asyncio.Event()

    async def slow(batch: Any) -> Any:
        await release.wait()
        return np.zeros((len(batch), 2))

    revs = [Revision("prev", "v1", 100, answering(0.9)), Revision("latest", "v2", 0, slow)]
    shadow = Shadow("prev", revs[1], queue_size=2, workers=1)
    router = TrafficRouter(revs, shadow)
    for _ in range(10):
        await asyncio.wait_for(router.predict(np.ones((1, 3))), 1.0)  # never held by the shadow
    await asyncio.sleep(0)
    assert shadow.stats.dropped >= 7
    release.set()
    for _ in range(50):
        await asyncio.sleep(0)
    assert shadow.stats.mirrored + shadow.stats.dropped == 10
    shadow.close()


async def test_the_cold_start_bound_answers_503_with_a_clear_message() -> None:
    async def never(batch: Any) -> Any:
        await asyncio.sleep(30)

    router = TrafficRouter([Revision("latest", "p", 100, never, cold_start_s=0.05)])
    with pytest.raises(ColdStartTimeout, match="cold-start bound of 0.05s") as info:
        await router.predict(np.ones((1, 3)))
    assert info.value.status_code == 503


async def test_responses_say_which_revision_served_and_a_header_forces_one() -> None:
    calls: list[str] = []
    router = TrafficRouter(table(0, calls))
    pipe = ModelPipeline("m", predict=router.predict, status=router.to_json)
    transport = httpx.ASGITransport(app=create_app({"m": pipe}))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        body = {"instances": [[1.0, 2.0, 3.0]]}
        plain = await client.post("/v1/models/m:predict", json=body)
        assert plain.headers["isvc-tag"] == "prev" and plain.headers["isvc-revision"] == "v1"
        forced = await client.post("/v1/models/m:predict", json=body, headers={"isvc-tag": "latest"})
        assert forced.headers["isvc-tag"] == "latest" and forced.json()["predictions"][0][0] == 0.2
        bad = await client.post("/v1/models/m:predict", json=body, headers={"isvc-tag": "nope"})
        assert bad.status_code == 400 and "no predictor revision tagged 'nope'" in bad.json()["error"]
        status = (await client.get("/v1/models/m")).json()
        assert [t["tag"] for t in status["traffic"]] == ["prev", "latest"]


async def test_a_failing_counter_does_not_stop_the_shadow() -> None:
    def broken(kind: str, rows: int, agreed: int) -> None:
        raise ValueError("a metric refused the value")

    revs = [Revision("prev", "v1", 100, answering(0.9)), Revision("latest", "v2", 0, answering(0.8))]
    shadow = Shadow("prev", revs[1], workers=1, on_compared=broken)
    router = TrafficRouter(revs, shadow)
    for _ in range(5):
        await router.predict(np.ones((1, 3)))
        for _ in range(5):
            await asyncio.sleep(0)
    assert shadow.stats.mirrored == 5 and shadow.stats.agreed_rows == 5
    shadow.close()
