"""Explanations at the ingress, no Ray: ``:explain`` requests and the V2 model ``{name}-explainer``.

:class:`Explanations` turns ``:explain`` requests into one call per instance to an
:class:`~pipelines.routing.sinks.ExplainerSink` (concurrently, so instances spread over the
explainer's replicas) under the explainer's ``timeout``; :class:`ExplainerModel` serves it to V2
clients. The explainer side is :mod:`pipelines.dataplane.explain`.

Response of ``POST /v1/models/{name}:explain``::

    {"explanations": [<one per instance, in order>]}
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

import numpy as np

from explainers import Explainer
from explainers.data import encode
from pipelines.dataplane.metrics import recorder
from pipelines.dataplane.pipeline import model_metadata
from pipelines.errors import InvalidInput, ModelNotReady, RequestTimeout
from pipelines.protocol import BinaryBody, InferOutput, InferRequest, InferResponse

__all__ = [
    "DEFAULT_EXPLAIN_TIMEOUT_S",
    "ExplainerModel",
    "Explanations",
    "encode_row",
    "instances_to_rows",
    "texts_of",
]

DEFAULT_EXPLAIN_TIMEOUT_S = 60.0
"""An explanation's time limit when ``spec.explainer.timeout`` is unset (504 past it)."""


def instances_to_rows(
    instances: Any, feature_names: list[str], categorical: dict[int, list[str]] | None = None
) -> tuple[np.ndarray, bool]:
    """V1 ``instances`` → float64 rows in ``feature_names`` order, and whether they were objects.

    A categorical feature (``categorical``: column index → its values) takes one of its values,
    as the caller's model gets it, and becomes its code.

    >>> instances_to_rows([{"b": 2, "a": 1}], ["a", "b"])
    (array([[1., 2.]]), True)
    >>> instances_to_rows([[3, "premium"]], ["a", "plan"], {1: ["basic", "premium"]})
    (array([[3., 1.]]), False)
    >>> instances_to_rows([[1, 2, 3]], ["a", "b"])
    Traceback (most recent call last):
    ...
    pipelines.errors.InvalidInput: instances[0] has 3 values, expected 2 (a, b)
    """
    if not isinstance(instances, list) or not instances:
        raise InvalidInput('"instances" must be a non-empty list of rows to explain')
    as_objects = isinstance(instances[0], dict)
    rows = []
    for i, inst in enumerate(instances):
        if as_objects != isinstance(inst, dict):
            raise InvalidInput(f"instances[{i}]: mix of objects and lists; send one form")
        if isinstance(inst, dict):
            missing = [f for f in feature_names if f not in inst]
            if missing:
                raise InvalidInput(f"instances[{i}] is missing {', '.join(missing)}")
            values = [inst[f] for f in feature_names]
        elif isinstance(inst, (list, tuple)):
            if len(inst) != len(feature_names):
                raise InvalidInput(
                    f"instances[{i}] has {len(inst)} values, expected {len(feature_names)} "
                    f"({', '.join(feature_names)})"
                )
            values = list(inst)
        else:
            raise InvalidInput(f"instances[{i}] must be an object or a list of {len(feature_names)} numbers")
        rows.append(encode_row(values, feature_names, categorical or {}, f"instances[{i}]"))
    return np.asarray(rows, dtype=np.float64), as_objects


def encode_row(
    values: list[Any], names: list[str], categorical: dict[int, list[str]], where: str
) -> list[float]:
    """One row's values as the explainer's numbers: a categorical value as its code, the rest as
    finite floats; an error names ``where`` and the feature."""
    row = []
    for j, value in enumerate(values):
        if j in categorical:
            code = encode(value, categorical[j])
            if code is None:
                raise InvalidInput(
                    f"{where}.{names[j]}: {value!r} is not one of its values ({', '.join(categorical[j])})"
                )
            row.append(code)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"{where}.{names[j]}: every explained feature must be a number ({exc})"
            ) from exc
        if not np.isfinite(number):
            raise InvalidInput(f"{where}.{names[j]}: features must be finite numbers")
        row.append(number)
    return row


