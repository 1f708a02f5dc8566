"""Explanations where the explainer runs (its replica), no Ray: the explained function and the runner.

- :func:`explained_function` is preprocess → predictor → ``explain_output`` on rows in the
  caller's own features;
- :class:`ExplainRunner` runs one explainer on a worker thread (the search) while its model
  calls carry whole sampling batches (never one row at a time);
- :func:`load_explainer` builds both for a plan, as the replica does.

The ingress side (requests, fan-out, time limit, ``{name}-explainer``) is
:mod:`pipelines.dataplane.explanations`.

Example::

    runner = ExplainRunner(AnchorTabularExplainer("churn"), explained_function(transformer, sink.predict))
    await runner.load(Path("artifacts/churn/explainer"))
    await runner.explain(np.array([[41, 30, 120.5, 8, 21]]), {"threshold": 0.9})
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from explainers import Explainer
from explainers.data import decode
from pipelines.batching import InlineOrThread
from pipelines.dataplane.pipeline import call_hook, overrides, to_batch
from pipelines.errors import InvalidInput, ISVCError, PredictorError, RequestTimeout
from pipelines.plan import ServicePlan

__all__ = ["ExplainRunner", "ModelFn", "explained_function", "load_explainer"]

logger = logging.getLogger("isvc.explain")

ModelFn = Callable[..., Coroutine[Any, Any, np.ndarray]]
"""``(rows in the caller's features, their names when the caller sent objects, categorical
columns' values by index) -> the explained output``."""


def explained_function(transformer: Any | None, predict: Callable[[Any], Awaitable[Any]]) -> ModelFn:
    """The function an explainer explains: preprocess → ``predict`` → ``explain_output``.

    Rows are in the caller's features; with a transformer they go through its ``preprocess``
    as a V1 body (``{"instances": [...]}``, as objects keyed by the feature names when the
    caller sent objects), so an anchor reads ``support_tickets > 5``, not a scaled column —
    or, when the transformer overrides ``explain_input``, through that, as one array.
    Categorical columns reach ``preprocess`` as their values (``"premium"``), as the caller sent
    them; ``explain_input`` and a predictor without a transformer get their codes.
    """
    pre = transformer is not None and overrides(transformer, "preprocess")
    vectorized = transformer is not None and overrides(transformer, "explain_input")
    post = transformer is not None and overrides(transformer, "explain_output")

    async def model(
        rows: np.ndarray, names: list[str] | None = None, categories: dict[int, list[str]] | None = None
    ) -> np.ndarray:
        payload: Any = rows
        if vectorized:  # the transformer takes the whole [N, features] batch as it is
            payload = await call_hook(transformer, "explain_input", rows)
        elif pre:
            values: list[Any] = decode(rows, categories) if categories else rows.tolist()
            if names:
                values = [dict(zip(names, r, strict=True)) for r in values]
            payload = await call_hook(transformer, "preprocess", {"instances": values}, {})
        out = await predict(to_batch(payload, "preprocess" if pre else "request"))
        if isinstance(out, pd.DataFrame):
            out = out.to_numpy()
        if post:
            out = await call_hook(transformer, "explain_output", out)
        return np.asarray(out)

    return model


@dataclass
class _Call:
    """One explanation's state, read by the model calls on the worker thread."""

    as_objects: bool = False
    deadline: float = float("inf")
    cancelled: threading.Event = field(default_factory=threading.Event)
    model_calls: int = 0
    model_rows: int = 0


class ExplainRunner:
    """One explainer where it is loaded: the search on its own thread, model calls on the loop.

    The search (alibi / shap, synchronous) runs on a one-thread pool, so this replica's event
    loop stays free for the model calls the search makes; each call crosses back to the loop
    with the whole sampling batch. Explanations in one runner run one after another (alibi's
    explainers are not safe to share between threads); replicas give the concurrency.

    An explanation past ``timeout_s``, or cancelled by its caller, stops at its next model call.
    """

    def __init__(
        self,
        explainer: Explainer,
        model: ModelFn,
        in_worker: bool = False,
        thread_init: Callable[[], None] | None = None,
    ) -> None:
        self.explainer = explainer
        self._model = model
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="isvc-explain", initializer=thread_init
        )
        """``thread_init`` runs first on the search thread (e.g. to lower its CPU priority)."""
        self._local = threading.local()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_worker = in_worker
        """Run the model function on the worker thread's own loop (a model in this process: no
        thread hand-off per call) instead of the replica's loop (a Ray handle lives there)."""
        self._worker_loop: asyncio.AbstractEventLoop | None = None

    async def load(self, artifact_dir: Path | None, model: Any = None) -> None:
        """Fit / read the explainer (its predictor calls go through the model function)."""
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(self._pool, self._in_call, _Call(), self._load, artifact_dir, model)

    def _load(self, artifact_dir: Path | None, model: Any) -> None:
        self.explainer.load(artifact_dir, self._predict, model)

    def info(self) -> dict[str, Any]:
        """What the ingress needs: the explainer's type and the features it explains, in order."""
        return {
            "type": self.explainer.kind,
            "feature_names": list(self.explainer.feature_names),
            "categorical_names": {str(k): list(v) for k, v in self.explainer.categorical_names.items()},
            "text": self.explainer.text,
        }

    def _in_call(self, call: _Call, fn: Callable[..., Any], *args: Any) -> Any:
        self._local.call = call
        try:
            return fn(*args)
        finally:
            self._local.call = None

    def _predict(self, x: np.ndarray) -> np.ndarray:
        """The ``predict_fn`` the explainer calls (on the worker thread)."""
        call: _Call = self._local.call
        if call.cancelled.is_set():
            raise RequestTimeout("explanation cancelled")
        if time.monotonic() > call.deadline:
            raise RequestTimeout("explanation took longer than its timeout")
        assert self._loop is not None
        rows = np.asarray(x, dtype=object if self.explainer.text else np.float64)
        call.model_calls += 1
        call.model_rows += len(rows)
        names = list(self.explainer.feature_names) if call.as_objects else None
        cats = self.explainer.categorical_names
        if self._in_worker:
            if self._worker_loop is None:
                self._worker_loop = asyncio.new_event_loop()
            return self._worker_loop.run_until_complete(self._model(rows, names, cats))
        future = asyncio.run_coroutine_threadsafe(self._model(rows, names, cats), self._loop)
        return future.result()

    async def explain(
        self,
        rows: np.ndarray,
        parameters: dict[str, Any] | None = None,
        as_objects: bool = False,
        timeout_s: float | None = None,
    ) -> list[dict[str, Any]]:
        """One explanation per row; errors are ISVC errors (400 for bad parameters)."""
        call = _Call(as_objects=as_objects)
        if timeout_s:
            call.deadline = time.monotonic() + timeout_s
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._pool, self._in_call, call, self.explainer.explain, rows, parameters or {}
        )
        try:
            result: list[dict[str, Any]] = await future
        except asyncio.CancelledError:
            call.cancelled.set()  # the worker stops at its next model call
            raise
        except ISVCError:
            raise
        except ValueError as exc:  # config / parameters / instance shape checks
            raise InvalidInput(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - the server keeps serving
            logger.exception("%s explanation failed", self.explainer.kind)
            raise PredictorError(
                f"{self.explainer.kind} explanation failed: {type(exc).__name__}: {exc}"
            ) from exc
        logger.debug(
            "explained %d row(s): %d model calls, %d rows", len(rows), call.model_calls, call.model_rows
        )
        return result


class _OnSearchThread(InlineOrThread):
    """How the replica's own model copy is called: inline. Those calls come from the search thread
    (``in_worker``), which may block, so a hand-off to yet another thread only added latency
    (two per KernelShap explanation)."""

    @property
    def inline(self) -> bool:
        return True


async def load_explainer(
    plan: ServicePlan, predictor: Any | None = None, thread_init: Callable[[], None] | None = None
) -> ExplainRunner:
    """The plan's explainer, loaded as its replica does it.

    It loads the transformer itself (for ``preprocess``), and calls ``predictor`` (a
    :class:`~pipelines.routing.sinks.PredictorSink`, e.g. the predictor deployment's handle),
    after waiting until it answers; with ``predictor=None``, or for an explainer that reads
    the model (TreeShap), a copy of the model is loaded here.
    """
    from explainers import EXPLAINERS
    from pipelines.dataplane.loading import load_predictor, load_transformer, model_dir_of
    from pipelines.routing.sinks import LocalSink

    node = plan.explainer
    assert node is not None
    cls = EXPLAINERS[node.type]
    transformer = await load_transformer(plan) if plan.transformer else None
    local = None
    if predictor is None or cls.needs_model:
        local = load_predictor(plan.name, plan.predictor)
        predictor = LocalSink(local, runner=_OnSearchThread())
    else:
        await predictor.metadata()  # answers once a predictor replica is up: fit only after that
    model = explained_function(transformer, predictor.predict)
    runner = ExplainRunner(
        cls(plan.name, node.config), model, in_worker=local is not None, thread_init=thread_init
    )
    await runner.load(model_dir_of(node.storage_uri), local)
    return runner
