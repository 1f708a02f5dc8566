"""Traffic between the stable predictor and the canary (KServe's ``canaryTrafficPercent``).

>>> import asyncio
>>> async def stable(batch): return "stable"
>>> async def canary(batch): return "canary"
>>> route = traffic_split(stable, canary, 20, rand=lambda: 0.1)   # 0.1 * 100 < 20
>>> asyncio.run(route([[1]]))
'canary'
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Sink", "traffic_split"]

Sink = Callable[[Any], Awaitable[Any]]
"""Where a (coalesced) batch goes: ``async (batch) -> predictions``."""


def traffic_split(
    stable: Sink, canary: Sink | None, percent: int | None, rand: Callable[[], float] = random.random
) -> Sink:
    """``percent`` % of requests to ``canary``, the rest to ``stable``."""
    if canary is None or not percent:
        return stable
    if percent >= 100:
        return canary
    canary_sink = canary

    async def route(batch: Any) -> Any:
        return await (canary_sink if rand() * 100 < percent else stable)(batch)

    return route
