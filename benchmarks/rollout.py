"""Rollouts on a real Ray cluster, under load: a canary's steps with every request counted,
and scale to zero (cold start).

The canary runs the routed layout (``isvc render``; :mod:`pipelines.plan.layout`), as a user
does: each step edits the InferenceService, renders it and ``serve deploy``s the result, while
``concurrency`` keep-alive clients POST ``:predict`` without pause. Steps (:data:`ROLLOUT`): v2
as a 20 % canary (with shadow copies) → 0 % → 100 % → promote (v2 becomes the predictor) → v1
back as a 20 % canary → 0 % → removed (a rollback). Every non-2xx answer and connection error
is counted per step.

Scale to zero: a ``minScale: 0`` predictor is left idle until Ray has stopped its last replica;
then one request is timed (zero → first answer), then load drives it to more replicas, then
idle takes it back to zero.

    python benchmarks/rollout.py            # part of `make bench`; prints a table
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.cli.commands import render_serve_config  # noqa: E402
from pipelines.spec import parse_isvc  # noqa: E402

NAME = "churn-classifier"
PREDICT = f"/v1/models/{NAME}:predict"
STATUS = f"/v1/models/{NAME}"
BODY = {"instances": [[41, 30, 120.5, 6, 21]]}
V1, V2 = "artifacts/churn/predictor", "artifacts/churn/predictor-v2"


def predictor(uri: str) -> dict[str, Any]:
    return {
        "sklearn": {
            "storageUri": uri,
            "args": ["--method=predict_proba"],
            "resources": {"requests": {"cpu": "250m"}},
        }
    }


def churn_isvc(
    stable: str,
    new: str | None = None,
    percent: int | None = None,
    shadow: bool = False,
    annotations: dict[str, str] | None = None,
    predictor_fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The churn InferenceService (transformer + sklearn predictor), optionally with a canary."""
    ann = {"serving.kserve.io/deploymentMode": "Serverless", **(annotations or {})}
    if shadow:
        ann["isvc.dev/shadow"] = "true"
    pred: dict[str, Any] = {"minReplicas": 1, **(predictor_fields or {}), **predictor(stable)}
    if new is not None:
        pred["newModel"] = predictor(new)
    if percent is not None:
        pred["canaryTrafficPercent"] = percent
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": NAME, "namespace": "ml-serving", "annotations": ann},
        "spec": {
            "transformer": {
                "custom": {
                    "class": "transformers_.churn:ChurnTransformer",
                    "storageUri": "artifacts/churn/transformer",
                    "resources": {"requests": {"cpu": "250m"}},
                }
            },
            "predictor": pred,
        },
    }


def serve_config(doc: dict[str, Any], port: int) -> dict[str, Any]:
    """What ``isvc render`` writes for ``doc`` (the routed layout), on ``port``."""
    return render_serve_config([({}, parse_isvc(copy.deepcopy(doc)))], port=port, layout="routed")


def traffic_of(config: dict[str, Any]) -> list[tuple[str, str, float]]:
    """The (tag, app, percent) table the rendered ingress ``user_config`` asks for."""
    ingress = config["applications"][-1]
    table = ingress["deployments"][0]["user_config"]["predictors"]
    return [(e["tag"], e["app"], float(e["percent"])) for e in table]


@dataclass
class StepCounts:
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    tags: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    per_second: dict[int, Counter[str]] = field(default_factory=dict)
    """Answered requests by wall-clock second and side, to trace a skewed split afterwards."""

    @property
    def failures(self) -> int:
        return sum(self.failed.values())


