"""The V2 model repository over many models: the live catalog, the index, load and unload. No Ray.

- :class:`ModelCatalog` is the ``{name: ModelPipeline}`` mapping :func:`~pipelines.dataplane.create_app`
  serves; it is live: a model loaded at run time appears in ``GET /v1/models`` and its routes at once.
- :class:`Repository` answers Triton's repository extension (``POST /v2/repository/index``,
  ``POST /v2/repository/models/{name}/load`` and ``.../unload``) and isvc's
  ``GET /v2/repository/replicas``, asking the predictor replicas through a :class:`Replicas`
  (Ray handles in :mod:`pipelines._ray.multiplex`, a fake in tests).

The index reports what the replicas *hold*, not what was asked for: a model evicted by a
replica's LRU shows ``UNAVAILABLE`` with the reason, whoever loaded it.

Example::

    repo = Repository(catalog, replicas, parent=plan.service.predictor, version="1")
    app = create_app(catalog, extra_routes=repo.routes())
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipelines.dataplane import ModelPipeline
from pipelines.errors import InternalError, InvalidInput, ISVCError, ModelNotFound, PayloadTooLarge, SpecError
from pipelines.multimodel.plan import ModelEntry, runtime_entry
from pipelines.plan import PredictorNode
from pipelines.protocol import dumps, parse_json

__all__ = [
    "LOADING",
    "READY",
    "UNAVAILABLE",
    "ModelCatalog",
    "ModelLoadFailed",
    "NotInRepository",
    "Replicas",
    "Repository",
    "describe",
    "merge_index",
]

logger = logging.getLogger("isvc.multimodel")

READY, LOADING, UNAVAILABLE = "READY", "LOADING", "UNAVAILABLE"
"""Model states of the repository index (Triton's names)."""
NOT_LOADED = "not loaded yet"
MAX_CONTROL_BODY = 1 << 20
"""Repository requests are small JSON bodies."""
_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")


class NotInRepository(ModelNotFound):
    """A repository request for a model the service does not know (404)."""

    def __init__(self, name: str, hint: str = "") -> None:
        ISVCError.__init__(self, f"model '{name}' is not in the repository{hint}")
        self.name = name


class ModelLoadFailed(ISVCError):
    """A model could not be loaded on a predictor replica (503, as KServe answers a failed load)."""

    status_code = 503


class Replicas(Protocol):
    """The multiplexed predictor replicas, as the repository sees them."""

    async def states(self) -> list[dict[str, Any]]:
        """Every replica's :meth:`~pipelines.multimodel.residency.Residency.snapshot`."""

    async def load(self, entry: ModelEntry) -> dict[str, Any]:
        """Load ``entry`` where multiplex routing puts it: ``{replica, loaded, evicted, metadata}``."""

    async def unload(self, name: str) -> list[str]:
        """Unload ``name`` on every replica; the replicas that held it."""

    async def share(self, entry: ModelEntry) -> None:
        """Tell the other ingress replicas about a model registered at run time."""


def describe(pipe: ModelPipeline, meta: dict[str, Any]) -> None:
    """Fill a pipeline's V2 metadata from its predictor's (``inputs``, ``outputs``, ``platform``)."""
    pipe.inputs = [dict(t) for t in meta.get("inputs", [])]
    pipe.outputs = [dict(t) for t in meta.get("outputs", [])]
    pipe.platform = meta.get("platform", pipe.platform)
    if pipe.outputs:
        pipe.output_name = pipe.outputs[0]["name"]


class ModelCatalog(Mapping[str, ModelPipeline]):
    """``{name: ModelPipeline}`` over the known entries; :meth:`add` makes a model servable at once.

    >>> from pipelines.multimodel.plan import runtime_entry
    >>> async def predict(batch): return batch
    >>> catalog = ModelCatalog(lambda e: ModelPipeline(e.name, predict=predict))
    >>> m9 = runtime_entry("m9", {"storageUri": "a/m9", "framework": "sklearn"}, PredictorNode("x"))
    >>> pipe = catalog.add(m9)
    >>> list(catalog), catalog.get("m9") is pipe, catalog.get("m8")
    (['m9'], True, None)
    """

    def __init__(
        self, make_pipeline: Callable[[ModelEntry], ModelPipeline], entries: tuple[ModelEntry, ...] = ()
    ):
        self._make = make_pipeline
        self._entries: dict[str, ModelEntry] = {}
        self._pipes: dict[str, ModelPipeline] = {}
        for e in entries:
            self.add(e)

    def __getitem__(self, name: str) -> ModelPipeline:
        return self._pipes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._pipes))

    def __len__(self) -> int:
        return len(self._pipes)

    def entry(self, name: str) -> ModelEntry | None:
        return self._entries.get(name)

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def add(self, entry: ModelEntry) -> ModelPipeline:
        """Register ``entry`` (the same entry again is a no-op; another one replaces a run-time entry)."""
        known = self._entries.get(entry.name)
        if known is not None and known.same_model(entry):
            return self._pipes[entry.name]
        if known is not None and known.source == "spec":
            raise InvalidInput(
                f"model '{entry.name}' is a TrainedModel of this service (storageUri "
                f"{known.node.storage_uri!r}); change it in the YAML, not at run time"
            )
        self._entries[entry.name] = entry
        self._pipes[entry.name] = self._make(entry)
        return self._pipes[entry.name]

    def replace(self, entry: ModelEntry) -> ModelPipeline:
        """Register ``entry`` in place of a run-time entry of the same name (a TrainedModel stays)."""
        known = self._entries.get(entry.name)
        if known is not None and known.source == "runtime" and not known.same_model(entry):
            del self._entries[entry.name], self._pipes[entry.name]
        return self.add(entry)


