"""Load the components of a plan inside a replica: storage, predictor, transformer.

No Ray here; :mod:`pipelines._ray` calls these from its deployments' constructors and
tests call them directly.

Example::

    predictor = load_predictor("churn", plan.predictor)     # downloaded, loaded, ready
    transformer = await load_transformer(plan)               # constructed, load() awaited
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from pipelines.dataplane.pipeline import call_hook
from pipelines.errors import SpecError, StorageError
from pipelines.plan import PredictorNode, ServicePlan
from pipelines.storage import StorageSettings, download
from predictors.base import Predictor
from predictors.registry import import_string, load_predictor_class

__all__ = [
    "check_transformer",
    "construct",
    "load_predictor",
    "load_transformer",
    "model_dir_of",
    "predictor_metadata",
    "unknown_args",
]

SUPPLIED = ("predictor_host", "predictor_config")
"""Constructor arguments isvc supplies itself (KServe passes them to a transformer)."""


def model_dir_of(uri: str | None, settings: StorageSettings | None = None) -> Path | None:
    """The local folder (or file) for a ``storageUri``; ``None`` when there is none."""
    return download(uri, settings or StorageSettings.from_env()).resolve() if uri else None


def unknown_args(cls: type, args: dict[str, Any]) -> list[str]:
    """The keys of ``args`` that ``cls(name, **args)`` would not accept (a ``**kwargs`` takes any).

    >>> class T:
    ...     def __init__(self, name, predictor_host=None, threshold=0.5): ...
    >>> unknown_args(T, {"threshold": 0.7, "treshold": 1})
    ['treshold']
    """
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    return sorted(k for k in args if k not in params or k == "name")


def construct(cls: type, name: str, args: dict[str, Any], **supplied: Any) -> Any:
    """``cls(name, **args)``, plus those of ``supplied`` its constructor accepts.

    KServe classes take ``(name, predictor_host)``; ours take ``(name, **options)``. A key
    of ``args`` the constructor does not take is a :class:`SpecError`, never dropped.
    """
    bad = unknown_args(cls, args)
    if bad:
        raise SpecError([f"args.{k}: {cls.__name__}() takes no argument {k!r}" for k in bad])
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    extra = {k: v for k, v in supplied.items() if k not in args and (takes_any or k in params)}
    return cls(name, **args, **extra)


def _named(args: dict[str, Any], default: str) -> tuple[str, dict[str, Any]]:
    """KServe's ``--model_name`` names the model; ``model_dir`` is isvc's to set."""
    rest = {k: v for k, v in args.items() if k not in ("name", "model_name", "model_dir", *SUPPLIED)}
    return str(args.get("model_name") or args.get("name") or default), rest


def load_predictor(name: str, node: PredictorNode) -> Predictor:
    """Import the runtime, download ``storageUri``, call ``load(model_dir)``."""
    cls = load_predictor_class(node.runtime)
    model_name, args = _named(node.args, name)
    predictor: Predictor = construct(cls, model_name, args)
    predictor.load(model_dir_of(node.storage_uri))
    if not getattr(predictor, "ready", False):
        raise StorageError(f"predictor {name} ({node.runtime}) did not become ready after load()")
    return predictor


async def load_transformer(plan: ServicePlan) -> Any:
    """Construct the user's transformer class and await its ``load()``."""
    node = plan.transformer
    assert node is not None
    cls = import_string(node.class_path)
    _, args = _named(node.args, plan.name)
    transformer = construct(
        cls, plan.name, args, predictor_host=f"{plan.app_name}.{plan.predictor.deployment}"
    )
    transformer.model_dir = model_dir_of(node.storage_uri)
    transformer.storage_uri = node.storage_uri
    loaded = await call_hook(transformer, "load")
    if loaded is True and not getattr(transformer, "ready", False):
        transformer.ready = True
    return transformer


def check_transformer(plan: ServicePlan) -> tuple[list[str], list[str]]:
    """What ``isvc validate`` says of the transformer class: (problems, notes).

    Imports the class (not the artifacts): unknown ``args`` are problems; a transformer
    that rewrites requests or responses without declaring V2 tensors is a note.
    """
    node = plan.transformer
    if node is None:
        return [], []
    path = "spec.transformer.custom"
    try:
        cls = import_string(node.class_path)
    except (ImportError, AttributeError) as exc:
        return [f"{path}.class: cannot import {node.class_path!r}: {exc}"], []
    _, args = _named(node.args, plan.name)
    problems = [f"{path}.args.{k}: {cls.__name__}() takes no argument {k!r}" for k in unknown_args(cls, args)]
    notes = []
    from transformers_.base import Transformer

    for hook, declare, what in (
        ("preprocess", "get_input_types", "inputs"),
        ("postprocess", "get_output_types", "outputs"),
    ):
        own = getattr(cls, hook, None)
        if own is not None and own is not getattr(Transformer, hook, None):
            if getattr(cls, declare, None) in (None, getattr(Transformer, declare, None)):
                notes.append(
                    f"{path}.class: {cls.__name__} overrides {hook} but declares no {declare}(); "
                    f"V2 metadata will list no {what}"
                )
    return problems, notes


def predictor_metadata(predictor: Predictor) -> dict[str, Any]:
    """V2 metadata pieces of a loaded predictor."""
    return {
        "inputs": [dict(t) for t in predictor.inputs()],
        "outputs": [dict(t) for t in predictor.outputs()],
        "platform": predictor.platform,
    }
