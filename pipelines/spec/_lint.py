"""The lint pass of :mod:`pipelines.spec`: raw-document checks and pydantic-error translation.

:class:`_Model` is the base of every spec model; its ``k8s_ignored`` / ``rejected`` class
variables drive :func:`_lint`, which walks the raw mapping before pydantic sees it.
:func:`_translate` turns a ``ValidationError`` into ``path: message`` lines. Import the
public names from :mod:`pipelines.spec`.
"""

from __future__ import annotations

import difflib
import re
import types
from typing import Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

# Pod / container keys accepted but meaningless without Kubernetes (``k8s_ignored`` of the models).
_POD_FIELDS = frozenset(
    """serviceAccountName nodeSelector tolerations affinity imagePullSecrets securityContext volumes
    priorityClassName priority schedulerName hostNetwork hostIPC hostPID dnsPolicy dnsConfig hostAliases
    runtimeClassName topologySpreadConstraints terminationGracePeriodSeconds automountServiceAccountToken
    enableServiceLinks shareProcessNamespace preemptionPolicy overhead readinessGates restartPolicy
    activeDeadlineSeconds nodeName hostname subdomain os schedulingGates resourceClaims ephemeralContainers
    labels annotations logger deploymentStrategy""".split()
)
_CONTAINER_FIELDS = frozenset(
    """name image imagePullPolicy command ports livenessProbe readinessProbe startupProbe volumeMounts
    volumeDevices securityContext workingDir lifecycle terminationMessagePath terminationMessagePolicy
    stdin stdinOnce tty envFrom resizePolicy restartPolicy runtimeVersion""".split()
)


class _Model(BaseModel):
    """Base: camelCase aliases as in KServe; unknown keys are caught by the lint pass."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        coerce_numbers_to_str=True,
        protected_namespaces=(),
    )
    k8s_ignored: ClassVar[frozenset[str]] = frozenset()
    """Keys accepted but meaningless here: reported once in ``ignored_fields``."""
    rejected: ClassVar[dict[str, str]] = {}
    """Keys that are errors with a fixed explanation."""

    @classmethod
    def _lint_extra(cls, data: dict[str, Any], path: str, problems: list[str], ignored: list[str]) -> None:
        """Hook: checks of raw data that need the full path (override in subclasses)."""


def parse_kserve_args(items: list[Any], problems: list[str] | None = None) -> dict[str, Any]:
    """KServe-style container args to a dict (values stay strings; a bare flag is ``True``).

    A bad item raises ``ValueError("[2]: ...")``, or is appended to ``problems`` when given::

        >>> parse_kserve_args(["--model_name=sentiment", "--max_length", "128", "--fast"])
        {'model_name': 'sentiment', 'max_length': '128', 'fast': True}
    """
    out: dict[str, Any] = {}
    pending: str | None = None
    for i, item in enumerate(items):
        if isinstance(item, str) and item.startswith("--") and len(item) > 2:
            key, eq, value = item[2:].partition("=")
            out[key] = value if eq else True
            pending = None if eq else key
        elif isinstance(item, str) and pending is not None:
            out[pending], pending = item, None
        else:
            line = f"[{i}]: expected a string like '--name=value', got {item!r}"
            if problems is None:
                raise ValueError(line)
            problems.append(line)
    return out


def _suggest(word: str, choices: Any) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def _nested(annotation: Any) -> tuple[str, type[_Model]] | None:
    """('model'|'list', cls) when a field holds a model or a list of them."""
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, _Model):
        return "model", annotation
    if origin is list and args:
        inner = _nested(args[0])
        return ("list", inner[1]) if inner and inner[0] == "model" else None
    if origin is Union or origin is types.UnionType:
        for arg in args:
            if (inner := _nested(arg)) is not None:
                return inner
    return None


def _misplaced(key: Any, data: dict[str, Any], fields: dict[str, Any]) -> str:
    """A hint when ``key`` is a field one level down, e.g. storageUri beside an empty ``sklearn:``."""
    homes = [a for a, ann in fields.items() if (n := _nested(ann)) and key in _aliases(n[1])]
    homes.sort(key=lambda a: a not in data)
    return f"; did you mean to indent it under '{homes[0]}'?" if homes else ""


def _aliases(model: type[_Model]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def _lint(data: Any, model: type[_Model], path: str, problems: list[str], ignored: list[str]) -> Any:
    """Walk raw data along ``model``: report unknown/rejected keys, collect ignored ones, drop both."""
    if not isinstance(data, dict):
        return data
    fields = {(f.alias or name): f.annotation for name, f in model.model_fields.items()}  # by alias
    out: dict[str, Any] = {}
    for key, value in data.items():
        p = _join(path, str(key))
        if key in model.rejected:
            problems.append(f"{p}: {model.rejected[key]}")
        elif key in model.k8s_ignored:
            ignored.append(p)
            if key in fields:
                out[key] = value
        elif key not in fields:
            problems.append(
                f"{p}: unknown field{_suggest(str(key), fields) or _misplaced(key, data, fields)}"
            )
        else:
            nested = _nested(fields[key])
            if nested and nested[0] == "model":
                value = _lint(value, nested[1], p, problems, ignored)
            elif nested and isinstance(value, list):
                value = [_lint(v, nested[1], _join(p, i), problems, ignored) for i, v in enumerate(value)]
            out[key] = value
    model._lint_extra(out, path, problems, ignored)
    return out


def _translate(exc: ValidationError, earlier: list[str]) -> list[str]:
    """pydantic errors → ``path: message`` lines, skipping those an earlier problem explains."""
    lines = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            if isinstance(part, str) and ("[" in part or part.startswith("function-")):
                continue  # a union/validator tag, not a field
            path = _join(path, part)
        msg = str(err["msg"]).removeprefix("Value error, ")
        value = err.get("input")
        if (
            err["type"] != "missing"
            and isinstance(value, str | int | float | bool)
            and repr(value) not in msg
        ):
            msg += f" (got {value!r})"
        if any(e.startswith(path) and not e.startswith(f"{path}:") for e in earlier if path):
            continue
        lines.append(f"{path or 'document'}: {msg}")
    return lines