def merge_index(
    entries: list[ModelEntry], states: list[dict[str, Any]], version: str, ready_only: bool = False
) -> list[dict[str, Any]]:
    """The repository index: each model's state across the replicas (``states``), in catalog order.

    READY when a replica holds it (``replicas`` lists which), LOADING while one loads it,
    UNAVAILABLE otherwise with the latest reason a replica gave (evicted, unloaded, failed) or
    ``not loaded yet``. Models a replica holds that the catalog does not know come last.
    """
    holders: dict[str, list[str]] = {}
    loading: dict[str, list[str]] = {}
    reasons: dict[str, tuple[float, str]] = {}
    for state in states:
        rid = str(state.get("replica"))
        for m in state.get("models", []):
            holders.setdefault(m["name"], []).append(rid)
        for name in state.get("loading", []):
            loading.setdefault(name, []).append(rid)
        for name, gone in (state.get("gone") or {}).items():
            if name not in reasons or gone["at"] > reasons[name][0]:  # the latest event wins
                reasons[name] = (gone["at"], f"{gone['reason']} on replica {rid}")
    names = [e.name for e in entries]
    names += sorted(n for n in {*holders, *loading} if n not in set(names))
    out = []
    for name in names:
        if name in holders:
            item = {"name": name, "version": version, "state": READY, "reason": "", "replicas": holders[name]}
        elif name in loading:
            item = {
                "name": name,
                "version": version,
                "state": LOADING,
                "reason": "",
                "replicas": loading[name],
            }
        else:
            reason = reasons[name][1] if name in reasons else NOT_LOADED
            item = {"name": name, "version": version, "state": UNAVAILABLE, "reason": reason, "replicas": []}
        if not ready_only or item["state"] == READY:
            out.append(item)
    return out


