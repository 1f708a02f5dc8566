"""The download progress registry and its rate-limited log lines."""

from __future__ import annotations

import logging
import threading

import pytest

from pipelines.storage import progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == progress.LOGGER_NAME]


def test_registry_and_log_lines_at_most_every_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=progress.LOGGER_NAME)
    clock = FakeClock()
    uri = "s3://models/big"
    with progress.track(uri, total=40_000_000, clock=clock) as dl:
        assert progress.current()[uri] == {
            "bytes": 0,
            "total": 40_000_000,
            "rate_bps": 0.0,
            "done": False,
            "cached": False,
            "error": None,
            "elapsed_s": 0.0,
        }
        for _ in range(4):  # 10 MB in 1 s: no progress line yet
            clock.now += 0.25
            dl.add(2_500_000)
        assert len(_lines(caplog)) == 1  # the start line only
        clock.now += 1.0
        dl.add(10_000_000)  # 2 s in: due
        dl.add(0)  # just logged: not due
        snap = progress.current()[uri]
        assert (snap["bytes"], snap["rate_bps"], snap["done"]) == (20_000_000, 1e7, False)
        clock.now += 2.0
        dl.add(20_000_000)
    lines = _lines(caplog)
    assert lines[0] == "downloading s3://models/big (40.0 MB)"
    assert lines[1] == "downloading s3://models/big: 20.0 MB of 40.0 MB (50%), 10.0 MB/s, 2.0 s"
    assert lines[2] == "downloading s3://models/big: 40.0 MB of 40.0 MB (100%), 10.0 MB/s, 4.0 s"
    assert lines[3] == "downloaded s3://models/big: 40.0 MB of 40.0 MB (100%), 10.0 MB/s, 4.0 s"
    assert len(lines) == 4
    clock.now += 60  # finished entries keep their final rate
    assert progress.current()[uri] == {
        "bytes": 40_000_000,
        "total": 40_000_000,
        "rate_bps": 1e7,
        "done": True,
        "cached": False,
        "error": None,
        "elapsed_s": 4.0,
    }


def test_unknown_total_and_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=progress.LOGGER_NAME)
    clock = FakeClock()
    with pytest.raises(OSError, match="reset"), progress.track("https://h/m.bin", clock=clock) as dl:
        clock.now += 3
        dl.add(500)
        raise OSError("connection reset")
    snap = progress.current()["https://h/m.bin"]
    assert (snap["bytes"], snap["total"], snap["done"], snap["error"]) == (
        500,
        None,
        True,
        "connection reset",
    )
    lines = _lines(caplog)
    assert lines[1] == "downloading https://h/m.bin: 500 bytes, 0.0 MB/s, 3.0 s"
    assert lines[2] == "download of https://h/m.bin failed after 500 bytes: connection reset"
    assert caplog.records[-1].levelno == logging.WARNING


def test_thread_safe_counts() -> None:
    with progress.track("gs://b/shards", total=8 * 1000) as dl:
        threads = [threading.Thread(target=lambda: [dl.add(1) for _ in range(1000)]) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert progress.current()["gs://b/shards"]["bytes"] == 8000


def test_cached_entries_and_eviction(monkeypatch: pytest.MonkeyPatch) -> None:
    progress.note_cached("s3://b/a")
    assert progress.current()["s3://b/a"]["cached"] is True
    with progress.track("s3://b/c"):
        pass
    progress.note_cached("s3://b/c")  # this process downloaded it: that entry stays
    assert progress.current()["s3://b/c"]["cached"] is False
    monkeypatch.setattr(progress, "KEEP_FINISHED", 2)
    with progress.track("s3://b/running") as running:
        for name in ("d", "e", "f"):
            progress.note_cached(f"s3://b/{name}")
        assert list(progress.current()) == ["s3://b/running", "s3://b/e", "s3://b/f"]
        running.add(1)


def _as_serve_log(caplog: pytest.LogCaptureFixture) -> str:
    """The captured lines with the prefix Ray Serve's replica log puts before each message."""
    return "".join(
        f"{r.levelname} 2026-12-01 18:00:00,000 ns-svc-predictor-1a2b3c4d_predictor x7 progress.py:1 - "
        f"{r.getMessage()}\n"
        for r in caplog.records
        if r.name == progress.LOGGER_NAME
    )


def test_from_log_reads_back_what_the_tracker_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=progress.LOGGER_NAME)
    clock = FakeClock()
    uri = "s3://models/big"
    with progress.track(uri, total=40_000_000, clock=clock) as dl:
        assert progress.from_log(_as_serve_log(caplog)) == {
            uri: {"bytes": 0, "total": 40_000_000, "rate_bps": 0.0, "done": False, "error": None}
            | {"elapsed_s": 0.0}
        }
        clock.now += 2.5
        dl.add(12_345_678)
        assert progress.from_log(_as_serve_log(caplog))[uri] == {
            "bytes": 12_300_000,  # the line's 0.1 MB
            "total": 40_000_000,
            "rate_bps": 4_900_000.0,
            "done": False,
            "error": None,
            "elapsed_s": 2.5,
        }
        dl.add(40_000_000 - 12_345_678)
    assert progress.from_log(_as_serve_log(caplog))[uri]["done"] is True
    with pytest.raises(OSError), progress.track("https://h/m.bin", clock=clock) as dl:
        clock.now += 3
        dl.add(500)
        raise OSError("connection reset")
    found = progress.from_log(_as_serve_log(caplog))
    assert list(found) == [uri, "https://h/m.bin"]
    assert found["https://h/m.bin"] | {"elapsed_s": None} == {
        "bytes": 500,
        "total": None,
        "rate_bps": 0.0,
        "done": True,
        "error": "connection reset",
        "elapsed_s": None,
    }
    assert progress.from_log("INFO ... - downloading the world\nrandom text: 1 MB\n") == {}
