"""One served model as the data plane sees it: transformer hooks around a predict call.

No transport and no Ray: ``predict`` is any ``async (batch) -> array`` — an in-process
predictor, a coalescer in front of a Ray handle, or a fake in tests.

Example::

    pipe = ModelPipeline("churn", predict=my_async_predict, transformer=ChurnTransformer("churn"))
    await pipe.predict_v1({"instances": [[1, 2, 3, 4, 5]]}, headers={})
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd

from pipelines.dataplane.metrics import recorder
from pipelines.errors import ColdStartTimeout, InvalidInput, ISVCError, NotConfigured, UserCodeError
from pipelines.protocol import (
    BinaryBody,
    InferOutput,
    InferRequest,
    InferResponse,
    TensorSpec,
    instances_to_array,
)
from pipelines.shared_work import detached
from transformers_.base import Transformer

__all__ = [
    "REQUEST_INFO",
    "TAG_HEADER",
    "Description",
    "ModelPipeline",
    "call_hook",
    "endpoint_tensors",
    "overrides",
    "to_batch",
]

PredictFn = Callable[[Any], Awaitable[Any]]
ExplainFn = Callable[[dict[str, Any], dict[str, str]], Awaitable[Any]]

TAG_HEADER = "isvc-tag"
"""Request header: ``latest`` or ``prev`` (or a revision name) forces the predictor revision that
serves the request (KServe's tag routing). Every predict/infer response carries it back with the
tag that served it, and ``isvc-revision`` with that revision's name."""

REQUEST_INFO: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "isvc_request_info", default=None
)
"""Per request: the HTTP layer puts a dict here (``force_tag`` from :data:`TAG_HEADER`); the
traffic router writes ``served_by`` and ``revision`` into it."""


@dataclass(frozen=True)
class Description:
    """The endpoint's tensors and platform (V2 metadata), learnt from the predictor."""

    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    platform: str = ""
    output_name: str = "output-0"
    """The name the predictor's output gets in the V2 response before ``postprocess``."""


Describe = Callable[[], Awaitable[Description]]

_default_executor: ThreadPoolExecutor | None = None


def hook_executor() -> ThreadPoolExecutor:
    """The thread pool sync user hooks run on (created on first use, not at import)."""
    global _default_executor
    if _default_executor is None:
        _default_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="isvc-hook")
    return _default_executor


def overrides(obj: Any, hook: str, base: type = Transformer) -> bool:
    """Whether ``obj`` defines ``hook`` itself (a base-class default can be skipped)."""
    own = getattr(type(obj), hook, None)
    return own is not None and own is not getattr(base, hook, None)


async def call_hook(obj: Any, hook: str, *args: Any, executor: Executor | None = None) -> Any:
    """Call a user hook, sync ones on a worker thread; wrap foreign errors as :class:`UserCodeError`."""
    fn = getattr(obj, hook)
    try:
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        result = await asyncio.get_running_loop().run_in_executor(executor or hook_executor(), fn, *args)
        if inspect.isawaitable(result):
            result = await result
        return result
    except ISVCError:
        raise
    except Exception as exc:
        raise UserCodeError(hook, exc) from exc


def to_batch(payload: Any, where: str = "preprocess") -> Any:
    """The predictor's input from whatever ``preprocess`` returned (or the raw request).

    A V2 tensor of ``shape: []`` (0-d) is one row of one value, as a 0-d array from ``preprocess`` is:

    >>> to_batch(InferRequest.from_json({"inputs": [
    ...     {"name": "input-0", "shape": [], "datatype": "BYTES", "data": ["great"]}]})).shape
    (1, 1)
    """
    if isinstance(payload, (np.ndarray, pd.DataFrame)):
        return payload if payload.ndim >= 2 or isinstance(payload, pd.DataFrame) else payload.reshape(-1, 1)
    if isinstance(payload, dict) and "instances" not in payload:
        inputs = payload.get("inputs")
        if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict) and "datatype" in inputs[0]:
            payload = InferRequest.from_json(payload)
    if isinstance(payload, InferRequest):
        x = payload.as_numpy()
        return x.reshape(1, 1) if x.ndim == 0 else x
    if isinstance(payload, dict):
        if "instances" in payload:
            return instances_to_array(payload["instances"])
        inputs = payload.get("inputs")
        if isinstance(inputs, list):
            return instances_to_array(inputs)
    if isinstance(payload, list):
        return instances_to_array(payload)
    raise UserCodeError(
        where,
        TypeError(
            f"returned {type(payload).__name__}; expected a dict with 'instances', "
            "an InferRequest, a numpy array or a DataFrame"
        ),
    )