class Repository:
    """Index, load and unload over a :class:`ModelCatalog` and the predictor :class:`Replicas`."""

    def __init__(
        self,
        catalog: ModelCatalog,
        replicas: Replicas,
        parent: PredictorNode,
        version: str = "1",
        models_per_replica: int | None = None,
    ) -> None:
        self.catalog = catalog
        self.replicas = replicas
        self.parent = parent
        self.version = version
        self.models_per_replica = models_per_replica

    async def index(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """``POST /v2/repository/index`` ``{"ready": bool}`` (Triton's; ``ready: true`` lists READY only)."""
        ready = body.get("ready", False)
        if not isinstance(ready, bool):
            raise InvalidInput(f"ready: expected true or false, got {ready!r}")
        unknown = sorted(set(body) - {"ready", "repository_name"})
        if unknown:
            raise InvalidInput(f"{unknown[0]}: unknown field of an index request (takes 'ready')")
        return merge_index(self.catalog.entries(), await self.replicas.states(), self.version, ready)

    async def load(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v2/repository/models/{name}/load``: load it on a replica, registering it first when
        ``body["parameters"]`` carries a ``storageUri`` (and ``framework``) for a model not in the spec."""
        if not _NAME.match(name):
            raise InvalidInput(f"model name {name!r}: letters, digits, '_' and '-' only")
        unknown = sorted(set(body) - {"parameters"})
        if unknown:
            raise InvalidInput(f"{unknown[0]}: unknown field of a load request (takes 'parameters')")
        known = self.catalog.entry(name)
        params = body.get("parameters")
        if not params:
            if known is None:
                raise NotInRepository(
                    name, '; to add it, send {"parameters": {"storageUri": "...", "framework": "sklearn"}}'
                )
            entry = known
        else:
            try:
                entry = runtime_entry(name, params, self.parent)
            except SpecError as exc:
                raise InvalidInput("; ".join(exc.problems)) from None
            if known is not None and known.same_model(entry):
                entry = known
            elif known is not None and known.source == "spec":
                self.catalog.add(entry)  # raises: a TrainedModel changes in the YAML
            elif known is not None and any(
                i["name"] == name and i["state"] != UNAVAILABLE for i in await self.index({})
            ):
                raise InvalidInput(
                    f"model '{name}' is loaded from {known.node.storage_uri!r}; unload it before "
                    "loading another storageUri under its name"
                )
        result = await self.replicas.load(entry)  # a failed load registers nothing
        if entry is known:
            pipe = self.catalog[name]
        else:
            pipe = self.catalog.replace(entry)
            await self.replicas.share(entry)
        if result.get("metadata"):
            describe(pipe, result["metadata"])
        return {
            "name": name,
            "load": True,
            "replica": result.get("replica"),
            "loaded": bool(result.get("loaded")),
            "evicted": list(result.get("evicted", [])),
        }

    async def unload(self, name: str) -> dict[str, Any]:
        """``POST /v2/repository/models/{name}/unload``: every replica lets it go (until a request)."""
        held = await self.replicas.unload(name)
        if not held and self.catalog.entry(name) is None:
            raise NotInRepository(name)
        return {"name": name, "unload": True, "replicas": held}

    async def replica_states(self) -> dict[str, Any]:
        """``GET /v2/repository/replicas``: each replica's resident models in LRU order, its counters."""
        states = sorted(await self.replicas.states(), key=lambda s: str(s.get("replica")))
        return {"models_per_replica": self.models_per_replica, "replicas": states}

    def routes(self) -> list[Route]:
        """The repository routes, for :func:`~pipelines.dataplane.create_app`'s ``extra_routes``."""

        async def index(request: Request) -> Any:
            return await self.index(await _body(request))

        async def load(request: Request) -> Any:
            return await self.load(request.path_params["name"], await _body(request))

        async def unload(request: Request) -> Any:
            await _body(request)
            return await self.unload(request.path_params["name"])

        async def replicas(request: Request) -> Any:
            return await self.replica_states()

        return [
            Route("/v2/repository/index", _endpoint(index), methods=["POST"]),
            Route("/v2/repository/models/{name}/load", _endpoint(load), methods=["POST"]),
            Route("/v2/repository/models/{name}/unload", _endpoint(unload), methods=["POST"]),
            Route("/v2/repository/replicas", _endpoint(replicas), methods=["GET"]),
        ]


async def _body(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_CONTROL_BODY:
            raise PayloadTooLarge(f"repository request body over {MAX_CONTROL_BODY} bytes")
    if not raw.strip():
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    return body


def _endpoint(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        try:
            result = await fn(request)
        except ISVCError:
            raise
        except Exception as exc:  # the server keeps serving
            logger.exception("unhandled error on %s", request.url.path)
            raise InternalError(f"internal error: {type(exc).__name__}: {exc}") from exc
        return Response(dumps(result), media_type="application/json")

    return handle
