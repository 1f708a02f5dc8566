"""Reading InferenceService documents for :mod:`pipelines.spec`: YAML sources, picking one
document, and the ``{isvc, name}`` args of a Serve application.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipelines._spec_lint import _suggest
from pipelines.errors import SpecError


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


def _serve_source(args: Any, base_dir: str | Path | None) -> tuple[str | Path | dict[str, Any], str | None]:
    """``(source, name)`` for :func:`~pipelines.spec.load_isvc` from a Serve application's ``args``."""
    if not isinstance(args, dict):
        raise SpecError([f"args: expected a mapping with 'isvc', got {type(args).__name__}"])
    problems = [
        f"args.{k}: unknown key{_suggest(str(k), ('isvc', 'name'))}"
        for k in args
        if k not in ("isvc", "name")
    ]
    if "isvc" not in args:
        problems.append("args.isvc: required (an InferenceService mapping or a path to its YAML)")
    if problems:
        raise SpecError(problems)
    value, name = args["isvc"], args.get("name")
    if isinstance(value, str) and "\n" not in value:
        path = Path(value)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        return path, name
    if isinstance(value, dict | str):
        return value, name
    raise SpecError([f"args.isvc: expected a mapping or a path, got {type(value).__name__}"])