def declared(transformer: Any, hook: str) -> list[TensorSpec] | None:
    """What a transformer declares with ``get_input_types()`` / ``get_output_types()``, or ``None``."""
    if transformer is None or not overrides(transformer, hook):
        return None
    try:
        entries = getattr(transformer, hook)()
    except ISVCError:
        raise
    except Exception as exc:
        raise UserCodeError(hook, exc) from exc
    if not isinstance(entries, list | tuple):
        raise UserCodeError(hook, TypeError(f"returned {type(entries).__name__}, expected a list"))
    try:
        return [TensorSpec.of(e, f"{hook}()[{i}]") for i, e in enumerate(entries)]
    except ValueError as exc:
        raise UserCodeError(hook, exc) from exc


def endpoint_tensors(
    transformer: Any, predictor_inputs: list[dict[str, Any]], predictor_outputs: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The inputs and outputs *the endpoint* takes and returns, for V2 metadata.

    A transformer's declaration wins (``get_input_types`` / ``get_output_types``); without
    one, the predictor's tensors are the endpoint's only where the transformer does not
    rewrite them (no ``preprocess`` / ``postprocess`` of its own); otherwise nothing is
    advertised rather than a tensor the endpoint does not take or return.
    """

    def pick(hook: str, declare: str, fallback: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = declared(transformer, declare)
        if found is not None:
            return [dict(t) for t in found]
        rewritten = transformer is not None and overrides(transformer, hook)
        return [] if rewritten else [dict(t) for t in fallback]

    return (
        pick("preprocess", "get_input_types", predictor_inputs),
        pick("postprocess", "get_output_types", predictor_outputs),
    )


def _predictions(out: Any) -> list[Any]:
    if isinstance(out, pd.DataFrame):
        return out.to_dict(orient="records")
    return np.asarray(out).tolist()


class ModelPipeline:
    """transformer.preprocess → predict → transformer.postprocess, for V1 and V2."""

    def __init__(
        self,
        name: str,
        predict: PredictFn,
        transformer: Any | None = None,
        inputs: list[dict[str, Any]] | None = None,
        outputs: list[dict[str, Any]] | None = None,
        platform: str = "",
        version: str = "1",
        ready: Callable[[], bool] | None = None,
        explain: ExplainFn | None = None,
        output_name: str = "output-0",
        describe: Describe | None = None,
        status: Callable[[], dict[str, Any]] | None = None,
        describe_timeout_s: float | None = None,
    ) -> None:
        self.name = name
        self._predict = predict
        self.transformer = transformer
        self.inputs = inputs or []
        self.outputs = outputs or []
        self.platform = platform
        self.version = version
        self._ready = ready
        self._explain = explain
        self._pre = transformer is not None and overrides(transformer, "preprocess")
        self._post = transformer is not None and overrides(transformer, "postprocess")
        self.output_name = output_name
        """The name the predictor's output gets in the V2 response before ``postprocess``."""
        self.explainer_model: Any = None
        """The ``{name}-explainer`` model when ``spec.explainer`` is set (see :func:`served_models`)."""
        self._describe = describe
        """Learns inputs/outputs/platform on first need (a predictor scaled to zero is not woken
        by the ingress starting, only by a request that needs it)."""
        self._describing: asyncio.Future[None] | None = None
        self._describe_timeout_s = describe_timeout_s
        """Bound on one ``describe`` (the cold-start bound): past it the request that needs the
        metadata is a 503 and the next one asks again, so a lost call cannot stall metadata."""
        self._status = status

    async def described(self) -> None:
        """Fill inputs/outputs/platform/output_name from ``describe`` once (first caller waits)."""
        if self._describe is None:
            return
        failed = (
            self._describing is not None
            and self._describing.done()
            and (self._describing.cancelled() or self._describing.exception() is not None)
        )
        if self._describing is None or failed:
            # Shared by every request that needs it: no one request's cancellation may end it.
            self._describing = detached(self._learn(self._describe))
        await asyncio.shield(self._describing)

    async def _learn(self, describe: Describe) -> None:
        try:
            d = await asyncio.wait_for(describe(), self._describe_timeout_s)
        except TimeoutError:
            raise ColdStartTimeout(
                f"model '{self.name}': the predictor did not describe itself within "
                f"{self._describe_timeout_s:g}s (isvc.dev/cold-start-timeout); the next request asks again"
            ) from None
        self.inputs, self.outputs, self.platform, self.output_name = (
            d.inputs,
            d.outputs,
            d.platform,
            d.output_name,
        )
        self._describe = None

    def status(self) -> dict[str, Any]:
        """Extra fields of ``GET /v1/models/{name}`` (traffic table, shadow agreement)."""
        return self._status() if self._status is not None else {}

    @property
    def ready(self) -> bool:
        """Transformer (``self.ready``) and predictor both loaded."""
        if self.transformer is not None and not getattr(self.transformer, "ready", True):
            return False
        return self._ready() if self._ready is not None else True

    async def predict_v1(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        """A V1 ``:predict`` request body → the V1 response body."""
        rec = recorder()
        payload: Any = body
        if self._pre:
            t = perf_counter()
            payload = await call_hook(self.transformer, "preprocess", payload, headers)
            rec.observe("preprocess", self.name, perf_counter() - t)
        batch = to_batch(payload, "preprocess" if self._pre else "request")
        t = perf_counter()
        out = await self._predict(batch)
        rec.observe("predict", self.name, perf_counter() - t)
        response: Any = {"predictions": _predictions(out)}
        if self._post:
            t = perf_counter()
            response = await call_hook(self.transformer, "postprocess", response, headers)
            rec.observe("postprocess", self.name, perf_counter() - t)
        return response

    async def infer_v2(self, request: InferRequest, headers: dict[str, str]) -> dict[str, Any] | BinaryBody:
        """A V2 ``/infer`` request → the V2 response body (requested outputs only).

        When the request asks for binary outputs (binary tensor data extension), a
        :class:`BinaryBody` instead of the JSON dict.
        """
        rec = recorder()
        payload: Any = request
        if self._pre:
            t = perf_counter()
            payload = await call_hook(self.transformer, "preprocess", payload, headers)
            rec.observe("preprocess", self.name, perf_counter() - t)
        batch = to_batch(payload, "preprocess" if self._pre else "request")
        t = perf_counter()
        out = await self._predict(batch)
        rec.observe("predict", self.name, perf_counter() - t)
        if isinstance(out, pd.DataFrame):
            outputs = [InferOutput.from_numpy(str(c), out[c].to_numpy()) for c in out.columns]
        else:
            await self.described()
            outputs = [InferOutput.from_numpy(self.output_name, np.asarray(out))]
        response: Any = InferResponse(
            model_name=self.name, outputs=outputs, id=request.id, model_version=self.version
        )
        if self._post:
            t = perf_counter()
            response = await call_hook(self.transformer, "postprocess", response, headers)
            rec.observe("postprocess", self.name, perf_counter() - t)
        requested = [o["name"] if isinstance(o, dict) else o for o in (request.outputs or [])] or None
        if isinstance(response, dict) and "outputs" in response:
            response = InferResponse.from_json(
                {"model_name": self.name, "id": request.id, "model_version": self.version, **response}
            )
        if isinstance(response, InferResponse):
            if response.id is None:
                response.id = request.id
            if request.wants_binary():
                return BinaryBody(*response.to_binary(requested, request.binary_output))
            return response.to_json(requested)
        if isinstance(response, dict):
            return response
        raise UserCodeError("postprocess", TypeError(f"returned {type(response).__name__}, expected a dict"))

    async def explain_v1(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        """A V1 ``:explain`` request body → the explanation; 501 when no explainer is configured."""
        if self._explain is None:
            raise NotConfigured(
                f"model '{self.name}' has no explainer configured (add spec.explainer to its spec)"
            )
        return await self._explain(body, headers)

    async def metadata_v2(self) -> dict[str, Any]:
        """``GET /v2/models/{name}``: name, versions, platform, inputs, outputs."""
        await self.described()
        return model_metadata(self.name, self.version, self.platform, self.inputs, self.outputs)


def model_metadata(
    name: str, version: str, platform: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
) -> dict[str, Any]:
    """The V2 model metadata body (``GET /v2/models/{name}``)."""
    return {"name": name, "versions": [version], "platform": platform, "inputs": inputs, "outputs": outputs}


def require_dict(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    return body
