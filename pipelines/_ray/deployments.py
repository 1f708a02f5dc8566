"""The Ray Serve deployments: predictor replicas, the ingress replica, explainer replicas."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from pipelines._ray.warm import WarmWorkers
from pipelines.batching import Failure, InlineOrThread, predict_many
from pipelines.dataplane import create_app, load_predictor, load_transformer, predictor_metadata
from pipelines.dataplane.explain import load_explainer
from pipelines.dataplane.metrics import recorder
from pipelines.plan import PredictorNode, ServicePlan
from pipelines.routing import (
    LocalSink,
    PredictorSink,
    Revision,
    Shadow,
    TrafficRouter,
    assemble,
    coalesced,
    explainer_front,
    served_models,
)
from pipelines.settings import slow_settings
from pipelines.shared_work import detached

__all__ = [
    "ExplainerAppDeployment",
    "ExplainerDeployment",
    "IngressDeployment",
    "PredictorDeployment",
    "RoutedIngressDeployment",
    "PREDICTOR_MAX_BATCH",
]

logger = logging.getLogger("isvc.app")

PREDICTOR_MAX_BATCH = 64
"""Calls the predictor replica merges into one model call when no ``batcher`` is set."""


def _rows(batches: list[Any]) -> int:
    """``batcher.maxBatchSize`` counts instances (rows), as KServe documents it."""
    return sum(len(b) for b in batches)


@serve.deployment
class PredictorDeployment:
    """One model runtime replica; merges concurrent callers' arrays (``@serve.batch``).

    With a ``batcher``, a merged call holds at most ``maxBatchSize`` rows (one caller's
    larger batch runs alone) and waits up to ``maxLatency`` ms to fill.
    """

    def __init__(self, name: str, node: PredictorNode) -> None:
        from pipelines._ray.metrics import install

        install()
        isvc_logs_in_replica_log()
        self.name = name
        self.predictor = load_predictor(name, node)
        self._run = InlineOrThread()
        self._max_rows = node.batching.max_batch_size if node.batching else None
        if node.batching is not None:
            self.predict_rows.set_max_batch_size(node.batching.max_batch_size)
            self.predict_rows.set_batch_wait_timeout_s(node.batching.max_latency_ms / 1000)

    async def predict(self, batch: Any) -> Any:
        """Predictions for ``batch`` (array or DataFrame), or a :class:`Failure` value."""
        if self._max_rows is None:
            return await self.predict_calls(batch)
        if len(batch) >= self._max_rows:  # already a full batch: it runs alone
            recorder().rows("predictor_batch", self.name, len(batch))
            return (await self._run(predict_many, self.predictor.predict, [batch]))[0]
        return await self.predict_rows(batch)

    @serve.batch(max_batch_size=PREDICTOR_MAX_BATCH, batch_wait_timeout_s=0.0)
    async def predict_calls(self, batches: list[Any]) -> list[Any]:
        """No ``batcher``: whatever calls are waiting, merged at once."""
        recorder().rows("predictor_batch", self.name, _rows(batches))
        return await self._run(predict_many, self.predictor.predict, batches)

    @serve.batch(max_batch_size=PREDICTOR_MAX_BATCH, batch_wait_timeout_s=0.0, batch_size_fn=_rows)
    async def predict_rows(self, batches: list[Any]) -> list[Any]:
        """``batcher``: merged calls hold at most ``maxBatchSize`` rows."""
        recorder().rows("predictor_batch", self.name, _rows(batches))
        return await self._run(predict_many, self.predictor.predict, batches)

    def metadata(self) -> dict[str, Any]:
        return predictor_metadata(self.predictor)

    def check_health(self) -> None:
        if not self.predictor.ready:
            raise RuntimeError(f"predictor {self.name} is not ready")


def ingress_app(plan: ServicePlan, pipeline: Any) -> Any:
    """The V1/V2 ASGI app of an ingress replica, with the plan's in-flight, time and body limits."""
    scaling = plan.ingress.scaling
    return create_app(
        served_models(pipeline),
        max_inflight=scaling.max_ongoing_requests,
        timeout_s=scaling.timeout_s,
        max_body_bytes=plan.max_body_bytes,
    )


