"""Where the ingress sends a (coalesced) batch: a predictor in this process, or a
predictor deployment behind a handle. Errors come back as :class:`Failure` values and
are raised here as the matching ISVC error.

Example::

    sink = local_sink(predictor)          # or remote_sink(handle)
    out = await sink(np.zeros((4, 5)))
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from pipelines._batching import Failure, InlineOrThread, run_one
from pipelines.errors import ServerOverloaded

__all__ = ["local_sink", "remote_sink", "traffic_split"]

Sink = Callable[[Any], Awaitable[Any]]


def local_sink(predictor: Any, runner: InlineOrThread | None = None) -> Sink:
    """Run ``predictor.predict`` on a worker thread, or inline once it has proven short."""
    run = runner or InlineOrThread()

    async def sink(batch: Any) -> Any:
        result = await run(run_one, predictor.predict, batch)
        if isinstance(result, Failure):
            raise result.to_error()
        return result

    return sink


def remote_sink(handle: Any) -> Sink:
    """Call ``handle.predict.remote(batch)`` (a Ray Serve ``DeploymentHandle``)."""

    async def sink(batch: Any) -> Any:
        try:
            result = await handle.predict.remote(batch)
        except Exception as exc:
            if type(exc).__name__ == "BackPressureError":
                raise ServerOverloaded(f"predictor overloaded: {exc}") from exc
            raise
        if isinstance(result, Failure):
            raise result.to_error()
        return result

    return sink


def traffic_split(
    stable: Sink, canary: Sink | None, percent: int | None, rand: Callable[[], float] = random.random
) -> Sink:
    """``percent`` % of requests to ``canary`` (KServe's ``canaryTrafficPercent``), the rest to ``stable``."""
    if canary is None or not percent:
        return stable
    if percent >= 100:
        return canary
    canary_sink = canary

    async def route(batch: Any) -> Any:
        return await (canary_sink if rand() * 100 < percent else stable)(batch)

    return route