class Load:
    """``concurrency`` keep-alive clients POSTing ``:predict`` in a thread, counted per step."""

    def __init__(self, base: str, concurrency: int = 16, path: str = PREDICT) -> None:
        self.base, self.concurrency, self.path = base, concurrency, path
        self.steps: dict[str, StepCounts] = {}
        self.step = "warm-up"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._started = time.monotonic()

    def mark(self, step: str) -> None:
        now = time.monotonic()
        self.current.seconds += now - self._started
        self._started, self.step = now, step

    @property
    def current(self) -> StepCounts:
        return self.steps.setdefault(self.step, StepCounts())

    async def _client(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            counts = self.current
            try:
                r = await client.post(self.path, json=BODY)
            except httpx.HTTPError as exc:
                counts.failed[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
                continue
            if 200 <= r.status_code < 300:
                counts.ok += 1
                tag = r.headers.get("isvc-tag", "?")
                counts.tags[tag] += 1
                counts.per_second.setdefault(int(time.time()), Counter())[tag] += 1
            else:
                counts.failed[f"HTTP {r.status_code}: {r.text[:120]}"] += 1

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base, timeout=60, limits=limits) as client:
            await asyncio.gather(*(self._client(client) for _ in range(self.concurrency)))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mark("done")
        self._stop.set()
        self._thread.join(timeout=90)
        self.steps.pop("done", None)


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.5) -> float:
    """Poll ``check`` until true; the seconds it took (TimeoutError naming ``what``)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{what}: not after {timeout_s:g}s")
        time.sleep(every_s)
    return time.monotonic() - start


def dashboard(cluster: Any) -> Any:
    from pipelines.control import Dashboard

    if getattr(cluster, "_dashboard", None) is None:
        cluster._dashboard = Dashboard(cluster.env.get("RAY_DASHBOARD_ADDRESS"))
    return cluster._dashboard


def serve_status(cluster: Any) -> dict[str, Any]:
    """Applications by name, from the dashboard's REST API (no CLI start-up per poll)."""
    apps: dict[str, Any] = dashboard(cluster).applications()
    return apps


def apps_running(cluster: Any, names: set[str], exact: bool = False) -> bool:
    apps = serve_status(cluster)
    if exact and set(apps) != names:
        return False
    return all((apps.get(n) or {}).get("status") == "RUNNING" for n in names)


