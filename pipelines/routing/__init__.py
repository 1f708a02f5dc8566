"""From a plan to the model graph: predictor and explainer sinks, the traffic router (canary,
tags, shadow), :func:`assemble`."""

from pipelines.routing.assemble import assemble, coalesced, explainer_front, revisions, served_models
from pipelines.routing.sinks import (
    ExplainerSink,
    LocalExplainerSink,
    LocalFirstExplainerSink,
    LocalSink,
    PredictorSink,
)
from pipelines.routing.traffic import Revision, Shadow, TrafficRouter, agreement

__all__ = [
    "ExplainerSink",
    "LocalExplainerSink",
    "LocalFirstExplainerSink",
    "LocalSink",
    "PredictorSink",
    "Revision",
    "Shadow",
    "TrafficRouter",
    "agreement",
    "assemble",
    "coalesced",
    "explainer_front",
    "revisions",
    "served_models",
]
