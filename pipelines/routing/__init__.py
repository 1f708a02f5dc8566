"""From a plan to the model graph: predictor and explainer sinks, the canary split, :func:`assemble`."""

from pipelines.routing.assemble import assemble, served_models
from pipelines.routing.sinks import ExplainerSink, LocalExplainerSink, LocalSink, PredictorSink
from pipelines.routing.split import Sink, traffic_split

__all__ = [
    "ExplainerSink",
    "LocalExplainerSink",
    "LocalSink",
    "PredictorSink",
    "Sink",
    "assemble",
    "served_models",
    "traffic_split",
]
