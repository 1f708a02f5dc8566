"""InferenceService documents as users hand them over: read from a file, stripped of what the
server sets, merged with a patch (RFC 7386). Pure; :mod:`pipelines.control.services` builds
the Serve config from them."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.errors import SpecError

__all__ = ["API_VERSION", "K8S_METADATA", "KIND", "merge_patch", "read_documents", "strip_server_metadata"]

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
K8S_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
)
"""Server-set metadata: kept in the stored document, never part of what is rendered."""


def strip_server_metadata(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` without the metadata the server sets (what is rendered never depends on them)."""
    out = copy.deepcopy(dict(doc))
    meta = dict(out.get("metadata") or {})
    for key in K8S_METADATA:
        meta.pop(key, None)
    out["metadata"] = meta
    out.pop("status", None)
    return out


def read_documents(path: str | Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The InferenceServices in FILE: ``(Serve application entry, document)`` per service.

    FILE is InferenceService YAML (one or several documents, ``---``), or a Serve config whose
    applications hold them (as ``isvc validate`` reads it; the entry's ``runtime_env`` and the
    like go with the service). Documents are returned as written (validated separately).
    """
    from pipelines.cli.commands import load_file, read_documents

    path = Path(path)
    docs = read_documents(path)
    if len(docs) == 1 and isinstance(docs[0], dict) and "applications" in docs[0]:
        return [(app, isvc.to_dict()) for app, isvc in load_file(path)]
    problems: list[str] = []
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            problems.append(f"document {i}: expected a mapping, got {type(doc).__name__}")
        elif doc.get("kind", KIND) != KIND:
            problems.append(
                f"document {i}: kind {doc.get('kind')!r}: isvc apply takes InferenceService documents"
            )
        else:
            found.append(({}, doc))
    if not found and not problems:
        problems.append(f"{path}: no InferenceService document")
    if problems:
        raise SpecError(problems)
    return found


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: mappings merge key by key, ``None`` deletes, the rest replaces.

    >>> merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}})
    {'a': {'c': 2, 'd': 3}}
    """
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
