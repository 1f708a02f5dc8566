"""The TypeScript client (``clients/typescript``) against the churn service on the session cluster.

``serve deploy configs/churn.yaml`` (transformer, predictor, Anchor explainer; already deployed
by test_1, so nothing restarts when the whole tier runs), then the client's
own ``npm test`` (compile with the pinned TypeScript, then ``node --test``) with
``KSERVE_URL`` pointing at it: V1/V2 predictions, binary typed-array inputs and outputs,
metadata, readiness, an explanation and the errors. ``npm ci`` runs only when
``node_modules`` was not installed from the current ``package-lock.json``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess

import pytest

from tests.helpers import ROOT
from tests.integration.cluster import CHURN_DEPLOYMENTS, CHURN_READY, Cluster

CLIENT = ROOT / "clients" / "typescript"
STAMP = CLIENT / "node_modules" / ".isvc-package-lock.sha256"
NODE_MAJOR = 20


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: the TypeScript client needs Node.js >= {NODE_MAJOR} and npm on PATH")
    return found


def run(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=CLIENT, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.fixture(scope="module")
def npm() -> tuple[str, dict[str, str]]:
    """npm, with the client's dev dependencies installed from its lock file."""
    node = tool("node")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    assert major >= NODE_MAJOR, f"node {version}: the TypeScript client needs Node.js >= {NODE_MAJOR}"
    npm = tool("npm")
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
    env.pop("KSERVE_URL", None)
    digest = hashlib.sha256((CLIENT / "package-lock.json").read_bytes()).hexdigest()
    if not STAMP.is_file() or STAMP.read_text().strip() != digest:
        done = run([npm, "ci", "--no-audit", "--prefer-offline", "--ignore-scripts"], env, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        STAMP.write_text(digest)
    return npm, env


def summary(output: str) -> dict[str, int]:
    """node's test runner's closing counts (``ℹ pass 23`` with the spec reporter)."""
    found = re.findall(r"^\S* ?(tests|pass|fail|skipped|cancelled) (\d+)$", output, re.M)
    return {k: int(v) for k, v in found}


def test_typescript_client_against_the_churn_service(
    cluster: Cluster, npm: tuple[str, dict[str, str]]
) -> None:
    cluster.deploy("churn.yaml", CHURN_DEPLOYMENTS, apps=CHURN_READY)
    exe, env = npm
    done = run([exe, "test"], {**env, "KSERVE_URL": cluster.base}, timeout=300)
    output = done.stdout + done.stderr
    counts = summary(output)
    assert done.returncode == 0 and counts.get("fail") == 0, output[-6000:]
    assert "KSERVE_URL is not set" not in output, output[-6000:]  # the live suite ran
    assert counts["tests"] >= 20 and counts["pass"] == counts["tests"], counts
    assert counts["skipped"] == 0 and counts["cancelled"] == 0, counts
