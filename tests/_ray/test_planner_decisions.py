"""What build_plan decides once for the whole service (the ingress, deployment names, the
version and the body limit), the deployment options every replica gets, and the runtime table."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from pipelines._ray import deployment_options
from pipelines.errors import SpecError
from pipelines.plan import DEFAULT_MAX_BODY_BYTES, Resources, ServicePlan, build_plan
from pipelines.settings import GRPC_LIMIT_VAR
from pipelines.spec import parse_isvc
from predictors.registry import RUNTIME_ALIASES, load_predictor_class
from tests.helpers import ROOT

SKLEARN = {
    "sklearn": {
        "storageUri": "s3://b/m/",
        "resources": {"requests": {"cpu": "1500m", "memory": "1Gi"}, "limits": {"cpu": "2"}},
    }
}
TRANSFORMER = {
    "custom": {
        "class": "transformers_.churn:ChurnTransformer",
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
    }
}


def plan_of(
    annotations: dict[str, str] | None = None,
    predictor: dict[str, Any] | None = None,
    transformer: dict[str, Any] | None = None,
) -> ServicePlan:
    spec: dict[str, Any] = {"predictor": predictor or SKLEARN}
    if transformer is not None:
        spec["transformer"] = transformer
    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m", "namespace": "ns", "annotations": annotations or {}},
        "spec": spec,
    }
    return build_plan(parse_isvc(doc))


def problems_of(annotations: dict[str, str]) -> list[str]:
    with pytest.raises(SpecError) as info:
        plan_of(annotations)
    return info.value.problems


def read_serve_env() -> dict[str, str]:
    """pipelines/serve.env parsed here, independently of pipelines.settings."""
    out = {}
    for line in (ROOT / "pipelines" / "serve.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


# ---------------------------------------------------------------------------- ingress


def test_ingress_without_transformer_never_scales_to_zero():
    plan = plan_of({"autoscaling.knative.dev/minScale": "0", "autoscaling.knative.dev/maxScale": "3"})
    assert plan.transformer is None
    assert plan.predictor.scaling.min_replicas == 0
    assert plan.ingress.scaling.min_replicas == 1
    assert plan.ingress.scaling.max_replicas == 3
    assert not plan.ingress.collocated and not plan.collocate


def test_ingress_with_transformer_scales_and_sizes_like_it():
    plan = plan_of(transformer={**TRANSFORMER, "minReplicas": 2, "maxReplicas": 4})
    assert plan.transformer is not None
    assert plan.ingress.scaling == plan.transformer.scaling
    assert (plan.ingress.scaling.min_replicas, plan.ingress.scaling.max_replicas) == (2, 4)
    assert plan.ingress.resources == plan.transformer.resources == Resources(0.25, None, 256 * 2**20)


def test_collocate_gives_the_ingress_the_predictor_resources():
    plan = plan_of({"isvc.dev/collocate": "true"}, transformer=TRANSFORMER)
    assert plan.ingress.collocated and plan.collocate
    assert plan.ingress.resources == plan.predictor.resources
    assert plan.ingress.resources == Resources(num_cpus=1.5, num_gpus=None, memory_bytes=2**30)
    assert not plan_of({"isvc.dev/collocate": "false"}).ingress.collocated


def test_collocate_bad_value_is_a_spec_error():
    (problem,) = problems_of({"isvc.dev/collocate": "yes"})
    assert 'metadata.annotations["isvc.dev/collocate"]' in problem


def test_deployment_names():
    plan = plan_of(
        predictor={
            **SKLEARN,
            "canaryTrafficPercent": 10,
            "newModel": {"sklearn": {"storageUri": "s3://b/m2/"}},
        }
    )
    assert plan.ingress.name == "ingress"
    assert plan.predictor.deployment == "predictor"
    assert plan.canary is not None and plan.canary.deployment == "predictor-canary"
    assert [p.deployment for p in plan.predictors()] == ["predictor", "predictor-canary"]
    assert plan.canary_traffic_percent == 10


# ---------------------------------------------------------------------------- version


def test_model_version_annotation():
    assert plan_of().version == "1"
    assert plan_of({"isvc.dev/model-version": "2024-01"}).version == "2024-01"


@pytest.mark.parametrize("version", ["v1/beta", "   "])
def test_bad_model_version_names_the_annotation(version: str):
    (problem,) = problems_of({"isvc.dev/model-version": version})
    assert problem.startswith('metadata.annotations["isvc.dev/model-version"]')


# ---------------------------------------------------------------------------- body limit


def test_max_body_size_annotation():
    assert plan_of().max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert plan_of({"isvc.dev/max-body-size": "128Mi"}).max_body_bytes == 128 * 2**20
    assert plan_of({"isvc.dev/max-body-size": "100000"}).max_body_bytes == 100000


@pytest.mark.parametrize("size", ["lots", "0"])
def test_bad_max_body_size_names_the_annotation(size: str):
    (problem,) = problems_of({"isvc.dev/max-body-size": size})
    assert problem.startswith('metadata.annotations["isvc.dev/max-body-size"]')
    assert repr(size) in problem


def test_every_bad_annotation_is_reported_at_once():
    problems = problems_of({"isvc.dev/max-body-size": "lots", "isvc.dev/model-version": "a/b"})
    assert len(problems) == 2
    assert any("isvc.dev/max-body-size" in p for p in problems)
    assert any("isvc.dev/model-version" in p for p in problems)


# ---------------------------------------------------------------------------- deployment options


def test_deployment_options_carry_the_grpc_limit_from_serve_env():
    plan = plan_of()
    opts = deployment_options(plan.predictor.scaling, plan.predictor.resources)
    env_vars = opts["ray_actor_options"]["runtime_env"]["env_vars"]
    assert GRPC_LIMIT_VAR == "RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH"
    assert env_vars == {GRPC_LIMIT_VAR: read_serve_env()[GRPC_LIMIT_VAR]}


def test_deployment_options_spec_env_is_added():
    predictor = {"sklearn": {**SKLEARN["sklearn"], "env": [{"name": "OMP_NUM_THREADS", "value": "2"}]}}
    plan = plan_of(predictor=predictor)
    assert plan.predictor.env == {"OMP_NUM_THREADS": "2"}
    opts = deployment_options(plan.predictor.scaling, plan.predictor.resources, env=plan.predictor.env)
    env_vars = opts["ray_actor_options"]["runtime_env"]["env_vars"]
    assert env_vars == {GRPC_LIMIT_VAR: read_serve_env()[GRPC_LIMIT_VAR], "OMP_NUM_THREADS": "2"}
    assert opts["ray_actor_options"]["num_cpus"] == 1.5


# ---------------------------------------------------------------------------- runtimes


@pytest.mark.parametrize("alias", sorted(RUNTIME_ALIASES))
def test_every_runtime_alias_imports(alias: str):
    cls = load_predictor_class(alias)
    assert inspect.isclass(cls)
    assert cls is load_predictor_class(RUNTIME_ALIASES[alias])
    assert callable(getattr(cls, "load", None)) and callable(getattr(cls, "predict", None))


def test_a_replica_in_a_cluster_that_has_the_limit_gets_no_runtime_env(monkeypatch: pytest.MonkeyPatch):
    """No ``runtime_env`` of its own, so Ray may start it on a warm worker (pipelines/_ray/warm.py);
    the replica inherits the limit from the node. Container ``env`` still needs a runtime_env."""
    import ray

    plan = plan_of()
    monkeypatch.setattr(ray, "is_initialized", lambda: True)  # as inside Serve's build task
    monkeypatch.setenv(GRPC_LIMIT_VAR, read_serve_env()[GRPC_LIMIT_VAR])
    opts = deployment_options(plan.predictor.scaling, plan.predictor.resources)
    assert "runtime_env" not in opts["ray_actor_options"]
    with_env = deployment_options(plan.predictor.scaling, plan.predictor.resources, env={"A": "1"})
    assert with_env["ray_actor_options"]["runtime_env"]["env_vars"]["A"] == "1"
    monkeypatch.setenv(GRPC_LIMIT_VAR, "4194304")  # a cluster started with Ray's own limit
    opts = deployment_options(plan.predictor.scaling, plan.predictor.resources)
    assert opts["ray_actor_options"]["runtime_env"]["env_vars"] == {
        GRPC_LIMIT_VAR: read_serve_env()[GRPC_LIMIT_VAR]
    }
