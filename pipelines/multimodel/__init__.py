"""Many models on few predictor replicas (KServe's TrainedModel, ModelMesh's job), without Ray:
the plan (:mod:`~pipelines.multimodel.plan`), a replica's residency record
(:mod:`~pipelines.multimodel.residency`) and the V2 repository (:mod:`~pipelines.multimodel.repository`).
The multiplexed deployments are in :mod:`pipelines._ray.multiplex`."""

from pipelines.multimodel.plan import (
    ModelEntry,
    MultiModelPlan,
    build_multimodel_plan,
    entry_of,
    runtime_entry,
)
from pipelines.multimodel.repository import (
    LOADING,
    READY,
    UNAVAILABLE,
    ModelCatalog,
    ModelLoadFailed,
    NotInRepository,
    Replicas,
    Repository,
    describe,
    merge_index,
)
from pipelines.multimodel.residency import EVICTED, FAILED, UNLOADED, Residency, Resident

__all__ = [
    "EVICTED",
    "FAILED",
    "LOADING",
    "READY",
    "UNAVAILABLE",
    "UNLOADED",
    "ModelCatalog",
    "ModelEntry",
    "ModelLoadFailed",
    "MultiModelPlan",
    "NotInRepository",
    "Replicas",
    "Repository",
    "Resident",
    "Residency",
    "build_multimodel_plan",
    "describe",
    "entry_of",
    "merge_index",
    "runtime_entry",
]