def isvc_logs_in_replica_log() -> None:
    """isvc's own loggers (``isvc.*``) write into this replica's Serve log at INFO, beside Ray's
    lines: traffic tables, revisions up or gone, warm workers. Without this they reached no file
    below WARNING, and a canary split could not be traced afterwards."""
    isvc, serve_logger = logging.getLogger("isvc"), logging.getLogger("ray.serve")
    if isvc.handlers or not serve_logger.handlers:
        return
    for handler in serve_logger.handlers:
        isvc.addHandler(handler)
    isvc.setLevel(logging.INFO)
    isvc.propagate = False


def lowest_cpu_priority() -> None:
    """The calling thread (and the threads it starts later) gets the CPU only when nothing else
    wants it: Linux ``SCHED_IDLE``, else ``nice 19``. An explainer replica's search thread runs
    so (its model calls too, with the model in the replica), so on a shared node the CPU goes to
    predictions first and explanations take what is left (measured in
    ``benchmarks/explain.py``: predict p99 while explaining). The replica's event loop, which
    receives ``:explain`` requests and answers them, keeps its normal priority."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: this thread, on Linux
    except (AttributeError, OSError):
        try:
            os.setpriority(os.PRIO_PROCESS, 0, 19)
        except OSError:
            pass


def at_route(app: Any, path: str) -> Any:
    """``app`` served at the root of its own Serve application: a request for the application's
    route itself (Serve gives ``root_path`` = the route prefix) reaches ``app`` as ``path``; a
    longer one (``.../more``) reaches it as ``path`` + the rest, which no route matches (404)."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            root, full = scope.get("root_path", ""), scope["path"]
            rest = full[len(root) :] if root and full.startswith(root) else full
            target = path if rest in ("", "/") or full == path else path + rest
            scope = {**scope, "root_path": "", "path": target, "raw_path": target.encode()}
        await app(scope, receive, send)

    return asgi


class ExplainerReplica:
    """One explainer replica: preprocess → predictor (whole sampling batches) → explanation.

    It loads the transformer's ``preprocess`` itself, so explanations are in the caller's
    features, and calls the predictor deployment through its handle (a local copy of the
    model when the service is collocated, or when the explainer reads the model, TreeShap).
    """

    async def __init__(
        self, plan: ServicePlan, predictor: DeploymentHandle | None = None, predictor_app: str | None = None
    ) -> None:
        from pipelines._ray.metrics import install
        from pipelines._ray.sinks import HandleSink

        install()  # its :explain requests and explanations are counted here
        if predictor is None and predictor_app is not None and plan.explainer is not None:
            if plan.explainer.model_access == "deployment":  # its own app: the (stable) predictor's app
                predictor = serve.get_deployment_handle("predictor", predictor_app, _check_exists=False)
        isvc_logs_in_replica_log()
        self.name = plan.name
        self.plan = plan
        sink = HandleSink(predictor) if predictor is not None else None
        self.runner = await load_explainer(plan, sink, thread_init=lowest_cpu_priority)
        logger.info("explainer %s for %s ready", self.runner.explainer.kind, plan.name)

    async def explain(
        self, rows: Any, parameters: dict[str, Any], as_objects: bool, timeout_s: float | None
    ) -> Any:
        """The explanations of ``rows``, or a :class:`Failure` value carrying the ISVC error."""
        try:
            return await self.runner.explain(rows, parameters, as_objects, timeout_s)
        except Exception as exc:  # noqa: BLE001 - carried back as a value
            return Failure.of(exc, "explain")

    def info(self) -> dict[str, Any]:
        return self.runner.info()

    def check_health(self) -> None:
        if not self.runner.explainer.ready:
            raise RuntimeError(f"explainer of {self.name} is not ready")


ExplainerDeployment = serve.deployment(ExplainerReplica)
"""The explainer inside the service's application: only the ingress calls it (its handle)."""


