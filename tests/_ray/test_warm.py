"""Which of a node's workers an actor can take as they are (pipelines/_ray/warm.py), over the
raylet's own ``CoreWorkerStats`` messages; the keeper itself runs in tests/integration/test_7."""

from __future__ import annotations

from ray.core.generated import common_pb2

from pipelines._ray.warm import fresh_idle

NIL_ACTOR, NIL_JOB = b"\xff" * 16, b"\xff" * 4


def stats(pid: int, **fields: object) -> common_pb2.CoreWorkerStats:
    base: dict[str, object] = dict(
        pid=pid, worker_type=common_pb2.WORKER, language=common_pb2.PYTHON, actor_id=NIL_ACTOR, job_id=NIL_JOB
    )
    return common_pb2.CoreWorkerStats(**{**base, **fields})


def test_only_workers_that_never_ran_anything_count():
    workers = [
        stats(1),  # prestarted, idle: the one a replica can take
        stats(2, actor_id=b"\x01" * 16, job_id=b"\x01\x00\x00\x00"),  # hosts an actor
        stats(3, job_id=b"\x01\x00\x00\x00", num_executed_tasks=3),  # a task worker, bound to a job
        stats(4, worker_type=common_pb2.DRIVER, job_id=b"\x02\x00\x00\x00"),
        stats(5, num_running_tasks=1),
        stats(6, language=common_pb2.JAVA),
        stats(7, actor_id=b"", job_id=b""),  # fields the raylet left empty
    ]
    assert fresh_idle(workers) == [1, 7]
