"""Work that several requests wait on runs outside any one request's context.

Ray Serve ties a handle call made inside a request to that request (through a context
variable) and cancels the call when the request is cancelled, for example when its client
disconnects while the call still waits for a replica (a cold start, a rolling upgrade;
``ray.serve.context._add_request_pending_assignment``). Work that several requests share
must not die with the first one that started it: a coalesced batch, the metadata learnt on
first use, shadow copies. Here it runs in an empty context, so it belongs to no request.

CI showed the failure: the first request after an in-place upgrade started the metadata
lookup, its client gave up, Ray cancelled the lookup, and every later request got that
cancelled result.

>>> import asyncio, contextvars
>>> var = contextvars.ContextVar("var", default="none")
>>> async def main():
...     var.set("request 1")
...     return await detached(asyncio.sleep(0, var.get())), await detached(_read(var))
>>> async def _read(v):
...     return v.get()
>>> asyncio.run(main())
('request 1', 'none')
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["call_later_detached", "call_soon_detached", "detached"]

T = TypeVar("T")


def detached(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """``coro`` as a task in an empty context (keep a reference to it)."""
    return asyncio.get_running_loop().create_task(coro, context=contextvars.Context())


def call_soon_detached(callback: Callable[[], Any]) -> asyncio.Handle:
    return asyncio.get_running_loop().call_soon(callback, context=contextvars.Context())


def call_later_detached(delay_s: float, callback: Callable[[], Any]) -> asyncio.TimerHandle:
    return asyncio.get_running_loop().call_later(delay_s, callback, context=contextvars.Context())
