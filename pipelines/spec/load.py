"""Reading InferenceService documents: a path, YAML text or a mapping, one document picked
by kind and name, and the ``args`` of a Serve application.

Every problem in a document is collected into one :class:`~pipelines.errors.SpecError`, one
line per field path.

Relative paths — an ``isvc:`` path in Serve ``args``, a ``storageUri`` — follow one rule:
they are relative to the working directory of the process that builds the application
(where you type ``serve run`` / ``isvc validate`` / ``isvc serve``; for ``serve deploy``, the
folder ``ray start`` ran in), or to the application's ``runtime_env.working_dir`` when it has
one (Ray puts that folder in place and runs the builder in it). See :func:`resolve_isvc_path`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines.errors import SpecError
from pipelines.spec._lint import _lint, _suggest, _translate
from pipelines.spec.models import KIND, InferenceService

__all__ = ["isvc_from_serve_args", "load_isvc", "parse_isvc", "resolve_isvc_path"]

logger = logging.getLogger("pipelines.spec")

SERVE_ARGS_KEYS = ("isvc", "name")
"""The keys of the wrapped form of a Serve application's ``args``."""

_DOC_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")
"""Top-level keys of an InferenceService document (the bare form of ``args``)."""


def _read_docs(source: str | Path | dict[str, Any]) -> list[Any]:
    if isinstance(source, dict):
        return [source]
    text, where = source, "<yaml>"
    looks_like_path = (
        isinstance(source, str)
        and "\n" not in source
        and (source.endswith((".yaml", ".yml", ".json")) or Path(source).is_file())
    )
    if isinstance(source, Path) or looks_like_path:
        where = str(source)
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise SpecError([f"{where}: cannot read ({exc.strerror or exc})"]) from None
    try:
        docs = [d for d in yaml.safe_load_all(str(text)) if d is not None]
    except yaml.YAMLError as exc:
        raise SpecError([f"{where}: not valid YAML: {exc}"]) from None
    if docs == [source]:  # a one-line string that is neither a file nor a mapping
        raise SpecError([f"{source}: no such file, and not InferenceService YAML"])
    return docs


def _pick_doc(docs: list[Any], name: str | None, kind: str) -> Any:
    """The one document of ``kind`` (named ``name`` when given) among ``docs``."""
    kinds = [d.get("kind", kind) if isinstance(d, dict) else type(d).__name__ for d in docs]
    found = [d for d, k in zip(docs, kinds, strict=True) if k == kind]
    names = [str((d.get("metadata") or {}).get("name")) for d in found]
    if name is not None:
        found = [d for d, n in zip(found, names, strict=True) if n == name]
        if not found:
            raise SpecError([f"no InferenceService named {name!r} (found: {', '.join(names) or 'none'})"])
    if not found:
        raise SpecError(
            [f"no InferenceService document (kinds found: {', '.join(map(str, kinds)) or 'none'})"]
        )
    if len(found) > 1:
        raise SpecError([f"{len(found)} InferenceService documents ({', '.join(names)}); pick one by name"])
    return found[0]


def parse_isvc(doc: Any) -> InferenceService:
    """Validate one InferenceService mapping (already read from YAML).

    >>> parse_isvc({"metadata": {"name": "m"}, "spec": {"predictor": {"sklearn": {}}}}).metadata.namespace
    'default'
    """
    if not isinstance(doc, dict):
        raise SpecError([f"document: expected a mapping, got {type(doc).__name__}"])
    problems: list[str] = []
    ignored: list[str] = []
    cleaned = _lint(doc, InferenceService, "", problems, ignored)
    isvc = None
    try:
        isvc = InferenceService.model_validate(cleaned)
    except ValidationError as exc:
        problems += _translate(exc, problems)
    if problems or isvc is None:
        raise SpecError(problems)
    isvc._ignored = ignored
    if ignored:
        logger.warning("%s: ignoring Kubernetes-only fields: %s", isvc.metadata.name, ", ".join(ignored))
    return isvc


def load_isvc(source: str | Path | dict[str, Any], *, name: str | None = None) -> InferenceService:
    """Load an InferenceService from a path, YAML text or dict; ``name`` picks one of several docs.

    >>> load_isvc("configs/isvc/churn.yaml").metadata.name
    'churn-classifier'
    """
    return parse_isvc(_pick_doc(_read_docs(source), name, KIND))


def resolve_isvc_path(value: str | Path, base_dir: str | Path | None = None) -> Path:
    """The one rule for a relative ``isvc:`` path: relative to ``base_dir``, default the working directory.

    >>> resolve_isvc_path("configs/isvc/churn.yaml") == Path.cwd() / "configs/isvc/churn.yaml"
    True
    """
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(base_dir or os.getcwd()) / path


def isvc_from_serve_args(args: Any, base_dir: str | Path | None = None) -> InferenceService:
    """The InferenceService in a Serve application's ``args``.

    ``args`` is either the InferenceService document itself (``apiVersion``, ``kind``,
    ``metadata``, ``spec`` at its top, as a KServe user's YAML holds them) or
    ``{isvc: <mapping | path>, name?: str}``; a relative path follows :func:`resolve_isvc_path`::

        >>> isvc_from_serve_args({"isvc": "configs/isvc/churn.yaml"}).metadata.name
        'churn-classifier'
        >>> isvc_from_serve_args(load_isvc("configs/isvc/churn.yaml").to_dict()).metadata.name
        'churn-classifier'
    """
    if not isinstance(args, dict):
        raise SpecError(
            [f"args: expected a mapping (an InferenceService, or {{isvc: ...}}), got {type(args).__name__}"]
        )
    if any(k in args for k in _DOC_KEYS) and not any(k in args for k in SERVE_ARGS_KEYS):
        return parse_isvc(args)
    problems = [
        f"args.{k}: unknown key{_suggest(str(k), SERVE_ARGS_KEYS)}" for k in args if k not in SERVE_ARGS_KEYS
    ]
    if "isvc" not in args:
        problems.append(
            "args.isvc: required (an InferenceService mapping or a path to its YAML), unless args "
            "is the InferenceService document itself (apiVersion, kind, metadata, spec)"
        )
    if problems:
        raise SpecError(problems)
    value, name = args["isvc"], args.get("name")
    if isinstance(value, str) and "\n" not in value:
        return load_isvc(resolve_isvc_path(value, base_dir), name=name)
    if isinstance(value, dict | str):
        return load_isvc(value, name=name)
    raise SpecError([f"args.isvc: expected a mapping or a path, got {type(value).__name__}"])