@serve.ingress()
class _ExplainerRoute(ExplainerReplica):
    """An explainer replica that is its application's ingress.

    On ``route_prefix: /v1/models/{name}:explain`` (``pipelines.app:build_explainer``) it answers
    ``:explain`` requests itself, with the ingress's errors and limits: Ray's proxy sends them
    here, not through the ingress (one hop less, ~5 ms on a 2-core node). With more than one
    replica, instances beyond the first go to the others through the deployment's handle.
    """

    def __serve_build_asgi_app__(self) -> Any:
        from pipelines._ray.sinks import HandleExplainerSink

        def others() -> HandleExplainerSink:
            ctx = serve.get_replica_context()
            return HandleExplainerSink(serve.get_deployment_handle(ctx.deployment, ctx.app_name))

        models = explainer_front(self.plan, self.runner, others)
        app = create_app(models, max_inflight=None, max_body_bytes=self.plan.max_body_bytes)
        return at_route(app, f"/v1/models/{self.plan.name}:explain")


ExplainerAppDeployment = serve.deployment(_ExplainerRoute)
"""The explainer as its own application (a Serve application has one HTTP ingress)."""


@serve.deployment
@serve.ingress()
class IngressDeployment:
    """Hosts the V1/V2 routes and the transformer hooks; calls the predictor(s) and explainer."""

    async def __init__(
        self,
        plan: ServicePlan,
        *handles: DeploymentHandle,
        explainer: DeploymentHandle | None = None,
        explainer_app: str | None = None,
    ) -> None:
        from pipelines._ray.metrics import install
        from pipelines._ray.sinks import HandleExplainerSink, HandleSink

        install()
        isvc_logs_in_replica_log()
        self.plan = plan
        self.transformer = await load_transformer(plan) if plan.transformer else None
        by_name = dict(zip([n.deployment for n in plan.predictors()], handles, strict=False))

        def make_sink(node: PredictorNode) -> PredictorSink:
            if plan.ingress.collocated:  # the model(s) live in this replica, no hop at all
                return LocalSink(load_predictor(plan.name, node))
            return HandleSink(by_name[node.deployment])

        if explainer is None and explainer_app is not None:  # its own application (build_explainer)
            explainer = serve.get_deployment_handle("explainer", explainer_app, _check_exists=False)
        explainer_sink = HandleExplainerSink(explainer) if explainer is not None else None
        self.pipeline = await assemble(plan, make_sink, self.transformer, explainer_sink)
        self.warm = WarmWorkers()
        if not plan.ingress.collocated and any(n.scaling.min_replicas == 0 for n in plan.predictors()):
            self.warm.start()  # the first request after idle starts a replica: keep a worker ready
        slow = slow_settings()
        if slow:
            logger.warning(
                "isvc: running without its fast Ray Serve settings (%s); start with `isvc serve FILE` "
                "or `make serve`, or export them before `serve run` / `ray start` (see pipelines/serve.env)",
                "; ".join(slow),
            )
        logger.info("ingress for %s ready (collocated=%s)", plan.name, plan.ingress.collocated)

    def __serve_build_asgi_app__(self) -> Any:
        return ingress_app(self.plan, self.pipeline)


def _shadow_counter() -> Any:
    from ray.util.metrics import Counter

    return Counter(
        "isvc_shadow_rows",
        description="Rows mirrored to a shadow predictor, by outcome (agree, disagree, dropped, error)",
        tag_keys=("model", "served", "shadow", "outcome"),
    )


