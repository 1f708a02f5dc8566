"""A Ray Serve config and the plans it runs → a KubeRay ``ray.io/v1`` ``RayService`` manifest.

Pure data in, data out: no Ray, no Kubernetes client. The Serve config goes into
``spec.serveConfigV2`` unchanged (a YAML string). The Ray cluster is sized from the plans:

- **head**: ``rayStartParams`` ``num-cpus: "0"``, so no replica is ever placed on the head. It
  runs the GCS, the dashboard, the Serve controller, its HAProxy and Serve's fallback proxy,
  and those stay responsive however busy the replicas get. ``dashboard-host: "0.0.0.0"`` lets
  the operator reach the dashboard.
- **cpu** worker group: the replicas that ask for no GPU (the ingress, CPU predictors, the
  explainer). Its Ray node label is ``isvc.dev/pool: cpu``.
- **gpu** worker group, present only when a replica asks for a GPU: ``nvidia.com/gpu`` in the
  container limits, a toleration for the usual ``nvidia.com/gpu`` taint, and the Ray node label
  ``isvc.dev/pool: gpu``. CPU replicas carry ``label_selector {isvc.dev/pool: "!gpu"}``, so they
  stay off these nodes.
- every Ray container gets isvc's Serve settings (``pipelines/serve.env``: HAProxy, gRPC, the
  event-loop settings) in its ``env``. The Serve HTTP port is exposed as ``serve`` on every pod,
  because HAProxy runs on every node.

Each group's ``minReplicas``/``maxReplicas`` is the number of pods that hold its replicas at
their minimum/maximum counts. The counts are packed first-fit-decreasing by CPU, GPU and memory.
Both are always written. In-tree autoscaling is on when some group's minimum is below its
maximum.

>>> from pipelines.plan import build_plan
>>> from pipelines.spec import load_isvc
>>> plan = build_plan(load_isvc("configs/isvc/sentiment.yaml"))
>>> config = {"applications": [{"name": plan.app_name, "import_path": "pipelines.app:build"}]}
>>> spec = rayservice(config, [plan])["spec"]["rayClusterConfig"]
>>> [(g["groupName"], g["minReplicas"], g["maxReplicas"]) for g in spec["workerGroupSpecs"]]
[('cpu', 1, 1), ('gpu', 1, 1)]
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from pipelines.plan import Resources, Scaling, ServicePlan
from pipelines.settings import SERVE_ENV

__all__ = [
    "CPU_POD",
    "DEFAULT_RAY_IMAGE",
    "GPU_POD",
    "HEAD_POD",
    "MAX_NAME_LENGTH",
    "PodShape",
    "RAY_VERSION",
    "ReplicaDemand",
    "group_sizes",
    "rayservice",
    "rayservice_name",
    "rayservice_yaml",
    "replica_demand",
]

RAY_VERSION = "2.60.0"
"""``rayClusterConfig.rayVersion``: the Ray that isvc pins (pyproject.toml)."""

DEFAULT_RAY_IMAGE = f"rayproject/ray:{RAY_VERSION}-py311"
"""Ray's own image. It does not contain isvc: for a real cluster, pass an image built from it
with isvc installed (``pip install .``) and the model artifacts reachable."""

MAX_NAME_LENGTH = 47
"""KubeRay's limit on a RayService name (``MaxRayServiceNameLength``): the operator builds its
RayCluster, Service and Pod names from it."""

POOL_LABEL = "isvc.dev/pool"
"""The Ray node label key of :data:`pipelines._ray.options.POOL_LABEL`. It is repeated here so
that rendering does not import Ray, and a test checks that the two agree."""

DEFAULT_NUM_CPUS = 0.5
"""A replica's CPUs when its spec names none (:data:`pipelines._ray.options.DEFAULT_NUM_CPUS`)."""

ASSUMED_REPLICA_MEMORY = 2**30
"""Memory assumed, for pod sizing only, for a replica whose spec asks for none (Ray reserves none)."""

OBJECT_STORE_FRACTION = 0.3
"""The share of a node's memory that Ray keeps for its object store by default. Replicas' memory
reservations must fit in the rest."""

