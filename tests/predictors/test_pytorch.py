"""The pytorch runtime on TorchScript and torch.export files saved into tmp_path, against torch's output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.errors import InvalidInput, StorageError
from predictors.pytorch import PyTorchPredictor
from tests.predictors.serving import as_array, client_for, tensor, v1_predict, v2_infer

X = np.random.default_rng(3).normal(size=(6, 4))


class Scorer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(x), dim=-1)


def own(model: torch.nn.Module, rows: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(rows).float()).numpy()


def save_script(folder: Path, name: str = "model.pt") -> Scorer:
    model = Scorer().eval()
    torch.jit.script(model).save(str(folder / name))
    return model


def save_export(folder: Path) -> Scorer:
    model = Scorer().eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.zeros(2, 4),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(folder / "model.pt2"))
    return model


def test_torchscript_matches_torch(tmp_path: Path) -> None:
    model = save_script(tmp_path)
    p = PyTorchPredictor("m")
    p.load(tmp_path)
    assert p.device == ("cuda" if torch.cuda.is_available() else "cpu")
    np.testing.assert_allclose(p.predict(X), own(model, X), rtol=1e-6)
    with pytest.raises(InvalidInput, match=r"refused an input of shape \[2, 5\]"):
        p.predict(np.zeros((2, 5)))
    with pytest.raises(InvalidInput, match="takes numbers"):
        p.predict(np.array([["a"] * 4], dtype=object))


def test_exported_program_matches_torch_and_describes_itself(tmp_path: Path) -> None:
    model = save_export(tmp_path)
    p = PyTorchPredictor("m")
    p.load(tmp_path / "model.pt2")
    np.testing.assert_allclose(p.predict(X), own(model, X), rtol=1e-6)
    assert p.inputs() == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert p.outputs() == [{"name": "softmax", "datatype": "FP32", "shape": [-1, 3]}]
    with pytest.raises(InvalidInput, match=r"input 'x' has shape \[-1, 4\], got \[2, 5\]"):
        p.predict(np.zeros((2, 5)))


def test_mar_archives_and_bad_files_are_storage_errors(tmp_path: Path) -> None:
    (tmp_path / "model-store").mkdir()
    (tmp_path / "model-store" / "mnist.mar").write_bytes(b"PK")
    with pytest.raises(
        StorageError, match=r"mnist.mar: TorchServe model archives \(.mar\) are not supported: export"
    ):
        PyTorchPredictor("m").load(tmp_path)
    with pytest.raises(StorageError, match="not supported"):
        PyTorchPredictor("m").load(tmp_path / "model-store" / "mnist.mar")
    (tmp_path / "model.pt").write_bytes(b"garbage")
    with pytest.raises(StorageError, match="cannot load .*model.pt as TorchScript"):
        PyTorchPredictor("m").load(tmp_path)
    with pytest.raises(StorageError, match="needs a storageUri"):
        PyTorchPredictor("m").load(None)


@pytest.mark.parametrize("save", [save_script, save_export])
async def test_served_through_v1_and_v2(tmp_path: Path, save) -> None:
    model = save(tmp_path)
    expected = own(model, X[:3])
    async with await client_for(
        {"pytorch": {"storageUri": str(tmp_path), "protocolVersion": "v2"}}
    ) as client:
        np.testing.assert_allclose(await v1_predict(client, X[:3].tolist()), expected, rtol=1e-6)
        (out,) = await v2_infer(client, [tensor("x", X[:3].astype(np.float32), "FP32")])
        assert out["datatype"] == "FP32" and out["shape"] == [3, 3]
        np.testing.assert_allclose(as_array(out), expected, rtol=1e-6)
        assert (await client.get("/v2/models/m")).json()["platform"] == "pytorch_libtorch"
