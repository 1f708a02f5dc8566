"""A warm Ray worker beside an ingress whose predictor can scale to zero.

A replica that Ray Serve starts from zero waits for a new Python worker process: on this 2-core
machine ~1 s to start it and import ``ray``, ~1.5 s to import Serve's replica code, ~1.5 s for
scikit-learn, then the model load (measured: the constructor began 3.4 s and ended 5.0 s after
the request). Ray can hand an actor an idle worker it started ahead of time instead, if that
worker never ran anything (no job, no actor, no task) and the actor asks for no ``runtime_env``
of its own. Such a worker has also imported what ``RAY_preload_python_modules`` names before it
took work (``pipelines/serve.env`` names :mod:`pipelines._ray.preload`), so the replica's
constructor starts within ~0.3 s.

:class:`WarmWorkers` keeps ``want`` such workers on the ingress's node: every
:data:`CHECK_EVERY_S` it counts them (the raylet's ``GetNodeStats``) and asks for the missing
ones (``PrestartWorkers``, kept alive :data:`KEEP_ALIVE_S` against Ray's idle-worker killer).
A cold start takes one; the next check starts another. Both are the raylet's own gRPC calls,
made through Ray's authenticated channel. A predictor with container ``env`` gets a
``runtime_env`` and so a fresh worker (``pipelines/_ray/options.py``); so does a replica on
another node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["CHECK_EVERY_S", "KEEP_ALIVE_S", "WarmWorkers", "fresh_idle"]

logger = logging.getLogger("isvc.app")

CHECK_EVERY_S = 10.0
"""How often the node's warm workers are counted (a cold start's replacement starts after it,
not during the cold start's own CPU-heavy second)."""

KEEP_ALIVE_S = 3600
"""How long Ray keeps a prestarted idle worker although the node runs more workers than its
``num_workers_soft_limit``; a killed one is replaced at the next check."""

_NIL = {b"", b"\xff" * 4, b"\xff" * 16}


def _messages() -> tuple[Any, Any]:
    """Ray's generated protobuf modules (``common``, ``node_manager``), which have no type stubs."""
    from ray.core.generated import common_pb2, node_manager_pb2

    return common_pb2, node_manager_pb2


def fresh_idle(stats: Iterable[Any]) -> list[int]:
    """The pids of the workers an actor can take as they are: Python task workers (not drivers)
    that hold no actor, belong to no job and never ran a task (``CoreWorkerStats`` messages)."""
    common_pb2, _ = _messages()
    return [
        w.pid
        for w in stats
        if w.worker_type == common_pb2.WORKER
        and w.language == common_pb2.PYTHON
        and bytes(w.actor_id) in _NIL
        and bytes(w.job_id) in _NIL
        and w.num_executed_tasks == 0
        and w.num_running_tasks == 0
    ]


class WarmWorkers:
    """Keeps ``want`` fresh idle workers on this process's Ray node (see the module)."""

    def __init__(self, want: int = 1, every_s: float = CHECK_EVERY_S) -> None:
        self.want = want
        self.every_s = every_s
        self.started = 0
        """Workers this keeper asked Ray for."""
        self._stub: Any = None
        self._task: asyncio.Task[None] | None = None

    def _raylet(self) -> Any:
        if self._stub is None:
            import ray
            from ray._private.grpc_utils import init_grpc_channel
            from ray.core.generated.node_manager_pb2_grpc import NodeManagerServiceStub

            me = ray.get_runtime_context().get_node_id()
            node = next(n for n in ray.nodes() if n["NodeID"] == me)
            address = f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}"
            self._stub = NodeManagerServiceStub(init_grpc_channel(address))
        return self._stub

    def idle(self) -> list[int]:
        """The node's fresh idle workers now (pids)."""
        _, node_manager_pb2 = _messages()
        reply = self._raylet().GetNodeStats(node_manager_pb2.GetNodeStatsRequest(), timeout=10)
        return fresh_idle(reply.core_workers_stats)

    def top_up(self) -> int:
        """Ask Ray for the workers missing now; returns how many were asked for."""
        common_pb2, node_manager_pb2 = _messages()
        missing = self.want - len(self.idle())
        if missing <= 0:
            return 0
        request = node_manager_pb2.PrestartWorkersRequest(
            language=common_pb2.PYTHON, keep_alive_duration_secs=KEEP_ALIVE_S, num_workers=missing
        )
        self._raylet().PrestartWorkers(request, timeout=10)
        self.started += missing
        logger.info("isvc: started %d warm Ray worker(s) for the next replica start", missing)
        return missing

    def start(self) -> None:
        """Run the keeper on this event loop (once); the first check is immediate."""
        from pipelines.shared_work import detached

        if self._task is None or self._task.done():
            self._task = detached(self._run())

    async def _run(self) -> None:
        warned = False
        while True:
            try:
                await asyncio.to_thread(self.top_up)
            except Exception as exc:  # noqa: BLE001 - a cold start is only slower without it
                log = logger.debug if warned else logger.warning
                log(
                    "isvc: cannot keep a warm Ray worker (%s: %s); cold starts take longer",
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                )
                warned = True
            await asyncio.sleep(self.every_s)
