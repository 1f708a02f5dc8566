"""The seed's ``scripts/manage_isvc.py`` (KServe's Python SDK, its imports changed to
``pipelines.sdk``) against the session's Ray cluster, its models in the moto S3 server under
the keys it names (``s3://my-models/churn/v1/``, ``…/v2/``): its ``__main__`` creates the
service and waits for Ready; ``rollout_canary`` patches in a 20 % canary, and ``isvc get -o
json`` shows the traffic prev 80 / latest 20. Beside it, ``isvc apply`` deploys the churn
service (transformer + predictor) in another namespace — the first service is kept, the second
is routed under ``/cli-test/churn-classifier`` — ``isvc get`` shows both Ready, ``isvc predict``
answers, ``isvc delete`` removes only its own applications."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import joblib
import numpy as np
import pytest
import yaml

from pipelines.control import Dashboard
from pipelines.control.plane import ControlPlane
from tests.helpers import ROOT, ROW
from tests.integration.cluster import Cluster

SCRIPT = ROOT / "scripts" / "manage_isvc.py"
NAME, SEED_NS, CLI_NS = "churn-classifier", "ml-serving", "cli-test"
ROWS = [list(ROW.values()), [25, 2000, 20.0, 0, 1]]


def upload_models(s3_server: dict[str, str], churn_artifacts: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_server["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    try:
        s3.create_bucket(Bucket="my-models")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass  # another test of the session made it
    s3.upload_file(str(churn_artifacts / "predictor" / "model.joblib"), "my-models", "churn/v1/model.joblib")
    s3.upload_file(
        str(churn_artifacts / "predictor-v2" / "model.joblib"), "my-models", "churn/v2/model.joblib"
    )


def python(cluster: Cluster, code: str) -> subprocess.Popen[str]:
    """Python in a fresh process with the cluster's client env (KServeClient() finds it from
    there); stdout piped, stderr to ``<cwd>/manage-isvc.err`` (never a full pipe)."""
    env = {
        **cluster.env,
        "ISVC_HTTP_PORT": str(cluster.http_port),  # where Serve listens if this starts it
        "PYTHONUNBUFFERED": "1",
    }
    with open(cluster.cwd / "manage-isvc.err", "a") as err:
        return subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=cluster.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def err_tail(cluster: Cluster) -> str:
    return (cluster.cwd / "manage-isvc.err").read_text()[-4000:]


def isvc(cluster: Cluster, *args: str, timeout: float = 200) -> subprocess.CompletedProcess[str]:
    return cluster.cli("isvc", *args, timeout=timeout)


def get_json(cluster: Cluster, name: str, namespace: str) -> dict[str, Any]:
    """``isvc get NAME -n NS -o json``."""
    done = isvc(cluster, "get", name, "-n", namespace, "-o", "json", timeout=60)
    assert done.returncode == 0, done.stderr
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def status(cluster: Cluster, name: str, namespace: str) -> dict[str, Any]:
    """The same object, read in this process (what ``isvc get`` and ``KServeClient.get`` build)."""
    control = plane(cluster)
    try:
        return control.get(name, namespace)
    finally:
        control.close()


def plane(cluster: Cluster) -> ControlPlane:
    return ControlPlane(Dashboard(cluster.env["RAY_DASHBOARD_ADDRESS"]))


@pytest.fixture
def clean(cluster: Cluster) -> Iterator[None]:
    """Neither service left over from before (create is a 409 then); their apps deleted after."""

    def delete_ours() -> None:
        control = plane(cluster)
        for obj in control.services():
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            if key in ((SEED_NS, NAME), (CLI_NS, NAME)):
                control.delete(key[1], key[0])
        control.close()

    delete_ours()
    yield
    delete_ours()


def churn_doc(namespace: str, explainer: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "transformer": {
                "custom": {
                    "class": "transformers_.churn:ChurnTransformer",
                    "storageUri": "artifacts/churn/transformer",
                    "resources": {"requests": {"cpu": "250m"}},
                }
            },
            "predictor": {
                "sklearn": {
                    "storageUri": "artifacts/churn/predictor",
                    "args": ["--method=predict_proba"],
                    "resources": {"requests": {"cpu": "250m"}},
                }
            },
        },
    }
    if explainer:  # on its own route, under the service's prefix (the routed layout)
        doc["spec"]["explainer"] = {
            "shap": {
                "type": "KernelShap",
                "storageUri": "artifacts/churn/explainer",
                "config": {"background_size": "20"},
                "resources": {"requests": {"cpu": "250m"}},
            }
        }
    return doc


def test_seed_manage_isvc_script_then_isvc_apply_get_delete(
    cluster: Cluster, s3_server: dict[str, str], churn_artifacts: Path, clean: None
) -> None:
    upload_models(s3_server, churn_artifacts)
    v1 = joblib.load(churn_artifacts / "predictor" / "model.joblib")
    v2 = joblib.load(churn_artifacts / "predictor-v2" / "model.joblib")
    by_model = {"v1": v1.predict(np.array(ROWS)).tolist(), "v2": v2.predict(np.array(ROWS)).tolist()}

    # 1. the script's __main__: create_sklearn_service, then wait_for_ready (KServe's 10 s polls)
    seed = python(cluster, f"import runpy; runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    try:
        created = f"Created InferenceService: {NAME} in {SEED_NS}"
        assert seed.stdout is not None
        first = seed.stdout.readline()  # printed once create() has returned
        assert first.strip() == created, first + seed.communicate(timeout=30)[0] + err_tail(cluster)

        # 2. meanwhile (create's PUT is done; the script only reads now) isvc apply, in another
        #    namespace: the churn service (transformer + predictor); the seed's service is kept
        path = cluster.cwd / "cli-churn.yaml"
        path.write_text(yaml.safe_dump(churn_doc(CLI_NS, explainer=True)))
        done = isvc(cluster, "apply", str(path), "--timeout", "180")
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        assert f"inferenceservice.serving.kserve.io/{NAME} created (namespace {CLI_NS})" in done.stdout
        out, _ = seed.communicate(timeout=240)
    finally:
        if seed.poll() is None:
            seed.kill()
            seed.wait()
    assert seed.returncode == 0, out + err_tail(cluster)
    out = first + out
    obj = get_json(cluster, NAME, SEED_NS)
    url = obj["status"]["url"]
    assert f"Ready: {url}" in out and url.endswith(f"/v1/models/{NAME}")
    assert obj["spec"]["predictor"]["serviceAccountName"] == "kserve-s3-sa"  # the document as created
    r = httpx.post(f"{url}:predict", json={"instances": ROWS}, timeout=30)
    assert r.status_code == 200 and r.json() == {"predictions": by_model["v1"]}, r.text

    # 3. isvc get: both Ready, each with its URL (the second under its own route prefix)
    done = isvc(cluster, "get", timeout=60)
    assert done.returncode == 0, done.stderr
    rows = {tuple(line.split()[:2]): line.split() for line in done.stdout.splitlines()[1:]}
    cli_row, seed_row = rows[(CLI_NS, NAME)], rows[(SEED_NS, NAME)]
    cli_url = f"{cluster.base}/{CLI_NS}/{NAME}/v1/models/{NAME}"
    assert cli_row[2:5] == [cli_url, "True", "100"], cli_row  # PREV is blank without a canary
    assert seed_row[2:5] == [url, "True", "100"], seed_row
    cli = status(cluster, NAME, CLI_NS)
    assert cli["status"]["url"] == cli_url
    assert {c["type"] for c in cli["status"]["conditions"]} >= {"PredictorReady", "TransformerReady", "Ready"}
    done = isvc(
        cluster, "predict", NAME, "-n", CLI_NS, "--data", json.dumps({"instances": [ROW]}), timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["predictions"][0]["risk_tier"] in ("LOW", "MEDIUM", "HIGH")
    # its explainer: an application on /cli-test/{NAME}/v1/models/{NAME}:explain, straight from the
    # proxy; the V2 {NAME}-explainer goes through the ingress, which reaches it by name
    with Dashboard(cluster.env["RAY_DASHBOARD_ADDRESS"]) as dash:
        routes = {a.get("route_prefix") for a in dash.details()["applications"].values()}
    assert f"/{CLI_NS}/{NAME}/v1/models/{NAME}:explain" in routes, routes
    r = httpx.post(f"{cli_url}:explain", json={"instances": [ROW, ROW]}, timeout=60)
    assert r.status_code == 200, r.text
    for e in r.json()["explanations"]:
        assert np.isclose(np.sum(e["shap_values"], axis=0)[1] + e["expected_value"][1], e["output"][1]), e
    v2 = httpx.post(
        f"{cluster.base}/{CLI_NS}/{NAME}/v2/models/{NAME}-explainer/infer",
        json={
            "inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 5], "data": list(ROW.values())}]
        },
        timeout=60,
    )
    assert v2.status_code == 200 and v2.json()["outputs"][0]["name"] == "explanation", v2.text

    # 4. rollout_canary, called as the script defines it: 20 % to v2, v1 kept at 80 %
    canary = python(
        cluster,
        f"import runpy; m = runpy.run_path({str(SCRIPT)!r}); "
        f"m['rollout_canary']({NAME!r}, {SEED_NS!r}, 's3://my-models/churn/v2/'); "
        "from pipelines.sdk import KServeClient; "
        f"KServeClient().wait_isvc_ready({NAME!r}, {SEED_NS!r}, timeout_seconds=150, polling_interval=1)",
    )
    out, _ = canary.communicate(timeout=200)
    assert canary.returncode == 0, out + err_tail(cluster)
    assert f"Canary rollout: 20% to new model for {NAME}" in out
    obj = get_json(cluster, NAME, SEED_NS)
    traffic = obj["status"]["components"]["predictor"]["traffic"]
    assert [(t["tag"], t["percent"], t["latestRevision"]) for t in traffic] == [
        ("prev", 80, False),
        ("latest", 20, True),
    ]
    ready = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert ready["Ready"] == ready["PredictorReady"] == "True", obj["status"]["conditions"]
    assert obj["spec"]["predictor"]["newModel"] == {"sklearn": {"storageUri": "s3://my-models/churn/v2/"}}
    assert obj["metadata"]["generation"] == 2
    for tag, model in (("prev", "v1"), ("latest", "v2")):  # each revision answers with its model
        r = httpx.post(f"{url}:predict", json={"instances": ROWS}, headers={"isvc-tag": tag}, timeout=30)
        assert r.status_code == 200 and r.json() == {"predictions": by_model[model]}, (tag, r.text)

    # 5. isvc delete: only the cli-test service's applications go
    done = isvc(cluster, "delete", NAME, "-n", CLI_NS, "--no-wait", timeout=60)
    assert done.returncode == 0, done.stderr
    done = isvc(cluster, "get", NAME, "-n", CLI_NS, timeout=60)
    assert done.returncode == 1 and "NotFound" in done.stderr
    obj = status(cluster, NAME, SEED_NS)
    assert {c["type"]: c["status"] for c in obj["status"]["conditions"]}["Ready"] == "True"
    assert httpx.post(f"{url}:predict", json={"instances": ROWS}, timeout=30).status_code == 200
