"""Coalesce rows of concurrent requests into few predictor calls.

One request's rows wait at most ``window_s`` (and not at all when the sink is idle);
rows of the same kind (array trailing shape and dtype, or DataFrame columns) travel
in one call; results are split back by row count. When a combined call fails with an
error that can be pinned on a row (bad input, a model error), each request is retried alone
so that only a bad request fails; back-pressure (503) and timeouts (504) fail the group once.

Example::

    c = Coalescer(sink=lambda batch: handle.predict.remote(batch), window_s=0.001)
    out = await c.submit(np.zeros((1, 5)))     # -> that request's rows of the output
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pipelines.batching.rows import concat, kind_of, split_rows
from pipelines.dataplane.metrics import recorder
from pipelines.errors import ISVCError
from pipelines.shared_work import call_later_detached, call_soon_detached, detached

__all__ = ["Coalescer"]

Sink = Callable[[Any], Awaitable[Any]]


class Coalescer:
    """Merges concurrent ``submit(batch)`` calls into at most ``max_inflight`` sink calls.

    ``name``: the model, as the ``coalesced`` row counts are recorded (rows per sink call).
    """

    def __init__(
        self,
        sink: Sink,
        window_s: float = 0.001,
        max_rows: int = 1024,
        max_inflight: int = 4,
        name: str = "",
    ):
        self._sink = sink
        self._name = name
        self._window_s = window_s
        self._max_rows = max_rows
        self._max_inflight = max_inflight
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._pending_rows = 0
        self._inflight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._scheduled = False

    @property
    def enabled(self) -> bool:
        return self._window_s > 0

    async def submit(self, batch: Any) -> Any:
        """Send ``batch`` (2-D array or DataFrame) with others; return its own output rows."""
        if not self.enabled or len(batch) >= self._max_rows:
            return await self._call(batch)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((batch, fut))
        self._pending_rows += len(batch)
        if self._pending_rows >= self._max_rows or self._inflight < self._max_inflight:
            # Flush on the next loop turn so requests parsed in this turn ride along.
            if not self._scheduled:
                self._scheduled = True
                call_soon_detached(self._flush)  # the batch belongs to no one request
        elif self._timer is None:
            self._timer = call_later_detached(self._window_s, self._flush)
        return await fut

    def _flush(self) -> None:
        self._scheduled = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        pending, self._pending, self._pending_rows = self._pending, [], 0
        groups: dict[tuple[Any, ...], list[tuple[Any, asyncio.Future[Any]]]] = {}
        for item in pending:
            groups.setdefault(kind_of(item[0]), []).append(item)
        for group in groups.values():
            self._inflight += 1
            detached(self._run(group))

    async def _call(self, batch: Any) -> Any:
        recorder().rows("coalesced", self._name, len(batch))
        return await self._sink(batch)

    async def _run(self, group: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            if len(group) == 1:
                await self._settle_one(*group[0])
                return
            combined = concat([b for b, _ in group])
            try:
                out = await self._call(combined)
                parts = split_rows(out, [len(b) for b, _ in group])
            except ISVCError as exc:
                if not exc.row_specific:  # back-pressure, timeout, not ready: the same for every row
                    self._fail(group, exc)
                    return
                # One bad request must not fail the others: retry each alone.
                await asyncio.gather(*(self._settle_one(b, f) for b, f in group))
                return
            except BaseException as exc:  # noqa: BLE001 - e.g. a dead replica: no replay
                self._fail(group, exc)
                return
            for (_, fut), part in zip(group, parts, strict=True):
                if not fut.done():
                    fut.set_result(part)
        finally:
            self._inflight -= 1
            if self._pending and not self._scheduled:
                self._scheduled = True
                call_soon_detached(self._flush)

    @staticmethod
    def _fail(group: list[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
        for _, fut in group:
            if not fut.done():
                fut.set_exception(exc)

    async def _settle_one(self, batch: Any, fut: asyncio.Future[Any]) -> None:
        try:
            result = await self._call(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            if not fut.done():
                fut.set_exception(exc)
            return
        if not fut.done():
            fut.set_result(result)
