"""The ingress coalescer and the predictor-side merge: few calls, right rows back,
only bad requests fail."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pandas as pd
import pytest

from pipelines.batching import Coalescer, Failure, InlineOrThread, predict_many
from pipelines.errors import InvalidInput


def doubler(calls: list[int]):
    def predict(batch):
        calls.append(len(batch))
        if np.isnan(np.asarray(batch, dtype=float)).any():
            raise InvalidInput("NaN in batch")
        return np.asarray(batch) * 2

    return predict


async def test_concurrent_requests_share_calls_and_get_their_own_rows():
    calls: list[int] = []
    predict = doubler(calls)

    async def sink(batch):
        await asyncio.sleep(0.005)
        return predict(batch)

    c = Coalescer(sink, window_s=0.002, max_inflight=1)
    outs = await asyncio.gather(*(c.submit(np.full((1, 3), i, dtype=float)) for i in range(40)))
    for i, out in enumerate(outs):
        assert out.tolist() == [[2 * i] * 3]
    assert len(calls) < 10 and sum(calls) == 40


async def test_bad_request_fails_alone():
    calls: list[int] = []
    predict = doubler(calls)

    async def sink(batch):
        return predict(batch)

    c = Coalescer(sink, window_s=0.002, max_inflight=1)
    good = [c.submit(np.ones((2, 3))) for _ in range(5)]
    bad = c.submit(np.full((1, 3), np.nan))
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert all(isinstance(r, np.ndarray) and r.shape == (2, 3) for r in results[:5])
    assert isinstance(results[5], InvalidInput)


async def test_different_shapes_travel_in_separate_calls():
    seen: list[tuple[int, ...]] = []

    async def sink(batch):
        seen.append(batch.shape)
        return np.asarray(batch).sum(axis=1)

    c = Coalescer(sink, window_s=0.002, max_inflight=1)
    a, b = await asyncio.gather(c.submit(np.ones((1, 3))), c.submit(np.ones((2, 4))))
    assert a.tolist() == [3.0] and b.tolist() == [4.0, 4.0]
    assert sorted(seen) == [(1, 3), (2, 4)]


async def test_window_zero_disables_coalescing():
    calls: list[int] = []

    async def sink(batch):
        return doubler(calls)(batch)

    c = Coalescer(sink, window_s=0)
    await asyncio.gather(*(c.submit(np.ones((1, 2))) for _ in range(5)))
    assert calls == [1] * 5


def test_predict_many_merges_kinds_and_isolates_failures():
    calls: list[int] = []
    batches = [np.ones((2, 3)), np.full((1, 3), np.nan), np.ones((1, 3)), pd.DataFrame({"a": [1.0]})]
    out = predict_many(doubler(calls), batches)
    assert out[0].shape == (2, 3) and out[2].shape == (1, 3)
    assert isinstance(out[1], Failure) and out[1].status == 400
    assert np.asarray(out[3]).tolist() == [[2.0]]
    err = out[1].to_error()
    assert err.status_code == 400 and "NaN" in str(err)


def test_failure_of_foreign_exception_is_500():
    f = Failure.of(KeyError("k"))
    assert f.status == 500 and "KeyError" in f.message
    assert f.to_error().status_code == 500


async def test_inline_or_thread_moves_short_calls_onto_the_loop_and_slow_ones_off():
    loop_thread = threading.get_ident()
    where: list[bool] = []

    def call(seconds: float) -> float:
        where.append(threading.get_ident() == loop_thread)
        time.sleep(seconds)
        return seconds

    run = InlineOrThread(inline_below_s=0.005, warmup_calls=2)
    assert [await run(call, 0.0) for _ in range(4)] == [0.0] * 4
    assert where == [False, False, True, True]  # timed on a thread first, then inline
    for _ in range(6):  # the model grows slow: the moving average pushes it back to the thread
        await run(call, 0.02)
    assert where[-1] is False and not run.inline

    never = InlineOrThread(inline_below_s=0)
    for _ in range(4):
        await never(call, 0.0)
    assert where[-4:] == [False] * 4


async def test_inline_or_thread_passes_exceptions_through():
    def boom() -> None:
        raise KeyError("x")

    run = InlineOrThread(warmup_calls=1)
    for _ in range(3):
        with pytest.raises(KeyError):
            await run(boom)
    assert run.inline


async def test_a_shared_batch_belongs_to_no_one_request_and_outlives_a_cancelled_one():
    """Ray Serve cancels a handle call with the request whose context made it; a coalesced call
    carries other requests' rows, so it runs in no request's context, and cancelling one waiting
    request leaves the others answered."""
    import contextvars

    request = contextvars.ContextVar("request", default=None)
    seen: list[object] = []
    release = asyncio.Event()

    async def sink(batch):
        seen.append(request.get())
        await release.wait()
        return np.asarray(batch) * 2

    c = Coalescer(sink, window_s=0.002, max_inflight=1)

    async def one(i: int):
        request.set(f"request {i}")
        return await c.submit(np.full((1, 2), i, dtype=float))

    tasks = [asyncio.ensure_future(one(i)) for i in range(4)]
    await asyncio.sleep(0.05)
    tasks[0].cancel()  # its client went away while the call waited
    release.set()
    outs = await asyncio.gather(*tasks[1:])
    assert [o.tolist() for o in outs] == [[[2.0 * i] * 2] for i in range(1, 4)]
    assert seen and all(s is None for s in seen)
