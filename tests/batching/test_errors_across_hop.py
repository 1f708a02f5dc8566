"""Errors crossing the ingress → predictor hop: ISVC errors pickle with their class, status
and attributes; ``Failure`` wraps foreign exceptions; the coalescer replays a failed combined
call request by request only for errors that can be pinned on a row."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import numpy as np
import pytest

from pipelines.batching import Coalescer, Failure
from pipelines.errors import (
    InvalidInput,
    ISVCError,
    ModelNotFound,
    ModelNotReady,
    PredictorError,
    RequestTimeout,
    ServerOverloaded,
    SpecError,
    UserCodeError,
)


@pytest.mark.parametrize(
    ("error", "status", "message", "attrs"),
    [
        (ModelNotFound("x"), 404, "model 'x' is not served here", {"name": "x"}),
        (
            UserCodeError("preprocess", KeyError("k")),
            500,
            "preprocess raised KeyError: 'k'",
            {"hook": "preprocess"},
        ),
        (ServerOverloaded("busy"), 503, "busy", {}),
        (SpecError(["a: b"]), 400, "invalid InferenceService:\n  - a: b", {"problems": ["a: b"]}),
    ],
)
def test_isvc_errors_survive_pickle(error: ISVCError, status: int, message: str, attrs: dict[str, Any]):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert back.status_code == error.status_code == status
    assert back.message == error.message == message
    assert str(back) == message
    assert back.row_specific == error.row_specific
    for key, value in attrs.items():
        assert getattr(back, key) == value
    assert back.__dict__ == error.__dict__


def test_failure_pickles_with_its_error():
    failure = Failure.of(UserCodeError("postprocess", ValueError("v")))
    back = pickle.loads(pickle.dumps(failure))
    assert isinstance(back.to_error(), UserCodeError) and back.to_error().hook == "postprocess"
    assert (back.status, back.message) == (500, "postprocess raised ValueError: v")


def test_failure_of_foreign_exception_is_row_specific_predictor_error():
    failure = Failure.of(ValueError("v"))
    err = failure.to_error()
    assert type(err) is PredictorError
    assert err.status_code == failure.status == 500
    assert err.row_specific is True
    assert "ValueError" in err.message and "v" in err.message


def test_failure_of_isvc_error_keeps_it():
    original = ServerOverloaded("busy")
    assert Failure.of(original).to_error() is original
    assert Failure.of(original).status == 503


class CountingSink:
    """Fails a combined call (more than one request's rows) with ``error``; alone, a request
    fails only when it carries NaN (``bad``), otherwise it gets its rows doubled."""

    def __init__(self, error: BaseException, alone_too: bool = False) -> None:
        self.error = error
        self.alone_too = alone_too
        self.calls: list[int] = []

    async def __call__(self, batch: Any) -> Any:
        self.calls.append(len(batch))
        await asyncio.sleep(0)
        if len(batch) > 1 or self.alone_too:
            raise self.error
        if np.isnan(batch).any():
            raise InvalidInput("NaN in batch")
        return np.asarray(batch) * 2


async def submit_all(coalescer: Coalescer, batches: list[np.ndarray]) -> list[Any]:
    return await asyncio.gather(*(coalescer.submit(b) for b in batches), return_exceptions=True)


@pytest.mark.parametrize(
    "error",
    [InvalidInput("bad rows"), PredictorError("model broke"), UserCodeError("predict", KeyError("k"))],
)
async def test_row_specific_failure_retries_each_request_alone(error: ISVCError):
    sink = CountingSink(error)
    c = Coalescer(sink, window_s=0.002, max_inflight=1)
    batches = [np.full((1, 3), float(i)) for i in range(4)] + [np.full((1, 3), np.nan)]
    results = await submit_all(c, batches)
    for i, r in enumerate(results[:4]):
        assert isinstance(r, np.ndarray) and r.tolist() == [[2.0 * i] * 3]
    assert isinstance(results[4], InvalidInput)
    # One combined call of all five, then each request alone.
    assert sink.calls == [5, 1, 1, 1, 1, 1]


@pytest.mark.parametrize(
    "error",
    [
        ServerOverloaded("busy"),
        RequestTimeout("too slow"),
        ModelNotReady("m"),
        RuntimeError("replica died"),
    ],
)
async def test_group_wide_failure_fails_every_request_once_without_replay(error: BaseException):
    sink = CountingSink(error, alone_too=True)
    c = Coalescer(sink, window_s=0.002, max_inflight=1)
    batches = [np.full((1, 3), float(i)) for i in range(5)]
    results = await submit_all(c, batches)
    assert all(type(r) is type(error) for r in results), results
    assert all(str(r) == str(error) for r in results)
    assert sink.calls == [5]


async def test_group_wide_failure_fails_only_its_group():
    """Two kinds of batch travel in two groups: each group gets one call, no replay."""
    sink = CountingSink(ServerOverloaded("busy"), alone_too=True)
    c = Coalescer(sink, window_s=0.002, max_inflight=1)
    batches = [np.ones((1, 3)) for _ in range(3)] + [np.ones((1, 4)) for _ in range(2)]
    results = await submit_all(c, batches)
    assert all(isinstance(r, ServerOverloaded) for r in results)
    assert sorted(sink.calls) == [2, 3]
