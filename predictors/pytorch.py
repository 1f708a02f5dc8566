"""PyTorch runtime: a TorchScript ``model.pt`` or a ``torch.export`` program ``model.pt2``.

KServe's ``pytorch`` predictor runs TorchServe, whose ``.mar`` archives hold Python
handlers; isvc runs saved graphs instead, so a ``.mar`` (or TorchServe's ``model-store/``
layout) is refused with what to do. Save a model with either of::

    torch.jit.script(model).save("model.pt")                     # or torch.jit.trace(model, x)
    torch.export.save(torch.export.export(model, (x,)), "model.pt2")

The model runs under ``torch.inference_mode()`` on CUDA when the replica was given a GPU
(``torch.cuda.is_available()``), else on CPU. Floating rows are sent as float32 (a ``.pt2``
program's own input dtype when it records one); a tuple output gives its first element.

Example::

    p = PyTorchPredictor("recommender")
    p.load("artifacts/recommender")    # artifacts/recommender/model.pt
    p.predict(np.zeros((2, 4)))        # the model's output as a numpy array
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import InvalidInput, PredictorError, StorageError
from predictors._files import need_dir
from predictors.base import Predictor, TensorSpec

__all__ = ["PyTorchPredictor"]

EXTENSIONS = (".pt", ".pth", ".pt2")
_NOT_MAR = (
    "TorchServe model archives (.mar) are not supported: export TorchScript "
    "(torch.jit.script(model).save('model.pt')) or torch.export (torch.export.save(program, 'model.pt2')) "
    "and point storageUri at the folder holding it"
)
_V2 = {
    "float32": "FP32",
    "float64": "FP64",
    "float16": "FP16",
    "int64": "INT64",
    "int32": "INT32",
    "int16": "INT16",
    "int8": "INT8",
    "uint8": "UINT8",
    "bool": "BOOL",
}


def find_torch_file(model_dir: Path) -> Path:
    """``model.pt2`` / ``model.pt`` / ``model.pth``, or the one such file; a ``.mar`` is a clear error."""
    if model_dir.is_file():
        if model_dir.suffix == ".mar":
            raise StorageError(f"{model_dir}: {_NOT_MAR}")
        return model_dir
    for name in ("model.pt2", "model.pt", "model.pth"):
        if (model_dir / name).is_file():
            return model_dir / name
    found = sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in EXTENSIONS)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise StorageError(
            f"more than one model file in {model_dir}: {[p.name for p in found]}; only one is allowed"
        )
    mars = sorted(model_dir.glob("*.mar")) + sorted(model_dir.glob("model-store/*.mar"))
    if mars:
        raise StorageError(f"{mars[0]}: {_NOT_MAR}")
    raise StorageError(
        f"no model file in {model_dir}: the pytorch runtime expects model.pt (TorchScript) or model.pt2"
    )


class PyTorchPredictor(Predictor):
    """Runs a TorchScript module or an exported program on one input tensor per batch."""

    platform = "pytorch_libtorch"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.model: Any = None
        self.device = "cpu"
        self._inputs: list[TensorSpec] = []
        self._outputs: list[TensorSpec] = []
        self._dtypes: list[Any] = []
        self._exported = False

    def load(self, model_dir: str | Path | None) -> None:
        import torch

        path = find_torch_file(need_dir(model_dir, "pytorch"))
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            if path.suffix == ".pt2":
                program = torch.export.load(str(path))
                self._describe(program)
                self.model = program.module().to(self.device)
                self._exported = True
            else:
                self.model = torch.jit.load(str(path), map_location=self.device)
                self.model.eval()
        except (RuntimeError, ValueError, OSError) as exc:
            kind = "a torch.export program" if path.suffix == ".pt2" else "TorchScript"
            raise StorageError(f"pytorch: cannot load {path} as {kind}: {str(exc).splitlines()[0]}") from exc
        self.ready = True

    def _describe(self, program: Any) -> None:
        """Input and output tensors of an exported program, from its graph's fake tensors."""
        user_inputs = set(program.graph_signature.user_inputs)
        for node in program.graph.nodes:
            val = node.meta.get("val")
            if node.op == "placeholder" and node.name in user_inputs and hasattr(val, "shape"):
                self._inputs.append(_spec(node.name, val))
                self._dtypes.append(val.dtype)
            elif node.op == "output":
                outs = node.args[0] if isinstance(node.args[0], tuple | list) else (node.args[0],)
                names = list(program.graph_signature.user_outputs)
                for i, out in enumerate(outs[:1]):
                    v = getattr(out, "meta", {}).get("val")
                    if hasattr(v, "shape"):
                        self._outputs.append(_spec(names[i] if i < len(names) else f"output-{i}", v))

    def _tensor(self, batch: Any) -> Any:
        import pandas as pd
        import torch

        arr = batch.to_numpy() if isinstance(batch, pd.DataFrame) else np.asarray(batch)
        if arr.dtype.kind not in "biuf":
            raise InvalidInput(f"model '{self.name}' takes numbers, got {arr.dtype} values")
        if self._inputs:
            spec = self._inputs[0]
            if len(spec["shape"]) == 1 and arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr.reshape(-1)
            want = spec["shape"]
            if len(want) != arr.ndim or any(w not in (-1, g) for w, g in zip(want, arr.shape, strict=False)):
                raise InvalidInput(
                    f"model '{self.name}': input {spec['name']!r} has shape {want}, got {list(arr.shape)}"
                )
            return torch.from_numpy(np.ascontiguousarray(arr)).to(self.device, self._dtypes[0])
        tensor = torch.from_numpy(np.ascontiguousarray(arr))
        if tensor.is_floating_point():
            tensor = tensor.float()
        return tensor.to(self.device)

    def predict(self, batch: Any) -> np.ndarray:
        import torch

        if len(self._inputs) > 1:
            raise InvalidInput(f"model '{self.name}' takes {len(self._inputs)} tensors; one is supported")
        x = self._tensor(batch)
        try:
            with torch.inference_mode():
                out = self.model(x)
        except torch.cuda.OutOfMemoryError:
            raise
        except (RuntimeError, AssertionError) as exc:  # what a module says of a shape it cannot take
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            raise InvalidInput(
                f"model '{self.name}' refused an input of shape {list(x.shape)} ({x.dtype}): "
                f"{lines[-1] if lines else type(exc).__name__}"
            ) from exc
        if isinstance(out, tuple | list) and out:
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise PredictorError(f"model '{self.name}' returned {type(out).__name__}; expected a tensor")
        return out.detach().cpu().numpy()

    def inputs(self) -> list[TensorSpec]:
        return list(self._inputs) or [TensorSpec("input-0", "FP32", [-1, -1])]

    def outputs(self) -> list[TensorSpec]:
        return list(self._outputs) or [TensorSpec("output-0", "FP32", [-1, -1])]


def _spec(name: str, fake: Any) -> TensorSpec:
    dims = [d if isinstance(d, int) else -1 for d in fake.shape]
    return TensorSpec(name, _V2.get(str(fake.dtype).removeprefix("torch."), "FP32"), dims)
