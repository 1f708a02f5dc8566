"""What the data plane measures, and where it goes: a :class:`Recorder`, no Ray.

The data plane calls the process's recorder (:func:`recorder`) at a few points: each successful
stage of a request (:class:`~pipelines.dataplane.ModelPipeline`: ``preprocess``, ``predict``,
``postprocess``; explanations: ``explain``), each finished request with its HTTP status
(:func:`~pipelines.dataplane.create_app`), and row counts (``coalesced``: rows per predictor
call sent by the ingress :class:`~pipelines.batching.Coalescer`; ``predictor_batch``: rows per
model call in a predictor replica). The default records nothing; a replica installs one that
exports (``pipelines._ray.metrics``: Ray's metrics endpoint, KServe's metric names).

Example::

    class Printer:
        def observe(self, stage, model, seconds): print(stage, model, seconds)
        def count(self, model, endpoint, status, seconds): print(model, endpoint, status)
        def rows(self, kind, model, n): print(kind, model, n)

    previous = set_recorder(Printer())
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["STAGES", "ROW_KINDS", "NoRecorder", "Recorder", "recorder", "set_recorder"]

STAGES = ("preprocess", "predict", "postprocess", "explain")
"""The stages :meth:`Recorder.observe` is called with (KServe's ``request_<stage>_seconds``)."""

ROW_KINDS = ("coalesced", "predictor_batch")
"""The kinds :meth:`Recorder.rows` is called with."""


class Recorder(Protocol):
    """Where measurements go. Called on the request path: keep each call cheap, never raise."""

    def observe(self, stage: str, model: str, seconds: float) -> None:
        """One successful ``stage`` (one of :data:`STAGES`) of a request to ``model`` took ``seconds``."""

    def count(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        """One request finished: its route (``v1_predict``, ``v2_infer``, ...), HTTP status and
        latency. ``model`` is ``""`` on routes without a model and for names that are not served."""

    def rows(self, kind: str, model: str, n: int) -> None:
        """One predictor call of ``kind`` (one of :data:`ROW_KINDS`) carried ``n`` rows."""


class NoRecorder:
    """The default: records nothing."""

    def observe(self, stage: str, model: str, seconds: float) -> None:
        pass

    def count(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        pass

    def rows(self, kind: str, model: str, n: int) -> None:
        pass


_current: Recorder = NoRecorder()


def recorder() -> Recorder:
    """This process's recorder (a :class:`NoRecorder` until one is set)."""
    return _current


def set_recorder(new: Recorder | None) -> Recorder:
    """Make ``new`` this process's recorder (``None``: record nothing); returns the previous one."""
    global _current
    previous, _current = _current, new if new is not None else NoRecorder()
    return previous