SERVE_PORT = 8000
"""Serve's HTTP port when the config's ``http_options`` names none."""

_GIB = 2**30
_EPS = 1e-9


@dataclass(frozen=True)
class PodShape:
    """The container size of one Ray pod, grown where needed to fit the largest replica."""

    cpus: float
    memory_gib: float
    gpus: int = 0


HEAD_POD = PodShape(cpus=2, memory_gib=8)
"""The head: GCS, dashboard, Serve controller, HAProxy, fallback proxy; no replicas."""

CPU_POD = PodShape(cpus=4, memory_gib=8)
"""One pod of the ``cpu`` worker group."""

GPU_POD = PodShape(cpus=8, memory_gib=32, gpus=1)
"""One pod of the ``gpu`` worker group."""


@dataclass(frozen=True)
class ReplicaDemand:
    """What one replica of one deployment reserves, and how many of them run (min, max)."""

    app: str
    deployment: str
    cpus: float
    gpus: float
    memory_bytes: int
    min_replicas: int
    max_replicas: int


def _replica_range(scaling: Scaling) -> tuple[int, int]:
    """The replicas a deployment runs at least and at most, as ``deployment_options`` sets them."""
    lo, hi = scaling.min_replicas, max(scaling.min_replicas, scaling.max_replicas, 1)
    if scaling.autoscale and (hi > lo or lo == 0):
        return lo, hi
    fixed = max(1, lo)
    return fixed, fixed


def _deployments(plan: ServicePlan) -> Iterable[tuple[str, Scaling, Resources]]:
    """The Serve deployments of one plan, as the builder (``pipelines._ray.builder``) makes them."""
    yield plan.ingress.name, plan.ingress.scaling, plan.ingress.resources
    if not plan.ingress.collocated:
        for node in plan.predictors():
            yield node.deployment, node.scaling, node.resources
    if plan.explainer is not None:
        yield "explainer", plan.explainer.scaling, plan.explainer.resources


def replica_demand(plans: Sequence[ServicePlan]) -> list[ReplicaDemand]:
    """One entry per Serve deployment of the plans, with the resources one replica reserves.

    >>> from pipelines.plan import build_plan
    >>> from pipelines.spec import load_isvc
    >>> plan = build_plan(load_isvc("configs/isvc/churn.yaml"))
    >>> [(d.deployment, d.cpus, d.max_replicas) for d in replica_demand([plan])]
    [('ingress', 0.5, 2), ('predictor', 0.5, 2), ('explainer', 0.25, 2)]
    """
    out = []
    for plan in plans:
        for deployment, scaling, res in _deployments(plan):
            lo, hi = _replica_range(scaling)
            out.append(
                ReplicaDemand(
                    app=plan.app_name,
                    deployment=deployment,
                    cpus=res.num_cpus if res.num_cpus is not None else DEFAULT_NUM_CPUS,
                    gpus=res.num_gpus or 0.0,
                    memory_bytes=res.memory_bytes or ASSUMED_REPLICA_MEMORY,
                    min_replicas=lo,
                    max_replicas=hi,
                )
            )
    return out


def _grow(shape: PodShape, demands: Sequence[ReplicaDemand]) -> PodShape:
    """``shape`` with whole CPUs and GPUs, large enough for the largest single replica."""
    cpus = max([shape.cpus, *(d.cpus for d in demands)])
    gpus = max([shape.gpus, *(d.gpus for d in demands)])
    memory = max([shape.memory_gib, *(d.memory_bytes / (1 - OBJECT_STORE_FRACTION) / _GIB for d in demands)])
    return PodShape(
        cpus=math.ceil(cpus - _EPS), memory_gib=math.ceil(memory - _EPS), gpus=math.ceil(gpus - _EPS)
    )


