"""Transformer base class, KServe compatibility, and the churn example."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from pipelines.dataplane import call_hook, construct, load_transformer, unknown_args
from pipelines.errors import InvalidInput, SpecError, UserCodeError
from pipelines.plan import PredictorNode, ServicePlan, TransformerNode
from pipelines.protocol import InferOutput, InferRequest, InferResponse
from transformers_ import Model
from transformers_.churn import ChurnTransformer, risk_tier


class KServeStyle(Model):
    """Written for KServe: only the base-class import changed."""

    def __init__(self, name: str, predictor_host: str):
        super().__init__(name)
        self.predictor_host = predictor_host
        self.ready = False

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def preprocess(self, payload, headers=None):
        self.thread = threading.current_thread().name
        return {"instances": [[v * 2 for v in row] for row in payload["instances"]]}


def test_kserve_style_class_constructs_with_name_and_predictor_host():
    t = construct(KServeStyle, "m", {}, predictor_host="ns-m.predictor")
    assert (t.name, t.predictor_host, t.ready) == ("m", "ns-m.predictor", False)
    with pytest.raises(SpecError, match="args.color: KServeStyle\\(\\) takes no argument 'color'"):
        construct(KServeStyle, "m", {"color": "red"}, predictor_host="x")


def test_unknown_args_are_errors_even_under_the_base_class():
    class Plain(Model):  # inherits Transformer.__init__(name, predictor_host=None): no **kwargs
        pass

    assert unknown_args(Plain, {"threshold": 1}) == ["threshold"]
    assert unknown_args(Plain, {"predictor_host": "h"}) == []


async def test_sync_hooks_run_off_the_event_loop():
    t = KServeStyle("m", "h")
    out = await call_hook(t, "preprocess", {"instances": [[1, 2]]}, {})
    assert out == {"instances": [[2, 4]]}
    assert t.thread != threading.current_thread().name


async def test_async_hooks_and_errors():
    class Async(Model):
        async def preprocess(self, payload, headers=None):
            await asyncio.sleep(0)
            if payload == "bad":
                raise InvalidInput("bad payload")
            if payload == "bug":
                raise ZeroDivisionError("oops")
            return payload

    t = Async("m")
    assert await call_hook(t, "preprocess", {"x": 1}, {}) == {"x": 1}
    with pytest.raises(InvalidInput):
        await call_hook(t, "preprocess", "bad", {})
    with pytest.raises(UserCodeError, match="preprocess raised ZeroDivisionError"):
        await call_hook(t, "preprocess", "bug", {})


@pytest.fixture
async def churn(churn_artifacts: Path) -> ChurnTransformer:
    plan = ServicePlan(
        name="churn",
        namespace="default",
        predictor=PredictorNode(runtime="sklearn"),
        transformer=TransformerNode(
            "transformers_.churn:ChurnTransformer", str(churn_artifacts / "transformer")
        ),
    )
    return await load_transformer(plan)


async def test_churn_scales_like_the_scaler(churn: ChurnTransformer):
    rows = [[41, 30, 120.5, 6, 21], [25, 2000, 20.0, 0, 1]]
    x = await churn.preprocess({"instances": rows})
    np.testing.assert_allclose(x, churn.scaler.transform(np.array(rows, dtype=float)))
    by_name = await churn.preprocess(
        {
            "instances": [
                dict(
                    zip(
                        ["age", "tenure_days", "monthly_spend", "support_tickets", "last_login_days"],
                        r,
                        strict=True,
                    )
                )
                for r in rows
            ]
        }
    )
    np.testing.assert_allclose(by_name, x)


async def test_churn_v2_and_errors(churn: ChurnTransformer):
    req = InferRequest.from_json(
        {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP32", "data": [41, 30, 120.5, 6, 21]}]}
    )
    assert (await churn.preprocess(req)).shape == (1, 5)
    with pytest.raises(InvalidInput, match="instances\\[0\\] is missing age"):
        await churn.preprocess({"instances": [{"tenure_days": 1}]})
    with pytest.raises(InvalidInput, match="expected shape"):
        await churn.preprocess(
            InferRequest.from_json(
                {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
            )
        )


async def test_churn_postprocess_v1_and_v2():
    t = ChurnTransformer("churn")
    out = await t.postprocess({"predictions": [[0.2, 0.8], [0.6, 0.4], [0.9, 0.1]]})
    assert [p["risk_tier"] for p in out["predictions"]] == ["HIGH", "MEDIUM", "LOW"]
    assert out["predictions"][0]["churn_probability"] == 0.8
    resp = InferResponse(model_name="churn", outputs=[InferOutput.from_numpy("o", np.array([[0.5, 0.5]]))])
    v2 = (await t.postprocess(resp)).to_json()
    assert [o["name"] for o in v2["outputs"]] == ["churn_probability", "risk_tier"]
    assert v2["outputs"][1]["data"] == ["MEDIUM"]
    assert (risk_tier(0.71), risk_tier(0.3), risk_tier(0.31)) == ("HIGH", "LOW", "MEDIUM")


ROW5 = {"age": 41, "tenure_days": 30, "monthly_spend": 120.5, "support_tickets": 6, "last_login_days": 21}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({**ROW5, "age": None}, r"instances\[1\]: every feature must be a number"),
        ({**ROW5, "age": "old"}, r"instances\[1\]: every feature must be a number"),
        ({**ROW5, "age": [1, 2]}, r"instances\[1\]: every feature must be a number"),
        ([1, 2, 3], r"instances\[1\] has 3 values, expected 5"),
        ("row", r"instances\[1\] must be an object or a list"),
        ({k: v for k, v in ROW5.items() if k != "tenure_days"}, r"instances\[1\] is missing tenure_days"),
    ],
)
async def test_churn_v1_bad_instance_is_named_in_a_batch(churn: ChurnTransformer, bad, message):
    """The vectorized path and the row-by-row path accept and reject the same instances."""
    with pytest.raises(InvalidInput, match=message):
        await churn.preprocess({"instances": [ROW5, bad, ROW5]})


async def test_churn_v1_objects_and_lists_scale_alike(churn: ChurnTransformer):
    as_objects = await churn.preprocess({"instances": [ROW5] * 300})
    as_lists = await churn.preprocess({"instances": [list(ROW5.values())] * 300})
    mixed = await churn.preprocess({"instances": [ROW5, list(ROW5.values())]})
    np.testing.assert_array_equal(as_objects, as_lists)
    np.testing.assert_array_equal(mixed, as_lists[:2])
    assert as_objects.shape == (300, 5)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([1, 2, 3], r"instances\[1\] has 3 values, expected 5"),
        ([41, 30, None, 6, 21], r"instances\[1\]: every feature must be a number"),
        ([[41], [30], [120.5], [6], [21]], r"instances\[1\]: every feature must be a number"),
        (ROW5, None),  # a mix of lists and objects is fine
    ],
)
async def test_churn_v1_lists_first_take_the_same_checks(churn: ChurnTransformer, bad, message):
    payload = {"instances": [list(ROW5.values()), bad]}
    if message is None:
        assert (await churn.preprocess(payload)).shape == (2, 5)
        return
    with pytest.raises(InvalidInput, match=message):
        await churn.preprocess(payload)
