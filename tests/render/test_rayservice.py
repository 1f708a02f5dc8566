"""``pipelines.render.rayservice``: Serve config + plans → a KubeRay RayService, checked against the CRD.

The CRD's OpenAPI v3 schema (tests/fixtures/kuberay) is applied with ``jsonschema``. Because it
never says ``additionalProperties: false``, :func:`unknown_keys` also walks each manifest and
rejects every key that the schema does not name.
"""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipelines.cli.commands import load_file, render_serve_config
from pipelines.plan import ServicePlan, build_plan
from pipelines.render import PodShape, rayservice, rayservice_name, rayservice_yaml
from pipelines.settings import SERVE_ENV
from pipelines.spec import isvc_from_serve_args, load_isvc

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kuberay"
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _crd_schema() -> dict[str, Any]:
    """The v1 openAPIV3Schema: the whole CRD when it was saved here, else the kept subset."""
    full = FIXTURES / "ray.io_rayservices.yaml"
    crd = yaml.safe_load((full if full.exists() else FIXTURES / "ray.io_rayservices.subset.yaml").read_text())
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["names"]["kind"] == "RayService"
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema: dict[str, Any] = v1["schema"]["openAPIV3Schema"]
    return schema


SCHEMA = _crd_schema()


def unknown_keys(instance: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Every key of ``instance`` that ``schema`` does not name.

    An object schema with ``properties`` is treated as closed. ``additionalProperties`` and
    ``items`` are followed. Reaching a subtree that the fixture cut (``x-isvc-pruned``) is an
    error too, because nothing inside it would be checked.
    """
    if schema.get("x-isvc-pruned"):
        return [f"{path or '/'}: not in the kept CRD subset (tests/fixtures/kuberay/README.md)"]
    found: list[str] = []
    if isinstance(instance, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            where = f"{path}.{key}" if path else key
            if props is not None:
                if key in props:
                    found += unknown_keys(value, props[key], where)
                else:
                    found.append(f"{where}: unknown field (the schema has {sorted(props)})")
            elif isinstance(extra, dict):
                found += unknown_keys(value, extra, where)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(instance):
            found += unknown_keys(item, schema["items"], f"{path}[{i}]")
    return found


def check(manifest: dict[str, Any]) -> None:
    """The manifest is valid under the CRD schema and names no field the schema lacks."""
    jsonschema.Draft7Validator(SCHEMA).validate(manifest)
    assert unknown_keys(manifest, SCHEMA) == []
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayService"
    name = manifest["metadata"]["name"]
    assert len(name) <= 47 and DNS1035.match(name), name


def render(path: str) -> tuple[dict[str, Any], list[ServicePlan], dict[str, Any]]:
    """The Serve config of a file (as ``isvc render`` makes it), its plans, and their RayService."""
    entries = load_file(path)
    config = render_serve_config(entries)
    plans = [build_plan(isvc) for _, isvc in entries]
    return config, plans, rayservice(config, plans)


def plan_of(doc: dict[str, Any]) -> ServicePlan:
    return build_plan(isvc_from_serve_args(doc))


def one_app_config(*plans: ServicePlan) -> dict[str, Any]:
    apps = [{"name": p.app_name, "route_prefix": None, "import_path": "pipelines.app:build"} for p in plans]
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": 8000},
        "applications": apps,
    }


def groups(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["groupName"]: g for g in manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"]}


def containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = manifest["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
    return [c for pod in pods for c in pod["template"]["spec"]["containers"]]


def test_cpu_only_churn_has_no_gpu_group() -> None:
    _, plans, manifest = render("configs/isvc/churn.yaml")
    check(manifest)
    assert manifest["metadata"]["name"] == "churn-classifier"
    assert manifest["metadata"]["namespace"] == "ml-serving"
    assert list(groups(manifest)) == ["cpu"]
    assert groups(manifest)["cpu"]["labels"] == {"isvc.dev/pool": "cpu"}
    assert "nvidia.com/gpu" not in yaml.safe_dump(manifest["spec"]["rayClusterConfig"])


def test_gpu_plan_gets_a_gpu_group() -> None:
    plan = build_plan(load_isvc("configs/isvc/sentiment.yaml"))
    assert plan.predictor.resources.num_gpus == 1.0
    manifest = rayservice(one_app_config(plan), [plan])
    check(manifest)
    gpu = groups(manifest)["gpu"]
    (container,) = gpu["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["labels"] == {"isvc.dev/pool": "gpu"}  # a Ray node label: CPU replicas select !gpu
    assert "labels" not in gpu["rayStartParams"]  # KubeRay rejects rayStartParams['labels']
    assert gpu["template"]["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert (gpu["minReplicas"], gpu["maxReplicas"]) == (1, 1)
    cpu = groups(manifest)["cpu"]  # the ingress
    assert "nvidia.com/gpu" not in cpu["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_serve_config_round_trips() -> None:
    config, _, manifest = render("configs/isvc/churn.yaml")
    assert yaml.safe_load(manifest["spec"]["serveConfigV2"]) == config
    assert yaml.safe_load(rayservice_yaml(manifest)) == manifest


def test_several_apps_and_null_route_prefix_round_trip() -> None:
    churn = build_plan(load_isvc("configs/isvc/churn.yaml"))
    sentiment = build_plan(load_isvc("configs/isvc/sentiment.yaml"))
    config = one_app_config(churn, sentiment)
    config["applications"][0]["route_prefix"] = "/"
    manifest = rayservice(config, [churn, sentiment])
    check(manifest)
    back = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    assert back == config and back["applications"][1]["route_prefix"] is None
    assert manifest["metadata"]["name"] == "churn-classifier-sentiment-service"
    assert set(groups(manifest)) == {"cpu", "gpu"}


def test_serve_config_v2_parses_as_a_serve_deploy_config() -> None:
    from ray.serve.schema import ServeDeploySchema

    config, _, manifest = render("configs/isvc/churn.yaml")
    parsed = ServeDeploySchema.parse_obj(yaml.safe_load(manifest["spec"]["serveConfigV2"]))
    assert [a.name for a in parsed.applications] == [a["name"] for a in config["applications"]]


def test_serve_env_on_head_and_every_worker() -> None:
    plan = build_plan(load_isvc("configs/isvc/sentiment.yaml"))
    manifest = rayservice(one_app_config(plan), [plan], env={"EXTRA": "x"})
    found = containers(manifest)
    assert len(found) == 3  # head, cpu, gpu
    for container in found:
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
        assert {k: env[k] for k in SERVE_ENV} == SERVE_ENV
        assert env["EXTRA"] == "x"
        assert {"containerPort": 8000, "name": "serve"} in container["ports"]


def test_ray_start_params_are_strings() -> None:
    plan = build_plan(load_isvc("configs/isvc/sentiment.yaml"))
    cluster = rayservice(one_app_config(plan), [plan])["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]["rayStartParams"]
    assert head == {"dashboard-host": "0.0.0.0", "num-cpus": "0"}
    for params in [head] + [g["rayStartParams"] for g in cluster["workerGroupSpecs"]]:
        assert all(isinstance(v, str) for v in params.values()), params


def test_long_name_is_cut_to_47_with_a_hash() -> None:
    doc = yaml.safe_load(Path("configs/isvc/churn.yaml").read_text())
    doc["metadata"]["name"] = "customer-churn-classifier-with-a-rather-long-descriptive-name"[:60]
    assert len(doc["metadata"]["name"]) == 60
    plan = plan_of(doc)
    manifest = rayservice(one_app_config(plan), [plan])
    check(manifest)
    name = manifest["metadata"]["name"]
    assert len(name) <= 47 and name.startswith("customer-churn-classifier")
    assert rayservice_name(plan.name) == name  # deterministic
    assert rayservice_name(plan.name[:-1] + "x") != name  # same prefix, other hash


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Churn_Classifier", "churn-classifier"), ("7up", "isvc-7up"), ("--", "isvc"), ("a" * 47, "a" * 47)],
)
def test_names_are_dns1035(raw: str, expected: str) -> None:
    assert rayservice_name(raw) == expected


def test_min_and_max_follow_the_plans_scaling() -> None:
    doc = yaml.safe_load(Path("configs/isvc/sentiment.yaml").read_text())
    predictor = doc["spec"]["predictor"]
    predictor.update(minReplicas=1, maxReplicas=3)
    doc["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "Serverless"}
    whole = plan_of(doc)
    doc["metadata"]["annotations"]["isvc.dev/gpu-fraction"] = "0.5"
    shared = plan_of(doc)
    for plan, pods in ((whole, 3), (shared, 2)):
        manifest = rayservice(one_app_config(plan), [plan])
        check(manifest)
        gpu = groups(manifest)["gpu"]
        assert (gpu["replicas"], gpu["minReplicas"], gpu["maxReplicas"]) == (1, 1, pods)
        assert manifest["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] is True
    # a bigger CPU pod than any one replica would fit is grown; counts stay whole pods
    manifest = rayservice(one_app_config(whole), [whole], gpu_worker=PodShape(cpus=0.5, memory_gib=1, gpus=1))
    (container,) = groups(manifest)["gpu"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"}


def test_fixed_replicas_need_no_autoscaler() -> None:
    _, _, manifest = render("configs/isvc/churn.yaml")
    cluster = manifest["spec"]["rayClusterConfig"]
    assert "enableInTreeAutoscaling" not in cluster
    for group in cluster["workerGroupSpecs"]:
        assert group["minReplicas"] == group["replicas"] == group["maxReplicas"] >= 1


def test_strict_check_catches_misspelt_fields() -> None:
    _, _, manifest = render("configs/isvc/churn.yaml")
    bad = copy.deepcopy(manifest)
    bad["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["minReplica"] = 1
    jsonschema.Draft7Validator(SCHEMA).validate(bad)  # the CRD schema alone lets it through
    assert unknown_keys(bad, SCHEMA) == [
        "spec.rayClusterConfig.workerGroupSpecs[0].minReplica: unknown field (the schema has "
        "['groupName', 'idleTimeoutSeconds', 'labels', 'maxReplicas', 'minReplicas', 'numOfHosts', "
        "'priority', 'rayStartParams', 'replicas', 'resources', 'scaleStrategy', 'suspend', 'template', "
        "'topology'])"
    ]
    deep = copy.deepcopy(manifest)
    deep["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["resource"] = {}
    assert [p.split(":")[0] for p in unknown_keys(deep, SCHEMA)] == [
        "spec.rayClusterConfig.headGroupSpec.template.spec.containers[0].resource"
    ]
    cut = copy.deepcopy(manifest)
    cut["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["affinity"] = {"nodeAfinity": {}}
    assert "not in the kept CRD subset" in unknown_keys(cut, SCHEMA)[0]


def test_schema_catches_wrong_types_and_missing_fields() -> None:
    _, _, manifest = render("configs/isvc/churn.yaml")
    as_int = copy.deepcopy(manifest)
    as_int["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'string'"):
        jsonschema.Draft7Validator(SCHEMA).validate(as_int)
    missing = copy.deepcopy(manifest)
    del missing["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"]
    with pytest.raises(jsonschema.ValidationError, match="'maxReplicas' is a required property"):
        jsonschema.Draft7Validator(SCHEMA).validate(missing)
    quantity = copy.deepcopy(manifest)
    quantity["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0][
        "resources"
    ]["limits"]["memory"] = "8 GiB"
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        jsonschema.Draft7Validator(SCHEMA).validate(quantity)


def test_plans_must_match_the_applications() -> None:
    config, plans, _ = render("configs/isvc/churn.yaml")
    n = len(config["applications"])  # the service and its explainer's own application
    assert n == 2
    with pytest.raises(ValueError, match=f"{n} application"):
        rayservice(config, plans * (n + 1))
    with pytest.raises(ValueError, match="no ServicePlan"):
        rayservice(config, [])


def test_auth_and_namespace_options() -> None:
    config, plans, _ = render("configs/isvc/churn.yaml")
    manifest = rayservice(config, plans, name="Churn", namespace="prod", auth_mode=None)
    check(manifest)
    assert manifest["metadata"]["name"] == "churn" and manifest["metadata"]["namespace"] == "prod"
    assert "authOptions" not in manifest["spec"]["rayClusterConfig"]


def test_constants_agree_with_the_ray_options() -> None:
    from pipelines._ray import options

    module = importlib.import_module("pipelines.render.rayservice")  # the package's name is the function

    assert module.POOL_LABEL == options.POOL_LABEL
    assert module.DEFAULT_NUM_CPUS == options.DEFAULT_NUM_CPUS
    assert options.CPU_REPLICA_SELECTOR == {module.POOL_LABEL: "!gpu"}
