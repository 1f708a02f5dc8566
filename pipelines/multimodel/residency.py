"""What one multiplexed predictor replica holds: the resident models in LRU order, and why the
others are not there. Pure bookkeeping, no Ray.

Ray's ``@serve.multiplexed`` keeps its own LRU and evicts without telling anyone but the evicted
model; :mod:`pipelines._ray.multiplex` mirrors every load, hit, eviction and unload here, so that
the replica can say exactly what it holds (the V2 repository index) and unload one chosen model.

>>> r = Residency(cap=2)
>>> for name in ("a", "b"):
...     r.begin_load(name); r.loaded(name, 0.01)
>>> r.hit("a"); r.begin_load("c"); _ = r.evicted("b"); r.loaded("c", 0.02)
>>> r.names(), r.why_not("b")
(['a', 'c'], 'evicted (least recently used)')
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVICTED", "FAILED", "UNLOADED", "Resident", "Residency"]

EVICTED = "evicted (least recently used)"
UNLOADED = "unloaded"
FAILED = "failed to load"


@dataclass
class Resident:
    """One resident model: when it was loaded, how long that took, how often it was used since."""

    name: str
    loaded_at: float
    load_s: float
    hits: int = 0
    last_used: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "load_ms": round(self.load_s * 1000, 3), "hits": self.hits}


@dataclass
class Residency:
    """A replica's models, least recently used first, capped at ``cap``.

    Loads, hits, evictions and unloads are counted per replica (``loads``/``evictions``/``unloads``)
    and per model (``hits``); ``gone`` says why a model that was here is not any more, and when
    (``wall`` time, so that replicas' reasons for one model can be ordered).
    """

    cap: int
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    models: OrderedDict[str, Resident] = field(default_factory=OrderedDict)
    loading: dict[str, float] = field(default_factory=dict)
    gone: dict[str, tuple[str, float]] = field(default_factory=dict)
    loads: int = 0
    evictions: int = 0
    unloads: int = 0
    recent_evictions: deque[str] = field(default_factory=lambda: deque(maxlen=64))

    def __contains__(self, name: object) -> bool:
        return name in self.models

    def __len__(self) -> int:
        return len(self.models)

    def names(self) -> list[str]:
        """Resident models, least recently used first (the next eviction is ``names()[0]``)."""
        return list(self.models)

    def next_eviction(self) -> str | None:
        """The model a load of a new one would evict now, or ``None`` while there is room."""
        return next(iter(self.models)) if len(self.models) >= self.cap else None

    def begin_load(self, name: str) -> None:
        self.loading[name] = self.clock()

    def loaded(self, name: str, load_s: float) -> None:
        """``name`` is resident (most recently used); a full replica must have evicted first."""
        self.loading.pop(name, None)
        self.gone.pop(name, None)
        now = self.clock()
        self.models[name] = Resident(name, loaded_at=now, load_s=load_s, last_used=now)
        self.models.move_to_end(name)
        self.loads += 1
        if len(self.models) > self.cap:
            raise AssertionError(f"{len(self.models)} models resident, over the cap of {self.cap}")

    def load_failed(self, name: str, error: str) -> None:
        self.loading.pop(name, None)
        self.gone[name] = (f"{FAILED}: {error}", self.wall())

    def hit(self, name: str) -> None:
        """A request used ``name``: it becomes the most recently used."""
        resident = self.models.get(name)
        if resident is None:
            return
        resident.hits += 1
        resident.last_used = self.clock()
        self.models.move_to_end(name)

    def evicted(self, name: str) -> bool:
        """Ray's LRU let ``name`` go to make room; ``False`` when it was not resident."""
        if self.models.pop(name, None) is None:
            return False
        self.evictions += 1
        self.recent_evictions.append(name)
        self.gone[name] = (EVICTED, self.wall())
        return True

    def unloaded(self, name: str) -> bool:
        """``name`` was unloaded on request; ``False`` when it was not resident."""
        if self.models.pop(name, None) is None:
            return False
        self.unloads += 1
        self.gone[name] = (UNLOADED, self.wall())
        return True

    def why_not(self, name: str) -> str | None:
        """Why ``name`` is not resident (evicted, unloaded, failed), ``None`` when it is or never was."""
        gone = self.gone.get(name)
        return None if name in self.models or gone is None else gone[0]

    def snapshot(self, replica: str) -> dict[str, Any]:
        """This replica's state as JSON: ``models`` in LRU order (least recent first)."""
        return {
            "replica": replica,
            "cap": self.cap,
            "models": [r.to_json() for r in self.models.values()],
            "loading": sorted(self.loading),
            "gone": {name: {"reason": why, "at": at} for name, (why, at) in self.gone.items()},
            "loads": self.loads,
            "evictions": self.evictions,
            "unloads": self.unloads,
        }
