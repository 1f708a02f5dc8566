"""``KServeClient`` for a Ray cluster: KServe's SDK names and signatures over isvc's control
plane (:mod:`pipelines.control.services`, the same code as ``isvc apply / get / delete``).

::

    from pipelines.sdk import KServeClient
    kserve = KServeClient()                       # finds the cluster as Ray's CLI does
    kserve.create(isvc)                           # V1beta1InferenceService or a mapping
    kserve.wait_isvc_ready("churn-classifier", namespace="ml-serving")
    kserve.get("churn-classifier", namespace="ml-serving")["status"]["url"]

Differences from KServe, all on purpose:

- the cluster is Ray's, found as ``serve``/``ray`` find it: ``RAY_DASHBOARD_ADDRESS``, else an
  ``http(s)://`` ``RAY_ADDRESS``, else http://127.0.0.1:8265, with the cluster's token
  (:class:`pipelines.control.Dashboard`). ``config_file``, ``context``, ``client_configuration``
  and ``persist_config`` (kubeconfig) are accepted and not used; ``config_dict`` may give
  ``address``, ``token``, ``http_host``, ``http_port``.
- ``get`` returns KServe's plain dict, which also reads by attribute (``isvc.status.url`` and
  ``isvc["status"]["url"]`` both work).
- ``status.url`` is the model's V1 URL ``http://host:port/v1/models/<name>`` (a Serve proxy has
  one host for every service); ``status.address.url`` is the service's root.
- there is no ``resourceVersion``: two writers at the same time race (the last PUT wins).
"""

from __future__ import annotations

import copy
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

from pipelines.control.dashboard import Dashboard
from pipelines.control.plane import ControlPlane
from pipelines.control.services import NotFound, merge_patch, strip_server_metadata
from pipelines.control.status import is_ready, traffic_summary
from pipelines.errors import SpecError
from pipelines.sdk import constants
from pipelines.sdk.models import sanitize

__all__ = ["KServeClient", "ResourceDict"]

logger = logging.getLogger(__name__)


class ResourceDict(dict[str, Any]):
    """A JSON object that also reads by attribute: ``obj.status.url == obj["status"]["url"]``;
    a snake_case name finds its camelCase key (``obj.metadata.creation_timestamp``)."""

    def __getattr__(self, name: str) -> Any:
        if name in self:
            return self[name]
        head, *rest = name.split("_")
        camel = head + "".join(p[:1].upper() + p[1:] for p in rest)
        if camel in self:
            return self[camel]
        raise AttributeError(name)