def _pods(items: list[tuple[float, float, float]], shape: PodShape) -> int:
    """Pods of ``shape`` that hold ``items`` (gpus, cpus, memory bytes), packed first-fit-decreasing."""
    room = (float(shape.gpus), float(shape.cpus), shape.memory_gib * _GIB * (1 - OBJECT_STORE_FRACTION))
    pods: list[list[float]] = []
    for item in sorted(items, reverse=True):
        for free in pods:
            if all(need <= have + _EPS for need, have in zip(item, free, strict=True)):
                free[:] = [have - need for need, have in zip(item, free, strict=True)]
                break
        else:
            pods.append([have - need for need, have in zip(item, room, strict=True)])
    return len(pods)


def group_sizes(demands: Sequence[ReplicaDemand], shape: PodShape) -> tuple[PodShape, int, int]:
    """The pod shape (grown to fit) and the pods needed at the replicas' minimum and maximum counts.

    >>> one_gpu = ReplicaDemand("a", "predictor", 1, 1, 2**30, min_replicas=1, max_replicas=3)
    >>> group_sizes([one_gpu], GPU_POD)
    (PodShape(cpus=8, memory_gib=32, gpus=1), 1, 3)
    """
    grown = _grow(shape, demands)

    def items(count: str) -> list[tuple[float, float, float]]:
        return [(d.gpus, d.cpus, float(d.memory_bytes)) for d in demands for _ in range(getattr(d, count))]

    return grown, _pods(items("min_replicas"), grown), _pods(items("max_replicas"), grown)


def rayservice_name(raw: str) -> str:
    """``raw`` as a RayService name: a lowercase DNS-1035 label of at most 47 characters.

    Characters outside ``[a-z0-9-]`` become ``-``, and a name that does not start with a letter
    gets an ``isvc-`` prefix. A name still too long is cut and ends in ``-`` plus 8 hex digits
    of its SHA-256, so two long names that share a prefix stay apart.

    >>> rayservice_name("churn-classifier")
    'churn-classifier'
    >>> rayservice_name("customer-churn-classifier-with-a-rather-long-descriptive-nam")
    'customer-churn-classifier-with-a-rathe-243f0107'
    """
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", raw.lower())).strip("-")
    if not name[:1].isalpha():
        name = f"isvc-{name}".rstrip("-")
    if len(name) > MAX_NAME_LENGTH:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME_LENGTH - len(digest) - 1].rstrip('-')}-{digest}"
    return name


def _cpu(cpus: float) -> str:
    return str(int(cpus)) if float(cpus).is_integer() else f"{math.ceil(cpus * 1000)}m"


def _memory(gib: float) -> str:
    mib = math.ceil(gib * 1024)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _container(
    name: str, image: str, env: Mapping[str, str], shape: PodShape, ports: Sequence[tuple[str, int]]
) -> dict[str, Any]:
    size = {"cpu": _cpu(shape.cpus), "memory": _memory(shape.memory_gib)}
    limits: dict[str, str] = dict(size)
    if shape.gpus:
        limits["nvidia.com/gpu"] = str(shape.gpus)
    return {
        "name": name,
        "image": image,
        "env": [{"name": k, "value": str(v)} for k, v in env.items()],
        "ports": [{"containerPort": port, "name": port_name} for port_name, port in ports],
        "resources": {"requests": size, "limits": limits},
    }


