"""The churn transformer's declared V2 tensors are what its hooks really take and return."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.protocol import InferOutput, InferRequest, InferResponse, TensorSpec
from tests.helpers import ROW
from transformers_.churn import FEATURES, ChurnTransformer


@pytest.fixture
def churn(churn_artifacts: Path) -> ChurnTransformer:
    t = ChurnTransformer("churn-classifier")
    t.model_dir = churn_artifacts / "transformer"
    assert t.load() is True
    return t


def concrete(shape: list[int], rows: int) -> list[int]:
    return [rows if d == -1 else d for d in shape]


def test_declarations_are_valid_tensor_specs(churn: ChurnTransformer):
    for i, entry in enumerate([*churn.get_input_types(), *churn.get_output_types()]):
        assert TensorSpec.of(entry, f"[{i}]") == entry


@pytest.mark.parametrize("rows", [1, 4])
async def test_postprocess_returns_the_declared_outputs(churn: ChurnTransformer, rows: int):
    proba = np.column_stack([np.linspace(0.05, 0.95, rows), 1 - np.linspace(0.05, 0.95, rows)])
    response = InferResponse(
        model_name="churn-classifier", outputs=[InferOutput.from_numpy("output-0", proba)], model_version="1"
    )
    out = await churn.postprocess(response, {})
    assert isinstance(out, InferResponse)
    body = out.to_json()
    got = [(o["name"], o["datatype"], o["shape"]) for o in body["outputs"]]
    declared = [(t["name"], t["datatype"], concrete(t["shape"], rows)) for t in churn.get_output_types()]
    assert got == declared
    named = {o["name"]: o["data"] for o in body["outputs"]}
    assert named["churn_probability"] == pytest.approx(proba[:, 1].tolist())
    assert set(named["risk_tier"]) <= {"LOW", "MEDIUM", "HIGH"}


@pytest.mark.parametrize("rows", [1, 3])
async def test_preprocess_takes_the_declared_input(churn: ChurnTransformer, rows: int):
    (spec,) = churn.get_input_types()
    assert spec["shape"][1:] == [len(FEATURES)]
    shape = concrete(spec["shape"], rows)
    request = InferRequest.from_json(
        {
            "inputs": [
                {
                    "name": spec["name"],
                    "datatype": spec["datatype"],
                    "shape": shape,
                    "data": [list(ROW.values())] * rows,
                }
            ]
        }
    )
    x = await churn.preprocess(request, {})
    assert isinstance(x, np.ndarray) and list(x.shape) == shape and x.dtype == np.float64
