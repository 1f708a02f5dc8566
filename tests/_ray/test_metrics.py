"""The Ray recorder records into ray.util.metrics without a cluster (nothing is exported then)."""

from __future__ import annotations

import asyncio
from typing import Any

from ray.util.metrics import Histogram

from pipelines._ray.metrics import FLUSH_S, ROW_METRICS, RayRecorder, _record_of, install
from pipelines.dataplane.metrics import ROW_KINDS, STAGES, recorder, set_recorder


def test_install_once_and_record_every_kind() -> None:
    previous = recorder()
    try:
        first = install()
        assert isinstance(first, RayRecorder) and recorder() is first and install() is first
        for stage in STAGES:
            first.observe(stage, "m", 0.002)
        for status in (200, 400, 503):
            first.count("m", "v1_predict", status, 0.003)  # no event loop: added to the counter at once
        assert first._pending == {}
        for kind in ROW_KINDS:
            first.rows(kind, "m", 0)
            first.rows(kind, "m", 4)
        assert set(ROW_METRICS) == set(ROW_KINDS)
    finally:
        set_recorder(previous)


async def test_request_counts_are_summed_then_flushed() -> None:
    rec = RayRecorder()
    for _ in range(5):
        rec.count("m", "v2_infer", 200, 0.001)
    rec.count("m", "v2_infer", 400, 0.001)
    assert rec._pending == {("m", "v2_infer", 200): 5, ("m", "v2_infer", 400): 1} and rec._armed
    await asyncio.sleep(FLUSH_S + 0.2)
    assert rec._pending == {} and not rec._armed
    rec.flush()  # nothing pending: no increment of 0 (a Ray Counter refuses it)


def test_histograms_take_the_fast_path_on_this_ray() -> None:
    """Ray 2.60's Histogram keeps its Cython metric in ``_metric``; if an upgrade changes that, the
    recorder falls back to ``observe`` (correct, slower) and this test says so."""
    h = Histogram("isvc_test_fast_path", boundaries=[1.0], tag_keys=("model_name",))
    inner: Any = h._metric
    assert _record_of(h) == inner.record
    _record_of(h)(0.5, {"model_name": "m"})