def _plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists, so the YAML dump is plain."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def rayservice(
    serve_config: Mapping[str, Any],
    plans: Sequence[ServicePlan],
    *,
    name: str | None = None,
    namespace: str | None = None,
    ray_image: str = DEFAULT_RAY_IMAGE,
    ray_version: str = RAY_VERSION,
    head: PodShape = HEAD_POD,
    cpu_worker: PodShape = CPU_POD,
    gpu_worker: PodShape = GPU_POD,
    env: Mapping[str, str] | None = None,
    auth_mode: str | None = "token",
) -> dict[str, Any]:
    """The ``ray.io/v1`` ``RayService`` that runs ``serve_config``, sized for ``plans``.

    ``plans`` are the ServicePlans of the InferenceServices behind the config's applications,
    one per application (``render_serve_config`` builds both from the same entries). Pods are
    sized from the plans, and per-deployment overrides in the Serve config are not read.

    ``name`` defaults to the InferenceService's name, or the names joined by ``-`` for several.
    It is made a valid name of at most 47 characters either way (:func:`rayservice_name`).
    ``namespace`` defaults to the plans' namespace when they share one, and is otherwise left
    out. ``env`` adds to (and overrides) isvc's Serve settings in every Ray container.
    ``auth_mode="token"`` asks KubeRay (v1.5.1 or later) for Ray token authentication: it makes
    the Secret and sets ``RAY_AUTH_MODE``/``RAY_AUTH_TOKEN`` on every Ray container. ``None``
    leaves ``authOptions`` out.
    """
    apps = serve_config.get("applications") or []
    if not plans:
        raise ValueError("rayservice: no ServicePlan given")
    if len(plans) > len(apps):
        raise ValueError(
            f"rayservice: the Serve config has {len(apps)} application(s) but {len(plans)} plan(s) were "
            "given; pass the plan of each InferenceService the config runs (once each: the routed "
            "layout runs one InferenceService as several applications)"
        )
    port = int((serve_config.get("http_options") or {}).get("port") or SERVE_PORT)
    container_env = {**SERVE_ENV, **(env or {})}
    demands = replica_demand(plans)

    head_group = {
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
        "template": {
            "spec": {
                "containers": [
                    _container(
                        "ray-head",
                        ray_image,
                        container_env,
                        head,
                        [("gcs-server", 6379), ("dashboard", 8265), ("client", 10001), ("serve", port)],
                    )
                ]
            }
        },
    }

    groups: list[dict[str, Any]] = []
    for group, shape, wanted in (
        ("cpu", cpu_worker, [d for d in demands if not d.gpus]),
        ("gpu", gpu_worker, [d for d in demands if d.gpus]),
    ):
        if not wanted:
            continue
        grown, lo, hi = group_sizes(wanted, shape)
        pod_spec: dict[str, Any] = {
            "containers": [_container("ray-worker", ray_image, container_env, grown, [("serve", port)])]
        }
        if grown.gpus:
            pod_spec["tolerations"] = [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ]
        groups.append(
            {
                "groupName": group,
                "replicas": lo,
                "minReplicas": lo,
                "maxReplicas": hi,
                "rayStartParams": {},
                "labels": {POOL_LABEL: group},
                "template": {"spec": pod_spec},
            }
        )

    cluster: dict[str, Any] = {"rayVersion": ray_version}
    if auth_mode is not None:
        cluster["authOptions"] = {"mode": auth_mode}
    if any(g["minReplicas"] < g["maxReplicas"] for g in groups):
        cluster["enableInTreeAutoscaling"] = True
        cluster["autoscalerOptions"] = {"upscalingMode": "Default", "idleTimeoutSeconds": 60}
    cluster["headGroupSpec"] = head_group
    cluster["workerGroupSpecs"] = groups

    metadata: dict[str, Any] = {"name": rayservice_name(name or "-".join(p.name for p in plans))}
    namespaces = {p.namespace for p in plans}
    if namespace is not None or len(namespaces) == 1:
        metadata["namespace"] = namespace if namespace is not None else namespaces.pop()
    metadata["labels"] = {"app.kubernetes.io/managed-by": "isvc"}
    metadata["annotations"] = {
        "isvc.dev/inference-services": ",".join(f"{p.namespace}/{p.name}" for p in plans)
    }

    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": metadata,
        "spec": {
            "serveConfigV2": yaml.safe_dump(_plain(serve_config), sort_keys=False),
            "rayClusterConfig": cluster,
        },
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (``serveConfigV2``) as ``|`` blocks."""


_Dumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    ),
)


def rayservice_yaml(manifest: Mapping[str, Any]) -> str:
    """``manifest`` as YAML for ``kubectl apply -f``, with ``serveConfigV2`` as a readable ``|`` block.

    >>> print(rayservice_yaml({"spec": {"serveConfigV2": "applications: []\\n"}}), end="")
    spec:
      serveConfigV2: |
        applications: []
    """
    return yaml.dump(_plain(manifest), Dumper=_Dumper, sort_keys=False)
