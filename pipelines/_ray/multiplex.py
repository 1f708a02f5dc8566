"""Many models on few replicas: Ray Serve model multiplexing behind KServe's routes (TrainedModel).

- :class:`MultiplexedPredictor` holds at most ``isvc.dev/models-per-replica`` models, loaded on
  demand by ``@serve.multiplexed`` (least recently used evicted first), and mirrors Ray's LRU in a
  :class:`~pipelines.multimodel.Residency` so it can say what it holds and unload one model.
- :class:`MultiModelIngress` serves the V1/V2 routes of every model and the V2 repository
  (index, load, unload), calling the predictors through the handle with
  ``multiplexed_model_id=name`` — never the HTTP header, which HAProxy does not route by.
- :func:`build_multimodel` is the Serve ``import_path`` target (``pipelines.app:build_multimodel``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ray import serve
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ray.serve.handle import DeploymentHandle

from pipelines._ray.options import deployment_options
from pipelines.batching import Coalescer, Failure, InlineOrThread, chunk_rows, concat, run_one
from pipelines.dataplane import ModelPipeline, create_app, load_predictor, predictor_metadata
from pipelines.errors import InvalidInput, ISVCError, ServerOverloaded
from pipelines.multimodel import (
    ModelCatalog,
    ModelEntry,
    ModelLoadFailed,
    MultiModelPlan,
    Repository,
    Residency,
    build_multimodel_plan,
    describe,
)
from pipelines.spec.trained import multimodel_from_serve_args

__all__ = [
    "MultiModelIngress",
    "MultiplexedPredictor",
    "build_multimodel",
    "build_multimodel_app",
]

logger = logging.getLogger("isvc.app")

CONTROL_TIMEOUT_S = 30.0
"""How long the repository waits for the replicas to answer a broadcast (index, unload)."""


class _Loaded:
    """A model inside Ray's multiplexer LRU.

    Ray's ``unload_model_lru`` awaits ``model.__del__()`` when it evicts a model; here that is an
    *instance* attribute (an async function), so only Ray's eviction calls it — the garbage
    collector looks ``__del__`` up on the class and finds none — and the replica's
    :class:`~pipelines.multimodel.Residency` learns of every eviction as it happens.
    """

    def __init__(self, name: str, predictor: Any, residency: Residency) -> None:
        self.name = name
        self.predictor = predictor
        self.run = InlineOrThread()
        self._residency: Residency | None = residency
        self.__del__ = self._evicted

    async def _evicted(self) -> None:
        residency, self._residency = self._residency, None
        if residency is not None:
            residency.evicted(self.name)

    def forget(self) -> None:
        """Unloaded on request: the residency record is updated by the caller, not by Ray."""
        self._residency = None


@serve.deployment
class MultiplexedPredictor:
    """A predictor replica holding at most ``models_per_replica`` models, any of the service's.

    Every call carries the model's :class:`~pipelines.multimodel.ModelEntry` (runtime, storageUri),
    so a replica can load a model registered after it started; the multiplexed model ID of the
    call (``handle.options(multiplexed_model_id=...)``) is the entry's name.
    """

    def __init__(self, models_per_replica: int) -> None:
        self.cap = models_per_replica
        self.residency = Residency(cap=models_per_replica)
        self.replica = serve.get_replica_context().replica_tag
        self._entries: dict[str, ModelEntry] = {}

        async def load_model(model_id: str) -> _Loaded:
            entry = self._entries[model_id]
            self.residency.begin_load(model_id)
            start = time.perf_counter()
            try:
                predictor = await asyncio.to_thread(load_predictor, model_id, entry.node)
            except Exception as exc:
                why = str(exc) if isinstance(exc, ISVCError) else f"{type(exc).__name__}: {exc}"
                self.residency.load_failed(model_id, why)
                raise ModelLoadFailed(f"model '{model_id}' failed to load: {why}") from exc
            took = time.perf_counter() - start
            self.residency.loaded(model_id, took)
            logger.info("model %s loaded in %.1f ms on replica %s", model_id, took * 1000, self.replica)
            return _Loaded(model_id, predictor, self.residency)

        # The cap comes from the YAML: the decorator wraps a plain closure here (a bound method
        # would not do — the wrapper sets its LRU as an attribute of the function it wraps).
        self._load_fn = load_model
        self._get = serve.multiplexed(max_num_models_per_replica=models_per_replica)(load_model)

    async def _resident(self, entry: ModelEntry, hit: bool = True) -> _Loaded:
        self._entries[entry.name] = entry
        loaded: _Loaded = await self._get(entry.name)
        if hit:
            self.residency.hit(entry.name)
        return loaded

    async def predict(self, entry: ModelEntry, batch: Any, with_metadata: bool = False) -> Any:
        """Predictions of model ``entry`` for ``batch``, or a :class:`Failure` value.

        ``with_metadata``: ``(predictions, V2 metadata pieces)`` — the ingress learns a model's
        tensors from the replica that served it, without a call that could load it elsewhere.
        """
        try:
            loaded = await self._resident(entry)
        except Exception as exc:  # noqa: BLE001 - carried back as a value
            return Failure.of(exc, "load")
        out = await loaded.run(run_one, loaded.predictor.predict, batch)
        if with_metadata and not isinstance(out, Failure):
            return out, predictor_metadata(loaded.predictor)
        return out

    async def load(self, entry: ModelEntry) -> Any:
        """Make ``entry`` resident here: ``{replica, loaded, evicted, metadata}`` or a :class:`Failure`."""
        before, was_here = self.residency.evictions, entry.name in self.residency
        try:
            loaded = await self._resident(entry, hit=False)
        except Exception as exc:  # noqa: BLE001 - carried back as a value
            return Failure.of(exc, "load")
        n = self.residency.evictions - before
        return {
            "replica": self.replica,
            "loaded": not was_here,
            "evicted": list(self.residency.recent_evictions)[-n:] if n else [],
            "metadata": predictor_metadata(loaded.predictor),
        }

    def _lru(self) -> Any:
        """Ray's multiplexer of this replica (``None`` before the first load).

        Ray has no public call to unload one chosen model: its wrapper keeps the LRU in the
        private ``models`` OrderedDict behind ``_model_cache_lock`` (ray/serve/multiplex.py).
        Checked here so that a Ray upgrade that moves them fails loudly, not silently.
        """
        wrapper = getattr(self._load_fn, "__serve_multiplex_wrapper", None)
        if wrapper is not None and not (
            isinstance(getattr(wrapper, "models", None), OrderedDict)
            and hasattr(wrapper, "_model_cache_lock")
        ):
            raise RuntimeError(
                "this Ray version's multiplexer keeps no models/_model_cache_lock; cannot unload"
            )
        return wrapper

    async def unload(self, name: str) -> str | None:
        """Let ``name`` go if this replica holds it; this replica's ID if it did, else ``None``."""
        wrapper = self._lru()
        if wrapper is None:
            return None
        async with wrapper._model_cache_lock:  # not while Ray loads or evicts
            loaded = wrapper.models.pop(name, None)
            if loaded is None:
                return None
            wrapper._push_multiplexed_replica_info = True  # routers stop sending it here
        loaded.forget()
        self.residency.unloaded(name)
        logger.info("model %s unloaded from replica %s", name, self.replica)
        return str(self.replica)

    def state(self) -> dict[str, Any]:
        """This replica's residency (LRU order), with Ray's own LRU beside it (``ray_lru``)."""
        wrapper = self._lru()
        snap = self.residency.snapshot(str(self.replica))
        snap["ray_lru"] = list(wrapper.models) if wrapper is not None else []
        return snap