def _wrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        return ResourceDict({k: _wrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _document(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        return copy.deepcopy(dict(obj))
    body = sanitize(obj)
    if not isinstance(body, dict):
        raise TypeError(f"expected a V1beta1InferenceService or a mapping, got {type(obj).__name__}")
    return body


def _api_error(call: str, status: int, reason: str, message: str) -> RuntimeError:
    return RuntimeError(
        f"Exception when calling CustomObjectsApi->{call}: ({status}) Reason: {reason}\n{message}"
    )


class KServeClient:
    """InferenceServices on the Ray cluster (see the module doc for what differs from KServe)."""

    def __init__(
        self,
        config_file: str | None = None,
        config_dict: Mapping[str, Any] | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        persist_config: bool = True,
    ) -> None:
        if config_file or context or client_configuration is not None:
            logger.info(
                "KServeClient: kubeconfig options are not used; the Ray cluster is found as Ray finds it"
            )
        cfg = dict(config_dict or {})
        self._plane = ControlPlane(
            Dashboard(cfg.get("address"), cfg.get("token")),
            http_host=cfg.get("http_host"),
            http_port=cfg.get("http_port"),
        )

    # ------------------------------------------------------------------------------------
    def _namespace(self, namespace: str | None, doc: Mapping[str, Any] | None = None) -> str:
        meta = (doc or {}).get("metadata") or {}
        return str(namespace or meta.get("namespace") or constants.DEFAULT_NAMESPACE)

    def _apply(self, doc: dict[str, Any], call: str) -> dict[str, Any]:
        try:
            results = self._plane.apply([({}, doc)])
        except SpecError as exc:
            raise _api_error(call, 422, "Invalid", str(exc)) from exc
        return dict(results[0].stored)

    def _stored(self, name: str, namespace: str, call: str) -> dict[str, Any]:
        try:
            return self._plane.stored(name, namespace)
        except NotFound as exc:
            raise _api_error(call, 404, "Not Found", str(exc)) from exc

    def _exists(self, name: str, namespace: str) -> bool:
        try:
            self._plane.stored(name, namespace)
        except NotFound:
            return False
        return True

    # ------------------------------------------------------------------------------------
    def create(
        self,
        inferenceservice: Any,
        namespace: str | None = None,
        watch: bool = False,
        timeout_seconds: float = 600,
    ) -> Any:
        """Create the InferenceService; the stored object (a dict), or None with ``watch``."""
        doc = _document(inferenceservice)
        version = str(doc.get("apiVersion") or constants.KSERVE_V1BETA1).split("/")[-1]
        if version != constants.KSERVE_V1BETA1_VERSION:
            raise _api_error("create_namespaced_custom_object", 404, "Not Found", f"version {version!r}")
        namespace = self._namespace(namespace, doc)
        doc.setdefault("metadata", {})["namespace"] = namespace
        name = str(doc["metadata"].get("name"))
        if self._exists(name, namespace):
            raise _api_error(
                "create_namespaced_custom_object",
                409,
                "Conflict",
                f'inferenceservices.serving.kserve.io "{name}" already exists',
            )
        stored = self._apply(doc, "create_namespaced_custom_object")
        if watch:
            self._watch(name, namespace, timeout_seconds)
            return None
        return _wrap(stored)

    def get(
        self,
        name: str | None = None,
        namespace: str | None = None,
        watch: bool = False,
        timeout_seconds: float = 600,
        version: str = constants.KSERVE_V1BETA1_VERSION,
    ) -> Any:
        """One InferenceService with its ``status`` (a dict), or ``{"items": [...]}`` without a name."""
        namespace = self._namespace(namespace)
        if name is None:
            items = self._plane.services(namespace)
            return _wrap(
                {"apiVersion": constants.KSERVE_V1BETA1, "kind": "InferenceServiceList", "items": items}
            )
        if watch:
            self._watch(name, namespace, timeout_seconds)
            return None
        try:
            return _wrap(self._plane.get(name, namespace))
        except NotFound as exc:
            raise _api_error("get_namespaced_custom_object", 404, "Not Found", str(exc)) from exc

    def patch(
        self,
        name: str,
        inferenceservice: Any,
        namespace: str | None = None,
        watch: bool = False,
        timeout_seconds: float = 600,
    ) -> Any:
        """A JSON merge patch (RFC 7386) of the stored document, applied (revisions as KServe)."""
        patch = _document(inferenceservice)
        namespace = self._namespace(namespace, patch)
        stored = self._stored(name, namespace, "patch_namespaced_custom_object")
        merged = merge_patch(stored, strip_server_metadata(patch) if "metadata" in patch else patch)
        merged.setdefault("metadata", {}).update(name=name, namespace=namespace)
        out = self._apply(merged, "patch_namespaced_custom_object")
        if watch:
            time.sleep(1)
            self._watch(name, namespace, timeout_seconds)
            return None
        return _wrap(out)

    def replace(
        self,
        name: str,
        inferenceservice: Any,
        namespace: str | None = None,
        watch: bool = False,
        timeout_seconds: float = 600,
    ) -> Any:
        """Replace the stored document with this one (it must exist)."""
        doc = _document(inferenceservice)
        namespace = self._namespace(namespace, doc)
        self._stored(name, namespace, "replace_namespaced_custom_object")
        doc.setdefault("metadata", {}).update(name=name, namespace=namespace)
        out = self._apply(doc, "replace_namespaced_custom_object")
        if watch:
            time.sleep(1)
            self._watch(name, namespace, timeout_seconds)
            return None
        return _wrap(out)

    def delete(
        self, name: str, namespace: str | None = None, version: str = constants.KSERVE_V1BETA1_VERSION
    ) -> Any:
        """Remove the InferenceService's Serve applications (everything else stays)."""
        namespace = self._namespace(namespace)
        try:
            self._plane.delete(name, namespace)
        except NotFound as exc:
            raise _api_error("delete_namespaced_custom_object", 404, "Not Found", str(exc)) from exc
        return _wrap(
            {
                "apiVersion": "v1",
                "kind": "Status",
                "status": "Success",
                "details": {"name": name, "group": constants.KSERVE_GROUP, "kind": constants.KSERVE_PLURAL},
            }
        )

    def is_isvc_ready(
        self,
        name: str,
        namespace: str | None = None,
        version: str = constants.KSERVE_V1BETA1_VERSION,
        expected_generation: int | None = None,
    ) -> bool:
        """Whether the ``Ready`` condition is True (and ``observedGeneration`` has reached
        ``expected_generation`` when given)."""
        return is_ready(self.get(name, namespace=namespace, version=version), expected_generation)

    def wait_isvc_ready(
        self,
        name: str,
        namespace: str | None = None,
        watch: bool = False,
        timeout_seconds: float = 600,
        polling_interval: float = 10,
        version: str = constants.KSERVE_V1BETA1_VERSION,
        expected_generation: int | None = None,
    ) -> None:
        """Wait until Ready, as KServe does: sleep ``polling_interval`` before each of
        ``round(timeout_seconds / polling_interval)`` polls; RuntimeError on timeout."""
        if watch:
            self._watch(name, self._namespace(namespace), timeout_seconds)
            return
        for _ in range(max(1, round(timeout_seconds / polling_interval))):
            time.sleep(polling_interval)
            if self.is_isvc_ready(name, namespace, version, expected_generation):
                return
        current = self.get(name, namespace=namespace, version=version)
        raise RuntimeError(
            f"Timeout to start the InferenceService {name}. The InferenceService is as following: {current}"
        )

    # ------------------------------------------------------------------------------------
    def _watch(self, name: str, namespace: str, timeout_seconds: float) -> None:
        """Print ``NAME READY PREV LATEST URL`` rows until Ready (KServe's ``isvc_watch``)."""
        print(f"{'NAME':<20} {'READY':<8} {'PREV':<8} {'LATEST':<8} URL")
        deadline = time.monotonic() + timeout_seconds
        last = None
        while time.monotonic() < deadline:
            try:
                obj = self._plane.get(name, namespace)
            except NotFound:
                obj = None
            if obj is not None:
                ready = "True" if is_ready(obj) else "Unknown"
                prev, latest = traffic_summary(obj)
                row = f"{name:<20} {ready:<8} {prev or '0':<8} {latest or '100':<8} {obj['status']['url']}"
                if row != last:
                    print(row)
                    sys.stdout.flush()
                    last = row
                if ready == "True":
                    return
            time.sleep(2)
