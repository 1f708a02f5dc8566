"""Download progress: periodic log lines, and an in-process registry of the downloads of this process.

Each fetcher wraps its transfer in :func:`track` and reports bytes as they arrive; the tracker
logs a line at the start, at most every :data:`LOG_INTERVAL_S` seconds while bytes flow, and at
the end, on the replica's logger (``ray.serve``: in a Serve replica it writes the replica's log;
elsewhere it propagates to the root logger like any other). :func:`current` is a snapshot for
status displays, keyed by the ``storageUri`` as written; the latest :data:`KEEP_FINISHED`
finished entries stay so a status display can still show how each model arrived.
:func:`from_log` reads the same snapshots back from the log lines (``isvc get -o yaml`` reads
a starting replica's log through Ray's dashboard), so the line format is kept in this module
only.

Example::

    with track("s3://models/iris", total=12_345_678) as dl:
        for chunk in body:
            out.write(chunk)
            dl.add(len(chunk))

    current()["s3://models/iris"]
    # {"bytes": 12345678, "total": 12345678, "rate_bps": 4.1e7, "done": True, "cached": False,
    #  "error": None, "elapsed_s": 0.3}
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KEEP_FINISHED",
    "LOG_INTERVAL_S",
    "LOGGER_NAME",
    "Download",
    "clear",
    "current",
    "from_log",
    "note_cached",
    "track",
]

LOGGER_NAME = "ray.serve"
"""Ray Serve's replica logger: what a replica writes here lands in its log file."""
LOG_INTERVAL_S = 2.0
KEEP_FINISHED = 64

_lock = threading.Lock()
_registry: dict[str, Download] = {}


@dataclass
class Download:
    """One download's counters; thread-safe (S3 and GCS fetch several objects at once)."""

    uri: str
    total: int | None = None
    bytes: int = 0
    done: bool = False
    cached: bool = False
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    interval_s: float = LOG_INTERVAL_S
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(LOGGER_NAME), repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _last_log: float = field(default=0.0, repr=False)
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.started = self._last_log = self.clock()

    def add(self, n: int) -> None:
        """Count ``n`` more bytes; logs a progress line when the last one is ``interval_s`` old."""
        now = self.clock()
        with self._mutex:
            self.bytes += n
            due = now - self._last_log >= self.interval_s
            if due:
                self._last_log = now
        if due:
            self.logger.info("downloading %s: %s", self.uri, self._describe(now))

    def add_total(self, n: int) -> None:
        """Grow the expected size by ``n`` bytes (a fetcher that learns sizes one object at a time)."""
        with self._mutex:
            self.total = (self.total or 0) + n

    def rate_bps(self, now: float | None = None) -> float:
        """Average bytes per second since the start (up to the end, once finished)."""
        end = self.finished if self.finished is not None else (self.clock() if now is None else now)
        elapsed = end - self.started
        return self.bytes / elapsed if elapsed > 0 else 0.0

    def snapshot(self) -> dict[str, Any]:
        """A plain dict: ``bytes``, ``total`` (None when unknown), ``rate_bps``, ``done``, ``cached``,
        ``error`` (None, or why it failed) and ``elapsed_s``."""
        now = self.clock()
        with self._mutex:
            end = self.finished if self.finished is not None else now
            return {
                "bytes": self.bytes,
                "total": self.total,
                "rate_bps": round(self.rate_bps(now), 1),
                "done": self.done,
                "cached": self.cached,
                "error": self.error,
                "elapsed_s": round(end - self.started, 3),
            }

    def _finish(self, error: BaseException | None) -> None:
        now = self.clock()
        with self._mutex:
            self.finished, self.done = now, True
            self.error = None if error is None else (str(error) or type(error).__name__)
        if error is None:
            self.logger.info("downloaded %s: %s", self.uri, self._describe(now))
        else:
            self.logger.warning("download of %s failed after %s: %s", self.uri, _size(self.bytes), self.error)

    def _describe(self, now: float) -> str:
        done = _size(self.bytes)
        if self.total:
            done = f"{done} of {_size(self.total)} ({100 * self.bytes / self.total:.0f}%)"
        return f"{done}, {self.rate_bps(now) / 1e6:.1f} MB/s, {now - self.started:.1f} s"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


