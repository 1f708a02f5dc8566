"""pipelines.routing.assemble over fake predictor sinks: one sink per predictor node, the
canary split, metadata from the stable predictor (asked on first need, never at assembly),
the version from the plan. No Ray."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipelines.plan import PredictorNode, ServicePlan, build_plan
from pipelines.routing import assemble
from pipelines.spec import parse_isvc
from transformers_.base import Transformer

STABLE_META = {
    "inputs": [{"name": "stable-in", "datatype": "FP64", "shape": [-1, 3]}],
    "outputs": [{"name": "stable-out", "datatype": "FP64", "shape": [-1]}],
    "platform": "stable-platform",
}
CANARY_META = {
    "inputs": [{"name": "canary-in", "datatype": "FP32", "shape": [-1, 7]}],
    "outputs": [{"name": "canary-out", "datatype": "FP32", "shape": [-1]}],
    "platform": "canary-platform",
}


class FakeSink:
    """A predictor sink: answers ``value`` for every row and counts rows and calls."""

    def __init__(self, node: PredictorNode, value: float, meta: dict[str, Any]) -> None:
        self.node = node
        self.value = value
        self.meta = meta
        self.rows = 0
        self.calls = 0

    async def predict(self, batch: Any) -> Any:
        self.calls += 1
        self.rows += len(batch)
        return np.full(len(batch), self.value)

    async def metadata(self) -> dict[str, Any]:
        return self.meta


def canary_plan(percent: int = 20, annotations: dict[str, str] | None = None) -> ServicePlan:
    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m", "namespace": "ns", "annotations": annotations or {}},
        "spec": {
            "predictor": {
                "canaryTrafficPercent": percent,
                "sklearn": {"storageUri": "s3://b/m/v1/"},
                "newModel": {"sklearn": {"storageUri": "s3://b/m/v2/"}},
            }
        },
    }
    return build_plan(parse_isvc(doc))


class Factory:
    """``make_sink``: stable sinks answer 0.0, the canary 1.0; remembers every sink it made."""

    def __init__(self) -> None:
        self.made: list[FakeSink] = []

    def __call__(self, node: PredictorNode) -> FakeSink:
        canary = node.deployment == "predictor-canary"
        sink = FakeSink(node, 1.0 if canary else 0.0, CANARY_META if canary else STABLE_META)
        self.made.append(sink)
        return sink


async def test_one_sink_per_predictor_node_stable_then_canary():
    plan = canary_plan()
    make = Factory()
    await assemble(plan, make)
    assert [s.node.deployment for s in make.made] == ["predictor", "predictor-canary"]
    assert [s.node.storage_uri for s in make.made] == ["s3://b/m/v1/", "s3://b/m/v2/"]
    assert make.made[0].node == plan.predictor and make.made[1].node == plan.canary


async def test_canary_gets_roughly_its_percent():
    make = Factory()
    pipe = await assemble(canary_plan(20), make)
    n = 400
    answers = [
        (await pipe.predict_v1({"instances": [[1.0, 2.0, 3.0]]}, {}))["predictions"][0] for _ in range(n)
    ]
    stable, canary = make.made
    assert stable.rows + canary.rows == n
    assert answers.count(1.0) == canary.rows and answers.count(0.0) == stable.rows
    # 20% of 400 is 80 (standard deviation 8): loose bounds.
    assert 40 <= canary.rows <= 130, canary.rows


async def test_full_canary_percent_sends_everything_to_the_canary():
    make = Factory()
    pipe = await assemble(canary_plan(100), make)
    for _ in range(20):
        await pipe.predict_v1({"instances": [[1.0, 2.0, 3.0]]}, {})
    stable, canary = make.made
    assert (stable.rows, canary.rows) == (0, 20)


async def test_metadata_from_stable_sink_and_version_from_plan():
    plan = canary_plan(annotations={"isvc.dev/model-version": "v3"})
    make = Factory()
    pipe = await assemble(plan, make)
    assert pipe.version == "v3"
    meta = await pipe.metadata_v2()
    assert pipe.platform == "stable-platform"
    assert pipe.inputs == STABLE_META["inputs"] and pipe.outputs == STABLE_META["outputs"]
    assert meta["versions"] == ["v3"] and meta["name"] == "m"
    assert meta["inputs"] == STABLE_META["inputs"] and meta["platform"] == "stable-platform"


async def test_v2_response_names_the_stable_output_and_carries_the_version():
    from pipelines.protocol import InferRequest

    plan = canary_plan(1, annotations={"isvc.dev/model-version": "v3"})
    pipe = await assemble(plan, Factory())
    request = InferRequest.from_json(
        {"inputs": [{"name": "stable-in", "shape": [2, 3], "datatype": "FP64", "data": [1, 2, 3, 4, 5, 6]}]}
    )
    out = await pipe.infer_v2(request, {})
    assert out["model_version"] == "v3"
    assert [o["name"] for o in out["outputs"]] == ["stable-out"]
    assert out["outputs"][0]["shape"] == [2]


async def test_transformer_declaration_overrides_stable_metadata():
    class Declares(Transformer):
        def preprocess(self, payload, headers=None):
            return payload

        def get_input_types(self):
            return [{"name": "text", "datatype": "BYTES", "shape": [-1]}]

    pipe = await assemble(canary_plan(), Factory(), Declares("m"))
    await pipe.described()
    assert pipe.inputs == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert pipe.outputs == STABLE_META["outputs"]


async def test_an_explainer_in_the_plan_needs_an_explainer_sink() -> None:
    from pipelines.errors import NotConfigured

    doc = {
        "metadata": {"name": "m"},
        "spec": {
            "predictor": {"sklearn": {"storageUri": "s3://b/m"}},
            "explainer": {"shap": {"type": "KernelShap", "config": {"nsamples": 10}}},
        },
    }
    plan = build_plan(parse_isvc(doc))

    class Sink:
        async def predict(self, batch):
            return batch

        async def metadata(self):
            return {"inputs": [], "outputs": [], "platform": "sklearn"}

    with pytest.raises(NotConfigured, match="spec.explainer is set but no explainer was given"):
        await assemble(plan, lambda node: Sink())
    plain = build_plan(parse_isvc({**doc, "spec": {"predictor": doc["spec"]["predictor"]}}))
    pipe = await assemble(plain, lambda node: Sink())
    with pytest.raises(NotConfigured, match="has no explainer configured") as info:
        await pipe.explain_v1({"instances": [[1]]}, {})
    assert info.value.status_code == 501


async def test_assembly_calls_no_predictor_metadata_is_learnt_on_first_need():
    """A predictor scaled to zero must not be woken by the ingress starting (only by a request)."""
    asked: list[str] = []

    class Counting(FakeSink):
        async def metadata(self) -> dict[str, Any]:
            asked.append(self.node.deployment)
            return self.meta

    pipe = await assemble(canary_plan(), lambda node: Counting(node, 0.0, STABLE_META))
    assert asked == [] and pipe.ready
    await pipe.metadata_v2()
    await pipe.metadata_v2()
    assert asked == ["predictor"]


async def test_a_describe_that_never_answers_is_a_503_and_the_next_request_asks_again() -> None:
    import asyncio

    from pipelines.errors import ColdStartTimeout

    class Lost(Factory):
        """The first metadata call never answers (a call lost while a revision was replaced)."""

        asked = 0

        def __call__(self, node: PredictorNode) -> FakeSink:
            sink = super().__call__(node)
            real = sink.metadata

            async def metadata() -> dict[str, Any]:
                Lost.asked += 1
                if Lost.asked == 1:
                    await asyncio.Event().wait()
                return await real()

            sink.metadata = metadata  # type: ignore[method-assign]
            return sink

    plan = canary_plan(annotations={"isvc.dev/cold-start-timeout": "0.2s"})
    pipe = await assemble(plan, Lost())
    with pytest.raises(ColdStartTimeout, match="did not describe itself within 0.2s"):
        await pipe.metadata_v2()
    meta = await pipe.metadata_v2()
    assert meta["inputs"] == STABLE_META["inputs"] and Lost.asked == 2


async def test_metadata_is_learnt_outside_the_request_and_a_cancelled_lookup_is_asked_again() -> None:
    import asyncio
    import contextvars

    request = contextvars.ContextVar("request", default=None)

    class Cancelled(Factory):
        """The first metadata call is cancelled (Ray cancels a call with its request)."""

        asked: list[object] = []

        def __call__(self, node: PredictorNode) -> FakeSink:
            sink = super().__call__(node)
            real = sink.metadata

            async def metadata() -> dict[str, Any]:
                Cancelled.asked.append(request.get())
                if len(Cancelled.asked) == 1:
                    raise asyncio.CancelledError
                return await real()

            sink.metadata = metadata  # type: ignore[method-assign]
            return sink

    pipe = await assemble(canary_plan(), Cancelled())
    request.set("request 1")
    with pytest.raises(asyncio.CancelledError):
        await pipe.metadata_v2()
    meta = await pipe.metadata_v2()  # not the cancelled result again
    assert meta["inputs"] == STABLE_META["inputs"]
    assert Cancelled.asked == [None, None]  # run in no request's context
