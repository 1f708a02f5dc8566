"""``isvc apply / get / delete / predict`` over an in-memory dashboard: kubectl's table and
KServe's status, exit statuses 0 / 1 / 2 / 3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.cli import main
from pipelines.cli.control import format_age, table_rows
from pipelines.control.dashboard import DashboardError
from tests.control.conftest import FakeDashboard


def seed_file(
    tmp_path: Path, name: str = "churn-classifier", percent: int | None = None, uri: str = "v1"
) -> Path:
    pred: dict[str, Any] = {"sklearn": {"storageUri": f"s3://my-models/churn/{uri}/"}}
    if percent is not None:
        pred["canaryTrafficPercent"] = percent
    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "ml-serving"},
        "spec": {"predictor": pred},
    }
    path = tmp_path / f"{name}-{uri}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_apply_get_delete(
    fake_dashboard: FakeDashboard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "apply", str(seed_file(tmp_path)), "--timeout", "5", "--port", "8123")
    assert code == 0, err
    assert "inferenceservice.serving.kserve.io/churn-classifier created" in out
    assert "http://127.0.0.1:8123/v1/models/churn-classifier" in out  # the table after Ready
    assert fake_dashboard.puts[-1]["http_options"] == {"host": "0.0.0.0", "port": 8123}
    code, out, _ = run(capsys, "apply", str(seed_file(tmp_path, percent=20, uri="v2")), "--no-wait")
    assert code == 0 and "configured" in out and "prev       80%" in out
    code, out, _ = run(capsys, "get")
    assert code == 0
    head, row = out.splitlines()[:2]
    assert head.split() == ["NAMESPACE", "NAME", "URL", "READY", "PREV", "LATEST", "AGE"] + [
        "PREDICTOR",
        "INGRESS",
        "EXPLAINER",
    ]
    assert row.split()[:6] == [
        "ml-serving",
        "churn-classifier",
        "http://127.0.0.1:8123/v1/models/churn-classifier",
    ] + [
        "True",
        "80",
        "20",
    ]
    assert row.split()[-3:] == ["1+1", "1", "-"]
    code, out, _ = run(capsys, "get", "churn-classifier", "-n", "ml-serving", "-o", "json")
    obj = json.loads(out)
    assert obj["kind"] == "InferenceService" and obj["status"]["url"].endswith("/v1/models/churn-classifier")
    assert [t["percent"] for t in obj["status"]["components"]["predictor"]["traffic"]] == [80, 20]
    code, out, _ = run(capsys, "get", "-o", "yaml")
    assert yaml.safe_load(out)["items"][0]["metadata"]["name"] == "churn-classifier"
    code, out, _ = run(capsys, "get", "-o", "wide", "-n", "ml-serving")
    assert "PREVROLLEDOUTREVISION" in out and "NAMESPACE" not in out
    code, out, _ = run(capsys, "delete", "churn-classifier")
    assert code == 0 and "deleted" in out
    code, _, err = run(capsys, "get", "churn-classifier")
    assert code == 1 and "NotFound" in err
    code, _, err = run(capsys, "delete", "churn-classifier")
    assert code == 1


def test_two_services_in_one_file(fake_dashboard: FakeDashboard, tmp_path: Path, capsys: Any) -> None:
    docs = [yaml.safe_load(seed_file(tmp_path, n).read_text()) for n in ("a", "b")]
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    code, out, err = run(capsys, "apply", str(path), "--no-wait")
    assert code == 0, err
    assert fake_dashboard.config is not None
    prefixes = {a["name"]: a["route_prefix"] for a in fake_dashboard.config["applications"]}
    assert prefixes["ml-serving-a"] == "/" and prefixes["ml-serving-b"] == "/ml-serving/b"
    code, out, _ = run(capsys, "get", "b", "-o", "json")
    assert json.loads(out)["status"]["url"] == "http://127.0.0.1:8000/ml-serving/b/v1/models/b"


def test_exit_statuses(fake_dashboard: FakeDashboard, tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("metadata: {name: x}\nspec: {predictor: {sklearn: {storageUrl: s3://b/}}}\n")
    code, _, err = run(capsys, "apply", str(bad))
    assert code == 1 and "storageUri" in err
    from pipelines.control import plane

    monkeypatch.setattr(plane.ControlPlane, "ingress_info", lambda self, base, svc: None)
    code, _, err = run(capsys, "apply", str(seed_file(tmp_path)), "--timeout", "1.5")
    assert code == 3 and "TrafficNotApplied" in err

    def refuse() -> Any:
        raise DashboardError("cannot reach the Ray dashboard at http://127.0.0.1:8265: refused")

    monkeypatch.setattr(fake_dashboard, "details", refuse)
    code, _, err = run(capsys, "get")
    assert code == 2 and "cannot reach" in err
    code, _, err = run(capsys, "predict", "churn-classifier", "--data", "{not json")
    assert code == 1 and "not JSON" in err


def test_predict_posts_to_the_service(
    fake_dashboard: FakeDashboard, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    import httpx

    run(capsys, "apply", str(seed_file(tmp_path)), "--no-wait")
    posted: list[tuple[str, bytes]] = []

    def post(url: str, content: bytes, **kw: Any) -> httpx.Response:
        posted.append((url, content))
        return httpx.Response(200, json={"predictions": [1]})

    monkeypatch.setattr(httpx, "post", post)
    body = tmp_path / "row.json"
    body.write_text('{"instances": [[1, 2, 3, 4, 5]]}')
    code, out, _ = run(capsys, "predict", "churn-classifier", "--data", f"@{body}")
    assert code == 0 and json.loads(out) == {"predictions": [1]}
    run(capsys, "predict", "churn-classifier", "--v2", "--data", '{"inputs": []}')
    run(capsys, "explain", "churn-classifier", "--data", '{"instances": []}')
    assert [u for u, _ in posted] == [
        "http://127.0.0.1:8000/v1/models/churn-classifier:predict",
        "http://127.0.0.1:8000/v2/models/churn-classifier/infer",
        "http://127.0.0.1:8000/v1/models/churn-classifier:explain",
    ]
    monkeypatch.setattr(httpx, "post", lambda url, **kw: httpx.Response(503, json={"error": "not ready"}))
    code, _, err = run(capsys, "predict", "churn-classifier", "--data", "{}")
    assert code == 3 and "not ready" in err


def test_table_and_age_formatting() -> None:
    assert format_age("2026-01-01T00:00:00Z", now=1767225600 + 45) == "45s"
    assert format_age("2026-01-01T00:00:00Z", now=1767225600 + 3 * 3600 + 240) == "3h4m"
    assert format_age("2026-01-01T00:00:00Z", now=1767225600 + 2 * 86400 + 3 * 3600) == "2d3h"
    assert format_age(None) == "<unknown>"
    obj = {
        "metadata": {"name": "m", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {
            "url": "u",
            "conditions": [{"type": "Ready", "status": "False"}],
            "components": {
                "predictor": {
                    "traffic": [
                        {"tag": "latest", "revisionName": "r", "percent": 100, "latestRevision": True}
                    ]
                }
            },  # fmt: skip
            "replicas": {"predictor": {"r": 2}, "ingress": 1, "explainer": 0},
        },
    }
    rows = table_rows([obj], namespaces=False)
    assert rows[1][:5] == ["m", "u", "False", "", "100"] and rows[1][-3:] == ["2", "1", "0"]
