"""The Ray recorder records into ray.util.metrics without a cluster (nothing is exported then)."""

from __future__ import annotations

from pipelines._ray.metrics import ROW_METRICS, RayRecorder, install
from pipelines.dataplane.metrics import ROW_KINDS, STAGES, recorder, set_recorder


def test_install_once_and_record_every_kind() -> None:
    previous = recorder()
    try:
        first = install()
        assert isinstance(first, RayRecorder) and recorder() is first and install() is first
        for stage in STAGES:
            first.observe(stage, "m", 0.002)
        for status in (200, 400, 503):
            first.count("m", "v1_predict", status, 0.003)
        first.count("m", "v1_predict", 200, 0.0)  # a zero latency is fine; the counter gets +1
        for kind in ROW_KINDS:
            first.rows(kind, "m", 0)
            first.rows(kind, "m", 4)
        assert set(ROW_METRICS) == set(ROW_KINDS)
    finally:
        set_recorder(previous)
