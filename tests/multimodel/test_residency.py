"""pipelines.multimodel.residency: a replica's LRU record, as Ray's multiplexer drives it."""

from __future__ import annotations

import pytest

from pipelines.multimodel import EVICTED, FAILED, UNLOADED, Residency


def load(r: Residency, name: str) -> str | None:
    """What Ray's wrapper does on a miss: evict the LRU one when full, then load."""
    victim = r.next_eviction()
    if victim is not None:
        r.evicted(victim)
    r.begin_load(name)
    r.loaded(name, 0.001)
    return victim


def test_lru_order_hits_and_evictions():
    t = iter(range(100))
    r = Residency(cap=3, clock=lambda: float(next(t)))
    for name in "abc":
        assert load(r, name) is None
    r.hit("a")  # a becomes the most recently used: b is next out
    assert r.names() == ["b", "c", "a"] and r.next_eviction() == "b"
    assert load(r, "d") == "b"
    assert r.names() == ["c", "a", "d"] and len(r) == 3
    assert r.why_not("b") == EVICTED and r.why_not("a") is None and r.why_not("zz") is None
    assert (r.loads, r.evictions, r.unloads) == (4, 1, 0)
    assert list(r.recent_evictions) == ["b"]
    r.hit("a")
    r.hit("a")
    assert r.models["a"].hits == 3


def test_unload_reload_and_failures():
    r = Residency(cap=2)
    load(r, "a")
    load(r, "b")
    assert r.unloaded("a") and not r.unloaded("a") and not r.evicted("a")
    assert r.why_not("a") == UNLOADED and r.next_eviction() is None
    load(r, "a")  # loaded again: its old reason is gone
    assert r.why_not("a") is None and r.names() == ["b", "a"]
    r.begin_load("c")
    assert r.snapshot("r1")["loading"] == ["c"]
    r.load_failed("c", "StorageError: no model.joblib")
    assert r.why_not("c") == f"{FAILED}: StorageError: no model.joblib"
    assert r.snapshot("r1")["loading"] == []


def test_the_cap_is_an_invariant():
    r = Residency(cap=1)
    load(r, "a")
    r.begin_load("b")
    with pytest.raises(AssertionError, match="over the cap of 1"):
        r.loaded("b", 0.0)  # Ray must have evicted first


def test_snapshot_is_json_in_lru_order():
    r = Residency(cap=2)
    load(r, "a")
    load(r, "b")
    r.hit("a")
    snap = r.snapshot("replica-x")
    assert snap["replica"] == "replica-x" and snap["cap"] == 2
    assert [m["name"] for m in snap["models"]] == ["b", "a"]
    assert snap["models"][1]["hits"] == 1 and snap["models"][0]["load_ms"] == 1.0
    assert (snap["loads"], snap["evictions"], snap["unloads"], snap["gone"]) == (2, 0, 0, {})
    r.unloaded("b")
    assert r.snapshot("replica-x")["gone"]["b"]["reason"] == UNLOADED