@serve.deployment
@serve.ingress()
class RoutedIngressDeployment:
    """The ingress of the routed layout (:mod:`pipelines.plan.layout`): its predictors are other
    Serve applications, named with their tags and percents in ``user_config`` — applied by
    :meth:`reconfigure` on the running replica, so a canary step never restarts it.

    Nothing here calls a predictor by itself (a revision that scales to zero stays at zero until
    a request needs it); a new revision gets weighted traffic once its application is RUNNING.
    """

    async def __init__(self, plan: ServicePlan) -> None:
        from pipelines._ray.metrics import install
        from pipelines._ray.sinks import SwitchableExplainerSink

        install()
        isvc_logs_in_replica_log()
        self.plan = plan
        self.transformer = await load_transformer(plan) if plan.transformer else None
        self.router = TrafficRouter([])
        self.router.on_unavailable = lambda rev: self._watch_readiness()
        self._sinks: dict[str, Any] = {}
        self._submits: dict[str, Any] = {}
        self._watch: asyncio.Task[None] | None = None
        self._counter: Any = None
        self.warm = WarmWorkers()
        self.explainer = SwitchableExplainerSink() if plan.explainer is not None else None
        self.pipeline = await assemble(
            plan,
            None,
            self.transformer,
            self.explainer,
            router=self.router,
            describe_sink=self._describe_sink,
        )
        logger.info("routed ingress for %s ready", plan.name)

    def _describe_sink(self) -> Any:
        revs = sorted(self.router.revisions, key=lambda r: (r.ready, r.percent), reverse=True)
        return self._sinks[revs[0].name]

    def _sink(self, app: str) -> Any:
        from pipelines._ray.sinks import HandleSink

        if app not in self._sinks:
            handle = serve.get_deployment_handle("predictor", app, _check_exists=False)
            self._sinks[app] = HandleSink(handle)
            self._submits[app] = coalesced(self.plan, self._sinks[app])
        return self._submits[app]

    def _compared(self, served: str, shadow: str) -> Any:
        def count(kind: str, rows: int, agreed: int) -> None:
            if self._counter is None:
                self._counter = _shadow_counter()
            tags = {"model": self.plan.name, "served": served, "shadow": shadow}
            if kind == "compared":  # a Ray Counter takes only positive increments
                if agreed:
                    self._counter.inc(agreed, tags={**tags, "outcome": "agree"})
                if rows - agreed:
                    self._counter.inc(rows - agreed, tags={**tags, "outcome": "disagree"})
            else:
                self._counter.inc(1, tags={**tags, "outcome": kind})

        return count

    async def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply a traffic table: ``{predictors: [{tag, app, percent, scalesToZero}], ...}``."""
        entries = (config or {}).get("predictors") or []
        if not entries:
            raise ValueError("user_config.predictors: at least one {tag, app, percent} is needed")
        known = {r.name: r for r in self.router.revisions}
        revs = []
        for i, entry in enumerate(entries):
            try:
                app, tag, percent = str(entry["app"]), str(entry["tag"]), float(entry["percent"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"user_config.predictors[{i}]: needs app, tag and percent ({exc})") from exc
            cold = self.plan.cold_start_timeout_s if entry.get("scalesToZero") else None
            if cold is not None:
                self.warm.start()  # a worker ready for the replica the first request after idle starts
            ready = known[app].ready if app in known else False
            revs.append(Revision(tag, app, percent, self._sink(app), ready=ready, cold_start_s=cold))
        shadow = None
        spec = config.get("shadow")
        if spec:
            served = str(spec.get("from", "prev"))
            target = next((r for r in revs if r.tag == spec.get("to", "latest")), None)
            if target is not None:
                queue = int(spec.get("queue", self.plan.shadow_queue))
                shadow = Shadow(
                    served, target, queue_size=queue, on_compared=self._compared(served, target.name)
                )
        self.router.set_revisions(revs, shadow)
        for app in [a for a in self._sinks if a not in {r.name for r in revs}]:
            self._sinks.pop(app)
            self._submits.pop(app)
        if self.explainer is not None and config.get("explainer"):
            self.explainer.point_at(str(config["explainer"]))
        logger.info(
            "traffic for %s: %s%s",
            self.plan.name,
            ", ".join(f"{r.tag}={r.name} {r.percent:g}%" for r in revs),
            f"; shadow {shadow.served} -> {shadow.target.name}" if shadow else "",
        )
        self._watch_readiness()

    def _watch_readiness(self) -> None:
        """Start the readiness watcher unless it runs (after a table change, or when a revision
        was marked not ready: without this it stayed out of the weights until the next step)."""
        if self._watch is None or self._watch.done():
            self._watch = detached(self._wait_ready())

    async def _wait_ready(self) -> None:
        """Mark revisions ready once their application is RUNNING (asks the controller, not them)."""
        while any(not r.ready for r in self.router.revisions):
            try:
                status = await asyncio.to_thread(serve.status)
                for rev in self.router.revisions:
                    app = status.applications.get(rev.name)
                    state = getattr(app.status, "value", app.status) if app is not None else None
                    if not rev.ready and state == "RUNNING":
                        rev.ready = True
                        logger.info("revision %s (%s) is up", rev.name, rev.tag)
            except Exception as exc:  # noqa: BLE001 - keep asking
                logger.warning("cannot read Serve status yet: %s", exc)
            await asyncio.sleep(0.5)

    def __serve_build_asgi_app__(self) -> Any:
        return ingress_app(self.plan, self.pipeline)
