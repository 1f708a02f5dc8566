"""The Transformer base class, with KServe's hook names.

A KServe transformer runs here after changing only its base-class import::

    from transformers_ import Model          # was: import kserve; class X(kserve.Model)

    class FeatureTransformer(Model):
        def __init__(self, name, predictor_host):
            super().__init__(name)
            self.predictor_host = predictor_host
            self.ready = False

        def load(self):
            self.ready = True
            return self.ready

        def preprocess(self, payload, headers=None):
            return {"instances": [[float(v) for v in row] for row in payload["instances"]]}

Hooks may be ``def`` or ``async def``; sync hooks run on a worker thread, never on
the event loop. Declare the endpoint's V2 tensors with ``get_input_types()`` and
``get_output_types()`` (KServe's names) so that ``GET /v2/models/{name}`` tells clients the
truth. ``preprocess`` gets the V1 request dict or a V2
:class:`pipelines.protocol.InferRequest`; ``postprocess`` gets ``{"predictions": [...]}``
or a V2 :class:`pipelines.protocol.InferResponse`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["Transformer", "Model"]


class Transformer:
    """Base of user transformers. Override ``load``, ``preprocess``, ``postprocess``.

    Attributes set by isvc before ``load()`` runs: ``model_dir`` (the local folder of
    the component's ``storageUri``, or ``None``) and ``storage_uri``.
    """

    def __init__(self, name: str, predictor_host: str | None = None) -> None:
        self.name = name
        self.predictor_host = predictor_host
        self.ready = False
        self.model_dir: Path | None = None
        self.storage_uri: str | None = None

    def load(self) -> bool:
        """Override: load artifacts (scalers, encoders, vocabularies); return ``self.ready``."""
        self.ready = True
        return self.ready

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """Override: turn the client's request into the predictor's input."""
        return payload

    def postprocess(self, response: Any, headers: dict[str, str] | None = None) -> Any:
        """Override: turn the predictor's output into the client's response."""
        return response

    def get_input_types(self) -> list[dict[str, Any]]:
        """Override: the V2 inputs the endpoint takes, ``[{"name", "datatype", "shape"}]`` (KServe's name).

        ``GET /v2/models/{name}`` lists them. Without an override, a transformer that has its
        own ``preprocess`` advertises no inputs (isvc cannot know what it accepts).
        """
        return []

    def get_output_types(self) -> list[dict[str, Any]]:
        """Override: the V2 outputs the endpoint returns (after ``postprocess``), batch dimension ``-1``."""
        return []

    def explain_input(self, rows: Any) -> Any:
        """Override (optional): the predictor's input for a batch of rows in the caller's features.

        ``rows`` is ``[N, features]`` float64 in the explainer's feature order (the background
        data's columns); a categorical column holds its codes (see :mod:`explainers.data`).
        An explainer evaluates thousands of perturbed rows per explanation; without this
        hook each batch reaches ``preprocess`` as a V1 body (``{"instances": [...]}``,
        one object per row when the caller sent objects), which costs more than the model call
        on a small model. Override it when ``preprocess`` has a vectorized core, and return what
        ``preprocess`` would. Not overridden: the V1 body path (this base is never called).
        """
        raise NotImplementedError(f"{type(self).__name__} does not override explain_input")

    def explain_output(self, predictions: Any) -> Any:
        """Override: what ``:explain`` explains, from the predictor's output (before ``postprocess``).

        The explained function is ``preprocess`` → predictor → ``explain_output``, so that an
        explanation is in the fields the caller sends. The default explains the predictor's
        output as it is (e.g. ``predict_proba``'s class probabilities: Anchor explains the
        predicted class, SHAP gives values per class). Return a numeric array, one row (or
        value) per input row, e.g. ``predictions[:, 1:]`` for one class's probability.
        """
        return predictions


Model = Transformer
"""KServe's name for the same base class (``kserve.Model``)."""
