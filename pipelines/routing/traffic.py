"""Traffic between predictor revisions: the canary split, tag routing and shadow copies. No Ray.

A :class:`TrafficRouter` holds :class:`Revision` entries (KServe's revisions: the stable one
is tagged ``prev`` while a canary runs, the newest is ``latest``). Each request is weighted
on its own, by a point on [0, 1) that steps by the golden ratio from a random start
(:class:`GoldenSplit`): the points spread evenly, so any run of N requests gives each revision
its percent to within a few requests — where independent random draws drift by ±√N (±0.9
points of σ over 2,000 at 20 %). A request header forces a tag (see
:data:`~pipelines.dataplane.TAG_HEADER`); the revision that served it is written into the
request's :data:`~pipelines.dataplane.REQUEST_INFO` so the HTTP layer can say so in a response
header. :meth:`TrafficRouter.set_revisions` swaps the whole table at once (a weight change is a
``user_config`` update, not a restart).

A revision that is not up yet (``ready`` False) gets no weighted traffic while another is up,
and a revision that turns out to be gone (:class:`~pipelines.errors.RevisionUnavailable`, a
deleted deployment) is retried on the others — so a promote or rollback loses no request.

A :class:`Shadow` mirrors a copy of what one revision served to another, fire and forget,
through a bounded queue (full: the copy is dropped and counted), and counts how often the
shadow's prediction agrees with the served one (:func:`agreement`).

>>> import asyncio
>>> async def stable(batch): return "stable"
>>> async def canary(batch): return "canary"
>>> router = TrafficRouter([Revision("prev", "v1", 80, stable), Revision("latest", "v2", 20, canary)],
...                        rand=lambda: 0.9)   # 0.9 * 100 >= 80: the canary's share
>>> asyncio.run(router.predict([[1]]))
'canary'
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.dataplane import REQUEST_INFO
from pipelines.errors import ColdStartTimeout, InvalidInput, RevisionUnavailable
from pipelines.shared_work import detached

__all__ = ["GoldenSplit", "Revision", "Shadow", "TrafficRouter", "agreement"]

logger = logging.getLogger("isvc.routing")

Submit = Callable[[Any], Awaitable[Any]]


@dataclass
class Revision:
    """One predictor revision the ingress can send batches to."""

    tag: str
    """``latest`` (the newest) or ``prev`` (the one rolled out before it)."""
    name: str
    """What serves it: a Serve application or deployment name; reported in responses."""
    percent: float
    submit: Submit
    ready: bool = True
    """False until the revision is known to be up; it gets weighted traffic only then."""
    cold_start_s: float | None = None
    """Set when it can scale to zero: a request waits this long for a replica, then 503."""

    async def call(self, batch: Any) -> Any:
        if self.cold_start_s is None:
            return await self.submit(batch)
        try:
            return await asyncio.wait_for(self.submit(batch), self.cold_start_s)
        except TimeoutError:
            raise ColdStartTimeout(
                f"predictor {self.name} did not answer within its cold-start bound of {self.cold_start_s:g}s "
                "(it scales to zero and no replica came up in time; raise isvc.dev/cold-start-timeout "
                "or keep a replica with minScale: 1)"
            ) from None


def _rows(value: Any) -> np.ndarray:
    if isinstance(value, pd.DataFrame):
        return value.to_numpy()
    return np.asarray(value)


def agreement(served: Any, shadow: Any) -> tuple[int, int]:
    """``(rows, rows that agree)`` between two predictions of the same batch.

    Rows of class scores (2-D floats) agree when they pick the same class; other float rows
    when they are within 1e-3 (relative); anything else when equal.

    >>> agreement([[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.7, 0.3]])
    (2, 1)
    >>> agreement([1, 2, 3], [1, 2, 4])
    (3, 2)
    """
    a, b = _rows(served), _rows(shadow)
    n = len(a) if a.ndim else 1
    if a.shape != b.shape:
        return n, 0
    if a.ndim == 0:
        return 1, int(bool(np.all(a == b)))
    floats = a.dtype.kind == "f" and b.dtype.kind == "f"
    if floats and a.ndim == 2 and a.shape[1] > 1:
        return n, int(np.sum(a.argmax(axis=1) == b.argmax(axis=1)))
    if floats:
        same = np.isclose(a, b, rtol=1e-3, atol=1e-6)
    else:
        same = a == b
    same = same.reshape(n, -1).all(axis=1)
    return n, int(same.sum())


@dataclass
class ShadowStats:
    """What the shadow has seen so far (the counts behind the agreement)."""

    mirrored: int = 0
    dropped: int = 0
    errors: int = 0
    rows: int = 0
    agreed_rows: int = 0

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = dict(self.__dict__)
        body["agreement"] = round(self.agreed_rows / self.rows, 6) if self.rows else None
        return body


@dataclass
class Shadow:
    """Copies of what revision ``served`` answered go to ``target``; agreement is counted.

    ``on_compared(rows, agreed)`` is called after each comparison (the Ray layer counts it in a
    Prometheus metric).
    """

    served: str
    target: Revision
    queue_size: int = 64
    workers: int = 2
    on_compared: Callable[[str, int, int], None] | None = None
    stats: ShadowStats = field(default_factory=ShadowStats)
    _queue: asyncio.Queue[tuple[Any, Any]] | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def mirror(self, batch: Any, served_out: Any) -> None:
        """Queue a copy; never waits: a full queue drops it (counted in ``dropped``)."""
        if self._queue is None:
            self._queue = asyncio.Queue(self.queue_size)
            self._tasks = [detached(self._work()) for _ in range(self.workers)]
        try:
            self._queue.put_nowait((batch, served_out))
        except asyncio.QueueFull:
            self.stats.dropped += 1
            if self.on_compared is not None:
                self.on_compared("dropped", 0, 0)

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            batch, served_out = await self._queue.get()
            try:
                out = await self.target.submit(batch)
            except Exception as exc:  # noqa: BLE001 - the shadow never touches a response
                self.stats.errors += 1
                logger.debug("shadow %s failed: %s", self.target.name, exc)
                if self.on_compared is not None:
                    self.on_compared("error", 0, 0)
                continue
            try:
                rows, agreed = agreement(served_out, out)
                self.stats.mirrored += 1
                self.stats.rows += rows
                self.stats.agreed_rows += agreed
                if self.on_compared is not None:
                    self.on_compared("compared", rows, agreed)
            except Exception:  # noqa: BLE001 - a worker must outlive any one comparison
                logger.exception("shadow comparison with %s failed", self.target.name)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()

    def to_json(self) -> dict[str, Any]:
        return {"served": self.served, "shadow": self.target.name, **self.stats.to_json()}


class GoldenSplit:
    """Points on [0, 1) for weighted picks: ``start + k·(√5 − 1)/2`` (mod 1), ``k`` = 0, 1, 2, …

    The golden ratio's additive sequence is among the most even there are: among any N
    consecutive points, the share below ``p`` is ``p`` to within O(log N / N) — here within 0.2
    points over 2,000 — while each point still lands anywhere. The random start keeps ingress
    replicas from stepping in lockstep; each replica's share is even on its own, so their sum
    is too.

    >>> split = GoldenSplit(start=0.0)
    >>> points = [split() for _ in range(2000)]
    >>> sum(p < 0.2 for p in points)
    400
    """

    STEP = (5**0.5 - 1) / 2

    def __init__(self, start: float | None = None) -> None:
        self._point = random.random() if start is None else start

    def __call__(self) -> float:
        point = self._point
        self._point = (point + self.STEP) % 1.0
        return point


class TrafficRouter:
    """Weighted, per request: which revision serves a batch (see the module doc)."""

    def __init__(
        self,
        revisions: list[Revision],
        shadow: Shadow | None = None,
        rand: Callable[[], float] | None = None,
    ) -> None:
        self._rand = rand or GoldenSplit()
        self.revisions: tuple[Revision, ...] = ()
        self.shadow: Shadow | None = None
        self.on_unavailable: Callable[[Revision], None] | None = None
        """Called with a revision just marked not ready (its deployment was gone), so whoever
        watches readiness looks again: the revision gets weighted traffic back once it is up."""
        if revisions:  # empty: the table comes later (a routed ingress's user_config)
            self.set_revisions(revisions, shadow)

    def set_revisions(self, revisions: list[Revision], shadow: Shadow | None = None) -> None:
        """Replace the table in one step; a request already routed keeps its revision."""
        if not revisions:
            raise ValueError("a traffic table needs at least one revision")
        old = self.shadow
        self.revisions = tuple(revisions)
        if old is not None and old is not shadow:
            if shadow is not None and shadow.target.name == old.target.name and shadow.served == old.served:
                shadow.stats = old.stats  # same pair: the counts carry on
            old.close()
        self.shadow = shadow

    def pick(self, forced: str | None = None) -> Revision:
        revisions = self.revisions
        if not revisions:
            raise RevisionUnavailable("no predictor revision is configured yet")
        if forced:
            for rev in revisions:
                if rev.tag == forced or rev.name == forced:
                    return rev
            tags = ", ".join(r.tag for r in revisions)
            raise InvalidInput(f"no predictor revision tagged {forced!r} here; tags: {tags}")
        live = [r for r in revisions if r.ready and r.percent > 0]
        if not live:  # nothing known up yet (a first deploy): wait on the weighted ones
            live = [r for r in revisions if r.percent > 0] or list(revisions)
        total = sum(r.percent for r in live) or 1.0
        point = self._rand() * total
        for rev in live:
            point -= rev.percent
            if point < 0:
                return rev
        return live[-1]

    async def predict(self, batch: Any) -> Any:
        info = REQUEST_INFO.get()
        forced = info.get("force_tag") if info is not None else None
        rev = self.pick(forced)
        try:
            out = await rev.call(batch)
        except RevisionUnavailable:
            rev.ready = False
            if self.on_unavailable is not None:
                self.on_unavailable(rev)
            others = [r for r in self.revisions if r is not rev and r.ready] or [
                r for r in self.revisions if r is not rev
            ]
            if forced or not others:
                raise
            logger.warning("revision %s is gone; request retried on %s", rev.name, others[0].name)
            rev = max(others, key=lambda r: r.percent)
            out = await rev.call(batch)
        if info is not None:
            info["served_by"] = rev.tag
            info["revision"] = rev.name
        shadow = self.shadow
        if shadow is not None and shadow.served == rev.tag and shadow.target is not rev:
            shadow.mirror(batch, out)
        return out

    def to_json(self) -> dict[str, Any]:
        """The traffic table and shadow counts, as ``GET /v1/models/{name}`` reports them."""
        body: dict[str, Any] = {
            "traffic": [
                {"tag": r.tag, "revision": r.name, "percent": r.percent, "ready": r.ready}
                for r in self.revisions
            ]
        }
        if self.shadow is not None:
            body["shadow"] = self.shadow.to_json()
        return body
