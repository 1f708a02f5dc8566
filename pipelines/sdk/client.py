"""The few ``kubernetes.client`` classes an InferenceService is written with: ``V1ObjectMeta``,
``V1ResourceRequirements``, ``V1EnvVar``, ``V1Toleration``. With the ``kubernetes`` package
installed these are its own classes; without it, stand-ins with the same names and keywords
(isvc needs no Kubernetes), serialised by the same ``attribute_map`` rule.

>>> from pipelines.sdk.models import sanitize
>>> sanitize(V1ObjectMeta(name="m", namespace="ns", annotations={"a": "b"}))
{'annotations': {'a': 'b'}, 'name': 'm', 'namespace': 'ns'}
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

from pipelines.sdk.models import _fields, _Model

__all__ = ["V1EnvVar", "V1ObjectMeta", "V1ResourceRequirements", "V1Toleration"]


class _V1ObjectMeta(_Model):
    """``metadata``: name, namespace, annotations, labels (server fields kept when read back)."""

    attribute_map: ClassVar[dict[str, str]] = _fields(
        """annotations creation_timestamp deletion_grace_period_seconds deletion_timestamp finalizers
        generate_name generation labels managed_fields name namespace owner_references resource_version
        self_link uid"""
    )


class _V1ResourceRequirements(_Model):
    """``resources``: ``requests`` / ``limits`` mappings (cpu, memory, nvidia.com/gpu)."""

    attribute_map: ClassVar[dict[str, str]] = _fields("claims limits requests")


class _V1EnvVar(_Model):
    """One ``env`` entry."""

    attribute_map: ClassVar[dict[str, str]] = _fields("name value value_from")


class _V1Toleration(_Model):
    """One ``tolerations`` entry (accepted, ignored outside Kubernetes)."""

    attribute_map: ClassVar[dict[str, str]] = _fields("effect key operator toleration_seconds value")


try:  # kubernetes' own classes when it is installed (user code may mix the two)
    _k8s: Any = importlib.import_module("kubernetes.client")
except ImportError:
    _k8s = None

V1ObjectMeta: Any = _k8s.V1ObjectMeta if _k8s is not None else _V1ObjectMeta
V1ResourceRequirements: Any = _k8s.V1ResourceRequirements if _k8s is not None else _V1ResourceRequirements
V1EnvVar: Any = _k8s.V1EnvVar if _k8s is not None else _V1EnvVar
V1Toleration: Any = _k8s.V1Toleration if _k8s is not None else _V1Toleration