def table_applied(base: str, expected: list[tuple[str, str, float]]) -> bool:
    try:
        body = httpx.get(base + STATUS, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    got = [(t["tag"], t["revision"], float(t["percent"])) for t in body.get("traffic", [])]
    return got == expected and all(t["ready"] for t in body["traffic"])


def deploy(cluster: Any, doc: dict[str, Any], timeout_s: float = 240) -> dict[str, Any]:
    """``serve deploy`` the rendering of ``doc``; wait until its applications run and the
    ingress has applied its traffic table. Returns the rendered config."""
    config = serve_config(doc, cluster.http_port)
    path = cluster.cwd / "rollout-step.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    for attempt in range(4):  # a dashboard starved of CPU can refuse a connection for a while
        done = cluster.cli("serve", "deploy", str(path))
        if done.returncode == 0 or "Failed to connect to Ray" not in done.stderr or attempt == 3:
            break
        time.sleep(5)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    names = {a["name"] for a in config["applications"]}
    wait_for(lambda: apps_running(cluster, names), timeout_s, f"applications {sorted(names)} running")
    expected = traffic_of(config)
    wait_for(lambda: table_applied(cluster.base, expected), 60, f"traffic {expected} applied")
    return config


ROLLOUT = [
    ("canary v2 20%", dict(stable=V1, new=V2, percent=20, shadow=True)),
    ("canary 0% (rollback)", dict(stable=V1, new=V2, percent=0, shadow=True)),
    ("canary 100%", dict(stable=V1, new=V2, percent=100, shadow=True)),
    ("promote v2", dict(stable=V2)),
    ("canary v1 20%", dict(stable=V2, new=V1, percent=20)),
    ("canary 0%", dict(stable=V2, new=V1, percent=0)),
    ("rollback: remove v1", dict(stable=V2)),
]
"""The steps after the first deploy of v1 alone: every kwarg set of :func:`churn_isvc`."""
SHORT_ROLLOUT = ROLLOUT[:4]
"""20 % (a new revision's application starts under load) → 0 % → 100 % → promote (the old
revision's application is deleted): every kind of step, in the integration test's time."""


def rollout(
    cluster: Any,
    concurrency: int = 16,
    hold_s: float = 3.0,
    steps: list[tuple[str, dict[str, Any]]] | None = None,
    split_requests: int = 2000,
) -> dict[str, Any]:
    """Deploy v1, then run ``steps`` (default :data:`ROLLOUT`) under load.

    Per step: seconds until applied, requests ok / failed while it was being applied and
    after, and which tag served the requests after it was applied. After the first 20 % step
    the load runs on until ``split_requests`` were answered under that table (the split share).
    """
    steps = steps or ROLLOUT
    deploy(cluster, churn_isvc(V1))
    results: dict[str, Any] = {"steps": {}, "shadow": None, "split": None}
    with Load(cluster.base, concurrency) as load:
        wait_for(lambda: load.current.ok > 20, 60, "load running")
        for step, kwargs in steps:
            load.mark(step)
            started = time.monotonic()
            deploy(cluster, churn_isvc(**kwargs))
            results["steps"][step] = {"applied_s": time.monotonic() - started}
            load.mark(step + " (applied)")
            time.sleep(hold_s)
            percent = kwargs.get("percent")
            if results["split"] is None and kwargs.get("new") and percent not in (None, 0, 100):
                wait_for(lambda: load.current.ok >= split_requests, 300, f"{split_requests} requests")
                tags = load.current.tags
                results["split"] = {
                    "percent": percent,
                    "latest_share": 100 * tags["latest"] / sum(tags.values()),
                }
                results["split"]["requests"] = sum(tags.values())
                results["split"]["latest_per_second"] = [  # [unix second, latest, all]
                    [t, c["latest"], sum(c.values())] for t, c in sorted(load.current.per_second.items())
                ]
            if kwargs.get("shadow") and results["shadow"] is None:
                results["shadow"] = httpx.get(cluster.base + STATUS, timeout=5).json().get("shadow")
        load.mark("old applications drained")
        names = {a["name"] for a in serve_config(churn_isvc(**steps[-1][1]), 0)["applications"]}
        started = time.monotonic()
        wait_for(lambda: apps_running(cluster, names, exact=True), 120, "old applications gone")
        results["steps"]["old applications drained"] = {"applied_s": time.monotonic() - started}
        load.mark("old applications drained (applied)")
        time.sleep(1)
    for step, res in results["steps"].items():
        during, after = load.steps.get(step, StepCounts()), load.steps.get(step + " (applied)", StepCounts())
        res.update(
            ok=during.ok + after.ok,
            failures=during.failures + after.failures,
            failed=dict(during.failed + after.failed),
            served_after=dict(after.tags),
        )
    results["warm_up_failures"] = load.steps.get("warm-up", StepCounts()).failures
    results["failures"] = results["warm_up_failures"] + sum(r["failures"] for r in results["steps"].values())
    return results


ZERO_ANNOTATIONS = {
    "autoscaling.knative.dev/window": "20s",
    "autoscaling.knative.dev/scale-down-delay": "4s",
    "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "2s",
    "isvc.dev/coalesce-window-ms": "0",
}
"""Short Knative delays, so the test sees 0 → 1 → N → 0 in seconds (the ingress keeps ≥ 1);
no coalescing, so each request is one ongoing call at the predictor (the load it scales on)."""
ZERO_PREDICTOR = {
    "minReplicas": 0,
    "maxReplicas": 3,
    "scaleTarget": 1,
    "batcher": {"maxBatchSize": 64, "maxLatency": 100},
}
"""The predictor scales 0..3 at one ongoing request per replica (its own fields: the ingress
stays at 1); its batcher holds each request ~100 ms, so load shows up as ongoing requests there."""


def predictor_replicas(cluster: Any, app: str, states: tuple[str, ...] = ("RUNNING",)) -> int:
    return len(predictor_pids(cluster, app, states))


def predictor_pids(cluster: Any, app: str, states: tuple[str, ...] = ("RUNNING",)) -> list[int]:
    dep = (serve_status(cluster).get(app) or {}).get("deployments", {}).get("predictor") or {}
    return [int(r.get("pid") or 0) for r in dep.get("replicas") or [] if r.get("state") in states]


def started_before(pids: list[int], wall: float) -> bool:
    """Whether every process in ``pids`` (on this machine) was started before ``wall``: a
    replica on a warm worker (pipelines/_ray/warm.py) runs in a process older than its request."""
    import psutil

    return bool(pids) and all(psutil.Process(pid).create_time() < wall for pid in pids)


_LOG_TIME = re.compile(r"^\w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")
COLD_START_EVENTS = {
    "asked": ("controller", "Adding 1 replica to Deployment(name='predictor'"),
    "initializing": ("replica", "Started initializing replica."),
    "initialized": ("replica", "Finished initializing replica."),
    "routable": ("ingress", "Got updated replicas for Deployment(name='predictor'"),
}
"""Cold-start phases as Ray Serve logs them: the controller asks for a replica; the replica's
process is up and its constructor starts (the worker start and ``import ray.serve`` + isvc lie
before); the constructor (model load) ends; the ingress's handle learns of the replica."""


def cold_start_phases(logs: Path, since: float) -> dict[str, float]:
    """Seconds from ``since`` (wall clock) to the first of each :data:`COLD_START_EVENTS` at or
    after it, read from the Serve logs under ``logs`` (``<ray temp>/session_latest/logs``)."""
    files = {
        "controller": sorted(logs.glob("serve/controller_*.log")),
        "replica": sorted(logs.glob("serve/replica_*predictor*.log")),
        "ingress": sorted(logs.glob("serve/replica_*ingress*.log")),
    }
    found: dict[str, float] = {}
    for event, (where, text) in COLD_START_EVENTS.items():
        times = []
        for path in files[where]:
            for line in path.read_text(errors="replace").splitlines():
                m = _LOG_TIME.match(line)
                if m and text in line:
                    t = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1e3
                    if t >= since - 0.01:
                        times.append(t)
        if times:
            found[event] = round(min(times) - since, 2)
    return found


def scale_to_zero(cluster: Any, max_load_s: float = 120.0, logs: Path | None = None) -> dict[str, Any]:
    """0 → 1 → N → 0 with the seconds each took, and the cold start (zero → first answer);
    with ``logs`` (the cluster's Ray log folder) also the cold start's phases."""
    doc = churn_isvc(V1, annotations=ZERO_ANNOTATIONS, predictor_fields=ZERO_PREDICTOR)
    config = deploy(cluster, doc)
    app = config["applications"][0]["name"]
    out: dict[str, Any] = {}
    out["idle_to_zero_s"] = wait_for(lambda: predictor_replicas(cluster, app) == 0, 180, "scaled to zero")
    wall, started = time.time(), time.monotonic()
    r = httpx.post(cluster.base + PREDICT, json=BODY, timeout=120)
    out["cold_start_s"] = time.monotonic() - started
    out["cold_status"] = r.status_code
    if logs is not None:
        out["cold_start_phases"] = cold_start_phases(logs, wall)
    pids = predictor_pids(cluster, app)
    out["after_cold_replicas"] = len(pids)
    out["cold_on_warm_worker"] = started_before(pids, wall)
    peak = started_peak = 0
    with Load(cluster.base, 12) as load:
        started = time.monotonic()
        while time.monotonic() - started < max_load_s and peak < 2:
            peak = max(peak, predictor_replicas(cluster, app))
            started_peak = max(started_peak, predictor_replicas(cluster, app, ("STARTING", "RUNNING")))
            time.sleep(0.5)
        out["scale_up_s"] = time.monotonic() - started
    out["peak_replicas"] = peak
    out["peak_started_replicas"] = started_peak
    """Replicas started or running at once: the autoscaler's N, whether or not the load lasted
    until the new ones were up (on a busy 2-core machine a replica takes 15-30 s to start)."""
    out["load_failures"] = sum(c.failures for c in load.steps.values())
    out["load_ok"] = sum(c.ok for c in load.steps.values())
    out["back_to_zero_s"] = wait_for(lambda: predictor_replicas(cluster, app) == 0, 180, "back to zero")
    return out


EXPLAINER = {
    "shap": {
        "type": "KernelShap",
        "storageUri": "artifacts/churn/explainer",
        "config": {"background_size": "20"},
        "resources": {"requests": {"cpu": "250m"}},
    }
}
"""A cheap explainer for :func:`explain_through_promote`."""
EXPLAIN = "/v1/models/churn-classifier:explain"
INSTANCE = {"age": 30, "tenure_days": 20, "monthly_spend": 150.0, "support_tickets": 9, "last_login_days": 40}


def explain_through_promote(cluster: Any, clients: int = 2, hold_s: float = 3.0) -> dict[str, Any]:
    """``:explain`` without pause while v2 goes to 100 % and is promoted. The promote replaces
    the explainer's application (a new hash, on the same route): its requests must keep being
    answered. Returns the explainer applications before and after, and the answers by step."""

    def with_explainer(**kw: Any) -> dict[str, Any]:
        doc = churn_isvc(**kw)
        doc["spec"]["explainer"] = copy.deepcopy(EXPLAINER)
        return doc

    def explainers(config: dict[str, Any]) -> list[tuple[str, Any]]:
        return [
            (a["name"], a.get("route_prefix")) for a in config["applications"] if "-explainer-" in a["name"]
        ]

    first = deploy(cluster, with_explainer(stable=V1))
    url = cluster.base + EXPLAIN
    wait_for(
        lambda: httpx.post(url, json={"instances": [INSTANCE]}, timeout=30).status_code == 200, 120, "explain"
    )
    answers: Counter[str] = Counter()
    stop, step = threading.Event(), ["before"]

    def explain_loop() -> None:
        with httpx.Client(timeout=60) as c:
            while not stop.is_set():
                try:
                    r = c.post(url, json={"instances": [INSTANCE]})
                    answers[
                        f"{step[0]}: {r.status_code}" + ("" if r.status_code == 200 else f" {r.text[:100]}")
                    ] += 1
                except httpx.HTTPError as exc:
                    answers[f"{step[0]}: {type(exc).__name__}"] += 1

    threads = [threading.Thread(target=explain_loop, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(hold_s)
    last = first
    for name, kw in (("canary 100%", dict(stable=V1, new=V2, percent=100)), ("promote v2", dict(stable=V2))):
        step[0] = name
        last = deploy(cluster, with_explainer(**kw))
        time.sleep(hold_s)
    step[0] = "old applications drained"
    names = {a["name"] for a in last["applications"]}
    wait_for(lambda: apps_running(cluster, names, exact=True), 120, "old applications gone")
    time.sleep(hold_s)
    stop.set()
    for t in threads:
        t.join(timeout=90)
    return {
        "explainers_before": explainers(first),
        "explainers_after": explainers(last),
        "answers": dict(answers),
    }


@contextlib.contextmanager
def bench_cluster() -> Iterator[Any]:
    """A fresh local Ray cluster (the integration tier's recipe) in a folder holding ``artifacts/``."""
    from tests.integration.cluster import start_cluster

    with tempfile.TemporaryDirectory(prefix="isvc-rollout-") as tmp:
        cwd = Path(tmp)
        (cwd / "artifacts").symlink_to(ROOT / "artifacts")
        with start_cluster(cwd) as cluster:
            yield cluster


def render(rollout_res: dict[str, Any], zero: dict[str, Any]) -> str:
    lines = [
        "## Canary rollout under load (c=16 keep-alive clients, routed layout, `serve deploy` per step)",
        "| step | applied in | requests ok | failed | served by |",
        "|---|---|---|---|---|",
    ]
    for step, r in rollout_res["steps"].items():
        tags = ", ".join(f"{k} {v}" for k, v in sorted(r.get("served_after", {}).items()))
        lines.append(
            f"| {step} | {r['applied_s']:.1f} s | {r.get('ok', 0)} | {r.get('failures', 0)} | {tags} |"
        )
    split = rollout_res.get("split") or {}
    lines.append(
        f"\nfailed requests, all steps: {rollout_res['failures']}; split at {split.get('percent')} %: "
        f"latest served {split.get('latest_share', float('nan')):.1f} % of {split.get('requests')} requests"
    )
    if rollout_res.get("shadow"):
        s = rollout_res["shadow"]
        lines.append(
            f"shadow v1→v2: {s['mirrored']} copies, {s['dropped']} dropped, agreement {s['agreement']}"
        )
    lines += [
        "",
        "## Scale to zero (predictor minReplicas 0, maxReplicas 3, scaleTarget 1, short Knative delays)",
        f"- idle → zero replicas: {zero['idle_to_zero_s']:.1f} s",
        f"- zero → first answer (cold start, model in the node cache): {zero['cold_start_s']:.2f} s "
        f"(HTTP {zero['cold_status']}; goal ≤ 5 s: {'PASS' if zero['cold_start_s'] <= 5 else 'FAIL'}; "
        f"replica on a warm worker: {'yes' if zero['cold_on_warm_worker'] else 'no'})",
        "  - phases, seconds after the request (Ray Serve's logs): "
        + ", ".join(f"{k} +{v:.2f}" for k, v in (zero.get("cold_start_phases") or {}).items()),
        f"- under load (c=12): {zero['peak_replicas']} replicas after {zero['scale_up_s']:.1f} s, "
        f"{zero['load_ok']} ok, {zero['load_failures']} failed requests",
        f"- idle again → zero: {zero['back_to_zero_s']:.1f} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds of load after each step is applied")
    args = parser.parse_args(argv)
    with bench_cluster() as cluster:
        res = rollout(cluster, args.concurrency, args.hold)
        zero = scale_to_zero(cluster, logs=Path(cluster.env["RAY_TMPDIR"]) / "session_latest" / "logs")
    print(render(res, zero))
    return 0


if __name__ == "__main__":
    sys.exit(main())
