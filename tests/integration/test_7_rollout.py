"""Canary steps and scale to zero on the session's real Ray cluster, under load.

The routed layout (``isvc render``), ``serve deploy`` per step, 16 keep-alive clients POSTing
without pause: a new revision at 20 % (its application starts under load), 0 % (the rollback
weight), 100 %, then promote (the old revision's application is deleted) — not one request may
fail; the 20 % split holds within ±3 points over 2,000 requests; shadow copies are compared;
the ingress is never restarted. Then a ``minReplicas: 0`` predictor: 0 → 1 (the first request
after idle is held and answered) → N under load → 0. The same code is ``benchmarks/rollout.py``.
"""

from __future__ import annotations

from typing import Any

import httpx

from benchmarks import rollout as ro
from tests.integration.cluster import Cluster


def ingress_replica_ids(cluster: Cluster) -> set[str]:
    app = ro.serve_status(cluster).get("ml-serving-churn-classifier") or {}
    replicas = (app.get("deployments") or {}).get("ingress", {}).get("replicas") or []
    return {r["replica_id"] for r in replicas}


def test_canary_steps_under_load_fail_no_request(cluster: Cluster) -> None:
    ro.deploy(cluster, ro.churn_isvc(ro.V1))
    before = ingress_replica_ids(cluster)
    res: dict[str, Any] = ro.rollout(cluster, concurrency=16, hold_s=1.0, steps=ro.SHORT_ROLLOUT)
    failures = {step: r["failed"] for step, r in res["steps"].items() if r["failures"]}
    assert res["failures"] == 0, failures
    assert all(r["ok"] > 0 for r in res["steps"].values()), res["steps"]
    # served by: 0 % → only prev; 100 % → only latest; after the promote the one revision is latest
    assert set(res["steps"]["canary 0% (rollback)"]["served_after"]) == {"prev"}
    assert set(res["steps"]["canary 100%"]["served_after"]) == {"latest"}
    assert set(res["steps"]["promote v2"]["served_after"]) == {"latest"}
    split = res["split"]
    assert split["requests"] >= 2000 and abs(split["latest_share"] - 20) <= 3, split
    shadow = res["shadow"]
    assert shadow["served"] == "prev" and shadow["mirrored"] > 0, shadow
    assert 0 < shadow["agreement"] <= 1  # v2 is a different fit of the same data
    assert ingress_replica_ids(cluster) == before  # weights, promote: no ingress restart
    # a request header forces a revision; an unknown tag is a 400 naming the tags
    with httpx.Client(base_url=cluster.base, timeout=30) as c:
        forced = c.post(ro.PREDICT, json=ro.BODY, headers={"isvc-tag": "prev"})
        assert forced.status_code == 400 and "tags: latest" in forced.json()["error"]
        plain = c.post(ro.PREDICT, json=ro.BODY)
        assert plain.status_code == 200 and plain.headers["isvc-tag"] == "latest"


def test_scale_to_zero_then_the_first_request_is_held_and_answered(cluster: Cluster) -> None:
    out = ro.scale_to_zero(cluster, max_load_s=120)
    assert out["cold_status"] == 200, out  # held until a replica was up, not a 503
    assert out["after_cold_replicas"] >= 1
    # the ingress kept a prestarted worker (pipelines/_ray/warm.py); the replica started on it
    assert out["cold_on_warm_worker"], out
    assert out["peak_started_replicas"] >= 2, out  # N: the autoscaler started more under load
    assert out["load_failures"] == 0, out
    assert out["back_to_zero_s"] >= 0  # wait_for raised if it never got back to zero
    print(f"cold start (zero → first answer): {out['cold_start_s']:.1f} s; {out}")


def test_explain_keeps_answering_while_a_promote_replaces_the_explainer(cluster: Cluster) -> None:
    try:
        out = ro.explain_through_promote(cluster)
    finally:  # leave the service as the tests before left it: no explainer application
        ro.deploy(cluster, ro.churn_isvc(ro.V1))
    route = "/v1/models/churn-classifier:explain"  # the explainer's own application answers it
    (before,), (after,) = out["explainers_before"], out["explainers_after"]
    assert before[1] == after[1] == route and before[0] != after[0], out  # a new application
    answers = out["answers"]
    assert all(key.endswith(": 200") for key in answers), answers  # not one failed explanation
    assert answers.get("promote v2: 200", 0) > 0 and answers.get("old applications drained: 200", 0) > 0
