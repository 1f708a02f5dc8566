"""Load the components of a plan inside a replica: storage, predictor, transformer.

No Ray here; :mod:`pipelines.app` calls these from its deployments' constructors and
tests call them directly.

Example::

    predictor = load_predictor("churn", plan.predictor)     # downloaded, loaded, ready
    transformer = await load_transformer(plan)               # constructed, load() awaited
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from pipelines._pipeline import call_hook
from pipelines.errors import StorageError
from pipelines.plan import PredictorNode, ServicePlan
from pipelines.storage import StorageSettings, download
from predictors.base import Predictor
from predictors.registry import import_string, load_predictor_class

__all__ = ["load_predictor", "load_transformer", "predictor_metadata", "construct"]


def model_dir_of(uri: str | None, settings: StorageSettings | None = None) -> Path | None:
    """The local folder (or file) for a ``storageUri``; ``None`` when there is none."""
    return download(uri, settings or StorageSettings.from_env()).resolve() if uri else None


def construct(cls: type, name: str, args: dict[str, Any], **extra: Any) -> Any:
    """``cls(name, **kwargs)`` passing only what its constructor accepts.

    KServe classes take ``(name, predictor_host)``; ours take ``(name, **options)``.
    """
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in {**extra, **args}.items() if takes_any or k in params}
    unknown = sorted(set(args) - set(kwargs))
    if unknown:
        raise TypeError(f"{cls.__name__}() does not accept {', '.join(unknown)}")
    return cls(name, **kwargs)


def load_predictor(name: str, node: PredictorNode) -> Predictor:
    """Import the runtime, download ``storageUri``, call ``load(model_dir)``."""
    cls = load_predictor_class(node.runtime)
    args = {k: v for k, v in node.args.items() if k not in ("model_name", "model_dir")}
    predictor = construct(cls, args.pop("name", name), args)
    predictor.load(model_dir_of(node.storage_uri))
    if not getattr(predictor, "ready", False):
        raise StorageError(f"predictor {name} ({node.runtime}) did not become ready after load()")
    return predictor


async def load_transformer(plan: ServicePlan) -> Any:
    """Construct the user's transformer class and await its ``load()``."""
    node = plan.transformer
    assert node is not None
    cls = import_string(node.class_path)
    transformer = construct(cls, plan.name, dict(node.args), predictor_host=f"{plan.app_name}.predictor")
    transformer.model_dir = model_dir_of(node.storage_uri)
    transformer.storage_uri = node.storage_uri
    loaded = await call_hook(transformer, "load")
    if loaded is True and not getattr(transformer, "ready", False):
        transformer.ready = True
    return transformer


def predictor_metadata(predictor: Predictor) -> dict[str, Any]:
    """V2 metadata pieces of a loaded predictor."""
    return {
        "inputs": [dict(t) for t in predictor.inputs()],
        "outputs": [dict(t) for t in predictor.outputs()],
        "platform": predictor.platform,
    }
