"""The seed's ``k8s/sklearn-isvc.yaml``, unchanged, with ``isvc serve``: its model in a real S3
server (moto) in the bucket it names, the cluster's S3 settings as a KServe pod would have them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import boto3
import httpx
import joblib
import numpy as np

from tests.helpers import ROW, SPECS
from tests.integration.cluster import BIN, Cluster

SEED = SPECS / "good" / "seed_sklearn_churn.yaml"


def test_seed_sklearn_isvc_runs_unchanged(
    cluster: Cluster, s3_server: dict[str, str], churn_artifacts: Path
) -> None:
    assert "s3://my-models/churn/v1/" in SEED.read_text()
    s3 = boto3.client("s3", endpoint_url=s3_server["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket="my-models")
    s3.upload_file(str(churn_artifacts / "predictor" / "model.joblib"), "my-models", "churn/v1/model.joblib")

    log = cluster.cwd / "isvc-serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "isvc"), "serve", "--port", str(cluster.http_port), str(SEED)],
            cwd=cluster.cwd,
            env=cluster.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C reaches serve run
        )
    try:
        deadline = time.monotonic() + 240
        rows = [list(ROW.values()), [25, 2000, 20.0, 0, 1]]
        last = ""
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"isvc serve exited {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:  # the seed has no transformer: its metadata lists the sklearn model's own tensors
                got = httpx.get(f"{cluster.base}/v2/models/churn-classifier", timeout=5)
                last = f"{got.status_code} {got.text[:300]}"
                meta = got.json()
                if meta.get("inputs", [{}])[0].get("name") == "input-0":
                    r = httpx.post(
                        f"{cluster.base}/v1/models/churn-classifier:predict",
                        json={"instances": rows},
                        timeout=5,
                    )
                    if r.status_code == 200:
                        break
            except (httpx.HTTPError, ValueError, IndexError) as exc:
                last = f"{last} ({exc!r})" if isinstance(exc, ValueError) else repr(exc)
            assert time.monotonic() < deadline, f"last answer: {last}\n" + log.read_text()[-4000:]
            time.sleep(2)
        model = joblib.load(churn_artifacts / "predictor" / "model.joblib")
        assert r.json() == {"predictions": model.predict(np.array(rows)).tolist()}
        meta = httpx.get(f"{cluster.base}/v2/models/churn-classifier").json()
        assert meta["platform"] == "sklearn" and meta["inputs"][0]["shape"] == [-1, 5]
        assert f"{BIN / 'serve'} run " in log.read_text()  # isvc serve exec'd Ray's own serve run
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