def texts_of(instances: Any, where: str = "instances") -> np.ndarray:
    """V1 ``instances`` for a text explainer: a non-empty list of strings.

    >>> texts_of(["great food", "awful"]).tolist()
    ['great food', 'awful']
    """
    if not isinstance(instances, list) or not instances:
        raise InvalidInput(f'"{where}" must be a non-empty list of texts to explain')
    for i, text in enumerate(instances):
        if not isinstance(text, str):
            raise InvalidInput(f"{where}[{i}] must be a string (this explainer explains text)")
    return np.array(instances, dtype=object)


class Explanations:
    """The ingress side of ``:explain``: parse, check parameters, fan out per instance, time limit.

    ``sink`` is the explainer (a Ray handle, or a runner in this process); ``explainer_cls``
    checks per-request ``parameters`` here, before any work is sent.
    """

    def __init__(
        self,
        name: str,
        sink: Any,
        explainer_cls: type[Explainer],
        timeout_s: float | None = None,
    ) -> None:
        self.name = name
        self.sink = sink
        self.explainer_cls = explainer_cls
        self.timeout_s = timeout_s or DEFAULT_EXPLAIN_TIMEOUT_S
        self.feature_names: list[str] | None = None
        self.categorical_names: dict[int, list[str]] = {}
        self.ready_task: asyncio.Future[None] | None = None

    @property
    def ready(self) -> bool:
        return self.feature_names is not None

    async def wait_ready(self) -> None:
        """Ask the explainer what it explains (it answers once loaded)."""
        self.use_info(await self.sink.info())

    def use_info(self, info: dict[str, Any]) -> None:
        """What the explainer explains (its ``info()``): the features, in order, and categories."""
        self.categorical_names = {int(k): list(v) for k, v in (info.get("categorical_names") or {}).items()}
        self.feature_names = list(info["feature_names"])

    def parameters(self, raw: Any, where: str = "parameters") -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise InvalidInput(f"{where} must be an object of {self.explainer_cls.kind} settings")
        problems = self.explainer_cls.check_config(raw, where=where)
        if problems:
            raise InvalidInput("; ".join(problems))
        return raw

    async def explain_rows(
        self, rows: np.ndarray, parameters: dict[str, Any], as_objects: bool
    ) -> list[dict[str, Any]]:
        """Each row explained on its own call (concurrently), all under one time limit."""
        if not self.ready:
            raise ModelNotReady(f"{self.name}-explainer")
        start = perf_counter()

        async def one(i: int) -> dict[str, Any]:
            try:
                result: list[dict[str, Any]] = await self.sink.explain(
                    rows[i : i + 1], parameters, as_objects, self.timeout_s
                )
            except InvalidInput as exc:
                raise InvalidInput(f"instances[{i}]: {exc.message}") from exc
            return result[0]

        tasks = [asyncio.ensure_future(one(i)) for i in range(len(rows))]
        late = RequestTimeout(
            f"explaining {len(rows)} instance(s) took longer than the explainer's timeout of "
            f"{self.timeout_s:g}s (spec.explainer.timeout); the work was cancelled"
        )
        try:
            explained = list(await asyncio.wait_for(asyncio.gather(*tasks), self.timeout_s))
        except (TimeoutError, RequestTimeout):  # here, or the replica's own deadline first
            raise late from None
        finally:
            for t in tasks:
                t.cancel()
        recorder().observe("explain", self.name, perf_counter() - start)
        return explained

    async def explain_v1(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """``{"instances": [...], "parameters"?: {...}}`` → ``{"explanations": [...]}``."""
        if not self.ready:
            raise ModelNotReady(f"{self.name}-explainer")
        assert self.feature_names is not None
        params = self.parameters(body.get("parameters"))
        if self.explainer_cls.text:
            rows, as_objects = texts_of(body.get("instances")), False
        else:
            rows, as_objects = instances_to_rows(
                body.get("instances"), self.feature_names, self.categorical_names
            )
        return {"explanations": await self.explain_rows(rows, params, as_objects)}


class ExplainerModel:
    """``{name}-explainer`` for V2 clients: the model's inputs in, one BYTES ``explanation`` out.

    One JSON explanation per row (MLServer's convention: ``content_type: str``). Per-request
    settings go in the request's ``parameters.explain_parameters``.
    """

    timeout_handled = True
    """Its own time limit (the explainer's) applies, not the ingress's."""

    def __init__(
        self,
        explanations: Explanations,
        inputs: list[dict[str, Any]] | Callable[[], Awaitable[list[dict[str, Any]]]],
        version: str = "1",
    ) -> None:
        self.explanations = explanations
        self.name = f"{explanations.name}-explainer"
        self.inputs = inputs
        """The model's inputs, or an ``async () -> inputs`` asked when metadata is first needed."""
        self.version = version
        self.platform = f"isvc-explainer/{explanations.explainer_cls.kind}"

    @property
    def ready(self) -> bool:
        return self.explanations.ready

    async def metadata_v2(self) -> dict[str, Any]:
        explanation = {"name": "explanation", "datatype": "BYTES", "shape": [-1]}
        inputs = self.inputs if isinstance(self.inputs, list) else await self.inputs()
        return model_metadata(self.name, self.version, self.platform, inputs, [explanation])

    async def predict_v1(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        raise InvalidInput(
            f"'{self.name}' explains; POST /v1/models/{self.explanations.name}:explain "
            f"(or /v1/models/{self.name}:explain, or V2 /v2/models/{self.name}/infer)"
        )

    async def explain_v1(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        return await self.explanations.explain_v1(body, headers)

    def _rows(self, request: InferRequest) -> np.ndarray:
        if self.explanations.explainer_cls.text:
            if len(request.inputs) != 1:
                raise InvalidInput("inputs: send one BYTES tensor of texts to explain")
            values = np.asarray(request.inputs[0].as_numpy(), dtype=object).reshape(-1)
            return texts_of([v.decode() if isinstance(v, bytes) else v for v in values], "inputs[0]")
        names = self.explanations.feature_names or []
        if len(request.inputs) == 1:
            x = np.asarray(request.inputs[0].as_numpy())
            x = x.reshape(1, -1) if x.ndim == 1 else x
            if x.ndim != 2 or x.shape[1] != len(names):
                raise InvalidInput(
                    f"inputs[0] ('{request.inputs[0].name}'): expected shape [N, {len(names)}] "
                    f"({', '.join(names)}), got {list(x.shape)}"
                )
            cols = [x[:, j] for j in range(x.shape[1])]
        else:
            given = {i.name for i in request.inputs}
            missing = [n for n in names if n not in given]
            if missing:
                raise InvalidInput(f"inputs are missing {', '.join(missing)} (one [N] tensor per feature)")
            cols = [np.asarray(request.get_input(n).as_numpy()).reshape(-1) for n in names]
            if len({len(c) for c in cols}) != 1:
                raise InvalidInput("every feature input must have the same number of rows")
        cats = self.explanations.categorical_names
        table = zip(*cols, strict=True)  # BYTES values: encode() and float() read bytes as they are
        rows = [encode_row(list(r), names, cats, f"inputs (row {i})") for i, r in enumerate(table)]
        return np.asarray(rows, dtype=np.float64)

    async def infer_v2(self, request: InferRequest, headers: dict[str, str]) -> dict[str, Any] | BinaryBody:
        if not self.explanations.ready:
            raise ModelNotReady(self.name)
        params = self.explanations.parameters(
            (request.parameters or {}).get("explain_parameters"), where="parameters.explain_parameters"
        )
        rows = self._rows(request)
        results = await self.explanations.explain_rows(rows, params, as_objects=False)
        texts = np.array([json.dumps(r) for r in results], dtype=object)
        out = InferOutput.from_numpy("explanation", texts, {"content_type": "str"})
        response = InferResponse(
            model_name=self.name, outputs=[out], id=request.id, model_version=self.version
        )
        requested = [o["name"] if isinstance(o, dict) else o for o in (request.outputs or [])] or None
        if request.wants_binary():
            return BinaryBody(*response.to_binary(requested, request.binary_output))
        return response.to_json(requested)
