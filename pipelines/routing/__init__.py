"""From a plan to the model graph: predictor sinks, the canary split, :func:`assemble`."""

from pipelines.routing.assemble import assemble
from pipelines.routing.sinks import LocalSink, PredictorSink
from pipelines.routing.split import Sink, traffic_split

__all__ = ["LocalSink", "PredictorSink", "Sink", "assemble", "traffic_split"]