class MultiplexSink:
    """One model's predictor calls: ``handle.options(multiplexed_model_id=name)``, entry attached."""

    def __init__(self, handle: DeploymentHandle, entry: ModelEntry) -> None:
        self._base = handle
        self.entry = entry
        self._handle: Any = None
        self.on_metadata: Callable[[dict[str, Any]], None] | None = None
        """Called once with the model's V2 metadata pieces, from the first answer that carries them."""

    @property
    def handle(self) -> Any:
        if self._handle is None:  # created on first use, inside the replica's loop
            self._handle = self._base.options(multiplexed_model_id=self.entry.name)
        return self._handle

    async def predict(self, batch: Any) -> Any:
        parts = chunk_rows(batch)
        if len(parts) == 1:
            return await self._predict(batch)
        return concat(list(await asyncio.gather(*(self._predict(p) for p in parts))))

    async def _predict(self, batch: Any) -> Any:
        if self.on_metadata is None:
            return await self._call("predict", self.entry, batch)
        out, meta = await self._call("predict", self.entry, batch, True)
        if self.on_metadata is not None:
            self.on_metadata(meta)
            self.on_metadata = None
        return out

    async def load(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("load", self.entry)
        return result

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            result = await getattr(self.handle, method).remote(*args)
        except BackPressureError as exc:
            raise ServerOverloaded(f"predictor overloaded: {exc}") from exc
        if isinstance(result, Failure):
            raise result.to_error()
        return result


class HandleReplicas:
    """:class:`~pipelines.multimodel.Replicas` over the predictor handle (and this ingress's own)."""

    def __init__(self, predictor: DeploymentHandle, sink_of: Any) -> None:
        self.predictor = predictor
        self._sink_of = sink_of
        self._ingress: DeploymentHandle | None = None

    async def _broadcast(self, handle: DeploymentHandle, method: str, *args: Any) -> list[Any]:
        """``method(*args)`` on every running replica; the answers of those that answered."""
        try:
            results = await handle.broadcast(method, *args).results_async(
                timeout_s=CONTROL_TIMEOUT_S, return_exceptions=True
            )
        except DeploymentUnavailableError:  # no replica running (starting, or scaled to zero)
            return []
        for r in results:
            if isinstance(r, BaseException):
                logger.warning("a replica did not answer %s: %s", method, r)
        return [r for r in results if not isinstance(r, BaseException)]

    async def states(self) -> list[dict[str, Any]]:
        return await self._broadcast(self.predictor, "state")

    async def load(self, entry: ModelEntry) -> dict[str, Any]:
        result: dict[str, Any] = await self._sink_of(entry).load()
        return result

    async def unload(self, name: str) -> list[str]:
        return [r for r in await self._broadcast(self.predictor, "unload", name) if r]

    async def share(self, entry: ModelEntry) -> None:
        """Every ingress replica (this one too) registers ``entry``; one started later will not know it."""
        if self._ingress is None:
            ctx = serve.get_replica_context()
            self._ingress = serve.get_deployment_handle(ctx.deployment, ctx.app_name)
        try:
            await self._broadcast(self._ingress, "register", entry)
        except Exception as exc:  # noqa: BLE001 - this replica has it; the others learn nothing
            logger.warning("could not tell the other ingress replicas about %s: %s", entry.name, exc)


@serve.deployment
@serve.ingress()
class MultiModelIngress:
    """The V1/V2 routes of every model, and the V2 repository; models run on the predictor replicas."""

    def __init__(self, plan: MultiModelPlan, predictor: DeploymentHandle) -> None:
        self.plan = plan
        self.predictor = predictor
        self._sinks: dict[str, MultiplexSink] = {}
        self.replicas = HandleReplicas(predictor, self._sink)
        self.catalog = ModelCatalog(self._pipeline, plan.models)
        svc = plan.service
        self.repository = Repository(
            self.catalog, self.replicas, svc.predictor, svc.version, plan.models_per_replica
        )
        logger.info(
            "multi-model ingress for %s ready: %d models, at most %d per predictor replica",
            plan.name,
            len(plan.models),
            plan.models_per_replica,
        )

    def _sink(self, entry: ModelEntry) -> MultiplexSink:
        sink = self._sinks.get(entry.name)
        if sink is None or sink.entry is not entry:
            sink = self._sinks[entry.name] = MultiplexSink(self.predictor, entry)
        return sink

    def _pipeline(self, entry: ModelEntry) -> ModelPipeline:
        """One model's pipeline: coalesced rows → its multiplexed predictor calls.

        Its V2 tensors come with the first answer (or a repository load), so that starting the
        ingress loads no model.
        """
        sink = self._sink(entry)
        svc = self.plan.service
        coalescer = Coalescer(
            sink.predict, window_s=svc.coalesce_window_ms / 1000, max_rows=svc.coalesce_max_rows
        )
        pipe = ModelPipeline(
            entry.name, predict=coalescer.submit, platform=entry.framework, version=svc.version
        )
        sink.on_metadata = lambda meta: describe(pipe, meta)
        return pipe

    def register(self, entry: ModelEntry) -> None:
        """Broadcast target: a model another ingress replica loaded at run time."""
        try:
            self.catalog.replace(entry)
        except InvalidInput as exc:
            logger.warning("not registering %s: %s", entry.name, exc)

    def __serve_build_asgi_app__(self) -> Any:
        ing = self.plan.service.ingress
        return create_app(
            self.catalog,
            max_inflight=ing.scaling.max_ongoing_requests,
            timeout_s=ing.scaling.timeout_s,
            max_body_bytes=self.plan.service.max_body_bytes,
            extra_routes=self.repository.routes(),
        )


def build_multimodel_app(plan: MultiModelPlan) -> Any:
    """The bound Serve application: the multi-model ingress → the multiplexed predictor deployment."""
    node, ing = plan.service.predictor, plan.service.ingress
    predictor = MultiplexedPredictor.options(  # type: ignore[attr-defined]
        name=node.deployment,
        **deployment_options(node.scaling, node.resources, env=node.env, deployment=node.deployment),
    ).bind(plan.models_per_replica)
    return MultiModelIngress.options(  # type: ignore[attr-defined]
        name=ing.name, **deployment_options(ing.scaling, ing.resources, env=ing.env, deployment=ing.name)
    ).bind(plan, predictor)


def build_multimodel(args: dict[str, Any]) -> Any:
    """Serve's ``import_path`` target for many models: ``args`` is ``{isvc: <path | inline>}`` whose
    file holds the InferenceService and its TrainedModel documents (see :mod:`pipelines.spec.trained`)."""
    plan = build_multimodel_plan(multimodel_from_serve_args(args))
    for path in plan.ignored_fields:
        logger.info("ignored (Kubernetes-only): %s", path)
    return build_multimodel_app(plan)
