"""Transformers: KServe-style pre/postprocessing classes hosted in the ingress replica."""

from pipelines.errors import InvalidInput
from transformers_.base import Model, Transformer

__all__ = ["Transformer", "Model", "InvalidInput"]
