"""Reading an InferenceService's annotations for :mod:`pipelines.plan.build`: the deployment
mode, Knative's autoscaling keys (``target``, ``metric``, ``minScale``/``maxScale``,
``initial-scale``, ``window``, ``scale-down-delay``, ...) and the value parsers every
``isvc.dev/*`` annotation uses. A bad value is recorded as a problem naming its annotation
(:func:`ann_value`), never raised, so one ``isvc validate`` lists them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines.spec import (
    ANN_DEPLOYMENT_MODE,
    ANN_INITIAL_SCALE,
    ANN_MAX_SCALE,
    ANN_METRIC,
    ANN_MIN_SCALE,
    ANN_SCALE_DOWN_DELAY,
    ANN_TARGET,
    ANN_TO_ZERO_RETENTION,
    ANN_WINDOW,
    parse_memory,
)

__all__ = [
    "METRICS",
    "RAW_DEPLOYMENT",
    "SERVERLESS",
    "VERSION_NAME",
    "Context",
    "ann_path",
    "ann_value",
    "at_least_one",
    "boolean",
    "byte_size",
    "context_of",
    "duration",
    "model_access",
    "non_negative",
    "positive",
]


SERVERLESS, RAW_DEPLOYMENT = "Serverless", "RawDeployment"
_MODES = {
    "serverless": SERVERLESS,
    "knative": SERVERLESS,
    "rawdeployment": RAW_DEPLOYMENT,
    "standard": RAW_DEPLOYMENT,
}
METRICS = ("concurrency", "rps", "cpu", "memory")


@dataclass
class Context:
    """Document-wide settings and the problems/ignored paths found so far."""

    mode: str = SERVERLESS
    target: float | None = None
    metric: str | None = None
    min_scale: int | None = None
    max_scale: int | None = None
    initial_scale: int | None = None
    window_s: float | None = None
    scale_down_delay_s: float | None = None
    to_zero_retention_s: float | None = None
    problems: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def ann_path(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def at_least(cast: Callable[[str], Any], low: float, *, strict: bool = False) -> Callable[[str], Any]:
    """A parser of annotation strings: ``cast(value)`` that must be ``>= low`` (``> low`` if strict)."""

    def parse(value: str) -> Any:
        number = cast(value)
        if not (number > low if strict else number >= low):  # NaN fails both
            raise ValueError
        return number

    return parse


positive = at_least(float, 0, strict=True)
count = at_least(int, 0)
non_negative = at_least(float, 0)
at_least_one = at_least(int, 1)
byte_size = at_least(parse_memory, 1)
VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration(value: str) -> float:
    """A Knative duration (``"60s"``, ``"1m"``, ``"500ms"``, or plain seconds) in seconds.

    >>> duration("90s"), duration("1.5m"), duration("2")
    (90.0, 90.0, 2.0)
    """
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def ann_value(
    ann: dict[str, str], keys: str | tuple[str, ...], conv: Callable[[str], Any], want: str, ctx: Context
) -> Any:
    """Parse the first annotation of ``keys`` present with ``conv``; a bad value is a problem."""
    for key in (keys,) if isinstance(keys, str) else keys:
        if key in ann:
            try:
                return conv(ann[key])
            except (TypeError, ValueError):
                ctx.problems.append(f"{ann_path(key)}: expected {want}, got {ann[key]!r}")
                return None
    return None


def context_of(ann: dict[str, str]) -> Context:
    ctx = Context()
    raw_mode = ann.get(ANN_DEPLOYMENT_MODE, SERVERLESS)
    if raw_mode.lower() not in _MODES:
        ctx.problems.append(
            f"{ann_path(ANN_DEPLOYMENT_MODE)}: expected Serverless, Knative, RawDeployment or Standard, "
            f"got {raw_mode!r}"
        )
    ctx.mode = _MODES.get(raw_mode.lower(), SERVERLESS)
    ctx.target = ann_value(ann, ANN_TARGET, positive, "a number > 0", ctx)
    ctx.metric = ann_value(ann, ANN_METRIC, metric, " or ".join(METRICS), ctx)
    ctx.min_scale = ann_value(ann, ANN_MIN_SCALE, count, "an integer >= 0", ctx)
    ctx.max_scale = ann_value(ann, ANN_MAX_SCALE, count, "an integer >= 0", ctx)
    ctx.initial_scale = ann_value(ann, ANN_INITIAL_SCALE, count, "an integer >= 0", ctx)
    wanted = 'a duration like "60s", "2m" or "500ms"'
    ctx.window_s = ann_value(ann, ANN_WINDOW, duration, wanted, ctx)
    ctx.scale_down_delay_s = ann_value(ann, ANN_SCALE_DOWN_DELAY, duration, wanted, ctx)
    ctx.to_zero_retention_s = ann_value(ann, ANN_TO_ZERO_RETENTION, duration, wanted, ctx)
    if ctx.mode == RAW_DEPLOYMENT:
        scaling_keys = (ANN_TARGET, ANN_METRIC, *ANN_MAX_SCALE)
        ctx.ignored += [f"{ann_path(k)} (RawDeployment: fixed replicas)" for k in scaling_keys if k in ann]
    return ctx


def metric(value: str) -> str:
    if value not in METRICS:
        raise ValueError
    return value


def model_access(value: str) -> str:
    if value.strip() not in ("local", "deployment"):
        raise ValueError
    return value.strip()


def boolean(value: str) -> bool:
    if value.strip().lower() not in ("true", "false"):
        raise ValueError
    return value.strip().lower() == "true"