@contextmanager
def track(
    uri: str,
    total: int | None = None,
    *,
    logger: logging.Logger | None = None,
    interval_s: float = LOG_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Download]:
    """Register a download of ``uri`` for the duration of the block; see the module docstring.

    An exception leaving the block marks the entry done with its ``error`` and propagates.
    """
    dl = Download(uri, total=total, interval_s=interval_s, clock=clock)
    if logger is not None:
        dl.logger = logger
    _publish(dl)
    start = f" ({_size(total)})" if total else ""
    dl.logger.info("downloading %s%s", uri, start)
    try:
        yield dl
    except BaseException as exc:
        dl._finish(exc)
        raise
    dl._finish(None)


def note_cached(uri: str) -> None:
    """Record that ``uri`` was served from the node-local cache, unless this process has a
    successful entry for it already (another thread downloaded it while this one waited)."""
    with _lock:
        known = _registry.get(uri)
        if known is not None and known.error is None:
            return
    dl = Download(uri, done=True, cached=True)
    dl.finished = dl.started
    _publish(dl)


def current() -> dict[str, dict[str, Any]]:
    """``{uri: {"bytes", "total", "rate_bps", "done", "cached", "error", "elapsed_s"}}`` for the
    downloads of this process: running ones and the latest finished ones."""
    with _lock:
        entries = list(_registry.values())
    return {dl.uri: dl.snapshot() for dl in entries}


_NUMBER = r"\d+(?:\.\d+)?"
_SIZE = rf"(?P<{{0}}>{_NUMBER}) (?P<{{0}}_unit>MB|bytes)"
_PROGRESS = re.compile(
    rf"(?:^|\s)(?P<verb>downloading|downloaded) (?P<uri>\S+?)"
    rf"(?:: {_SIZE.format('bytes')}(?: of {_SIZE.format('total')} \(\d+%\))?, "
    rf"(?P<rate>{_NUMBER}) MB/s, (?P<elapsed>{_NUMBER}) s| \({_SIZE.format('start')}\))?\s*$"
)
_FAILED = re.compile(
    rf"(?:^|\s)download of (?P<uri>\S+) failed after {_SIZE.format('bytes')}: (?P<error>.*)$"
)


def _bytes(match: re.Match[str], group: str) -> int | None:
    value = match.group(group)
    if value is None:
        return None
    return round(float(value) * (1e6 if match.group(f"{group}_unit") == "MB" else 1))


def from_log(text: str) -> dict[str, dict[str, Any]]:
    r"""The downloads a log tells of, as ``{uri: snapshot}`` (the latest line per URI wins).

    A snapshot has :meth:`Download.snapshot`'s keys but ``cached`` (sizes in MB are to the
    0.1 MB the lines print):

    >>> log = (
    ...     "INFO 2026-12-01 18:00:00,000 app_predictor abc - downloading s3://m/churn (40.0 MB)\n"
    ...     "INFO 2026-12-01 18:00:02,000 app_predictor abc - "
    ...     "downloading s3://m/churn: 20.0 MB of 40.0 MB (50%), 10.0 MB/s, 2.0 s\n"
    ... )
    >>> from_log(log)["s3://m/churn"]  # doctest: +NORMALIZE_WHITESPACE
    {'bytes': 20000000, 'total': 40000000, 'rate_bps': 10000000.0, 'done': False,
     'error': None, 'elapsed_s': 2.0}
    """
    found: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        if m := _PROGRESS.search(line):
            uri = m.group("uri")
            if m.group("rate") is None:  # the start line
                found.pop(uri, None)
                found[uri] = {
                    "bytes": 0,
                    "total": _bytes(m, "start"),
                    "rate_bps": 0.0,
                    "done": False,
                    "error": None,
                    "elapsed_s": 0.0,
                }
                continue
            found[uri] = {
                "bytes": _bytes(m, "bytes"),
                "total": _bytes(m, "total"),
                "rate_bps": float(m.group("rate")) * 1e6,
                "done": m.group("verb") == "downloaded",
                "error": None,
                "elapsed_s": float(m.group("elapsed")),
            }
        elif m := _FAILED.search(line):
            entry = found.setdefault(m.group("uri"), {"total": None, "rate_bps": 0.0, "elapsed_s": None})
            entry.update(bytes=_bytes(m, "bytes"), done=True, error=m.group("error").strip())
    return found


def clear() -> None:
    """Forget every entry (tests)."""
    with _lock:
        _registry.clear()


def _publish(dl: Download) -> None:
    with _lock:
        _registry.pop(dl.uri, None)  # re-insert: newest last
        _registry[dl.uri] = dl
        finished = [uri for uri, d in _registry.items() if d.done]
        for uri in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del _registry[uri]
