"""The cluster's InferenceServices through Ray's dashboard: :class:`ControlPlane`, the I/O half of
``isvc apply / get / delete`` and the SDK's ``KServeClient`` (the pure halves:
:mod:`pipelines.control.services` builds the Serve config, :mod:`pipelines.control.status` the
KServe status)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from pipelines.control.dashboard import Dashboard, DashboardError
from pipelines.control.services import (
    ApplyResult,
    ControlError,
    Deployed,
    NotFound,
    apply_config,
    default_http_options,
    delete_config,
    deployed_document,
    group_services,
)
from pipelines.control.status import (
    LOADING_STATES,
    build_status,
    download_entry,
    http_base,
    is_ready,
    service_base,
)
from pipelines.storage.progress import from_log

__all__ = ["ControlPlane"]


class ControlPlane:
    """The cluster's InferenceServices through Ray's dashboard (:class:`~pipelines.control.Dashboard`).

    ``http_host`` / ``http_port``: where Serve should listen if this call starts it (default
    ``$ISVC_HTTP_HOST`` / ``$ISVC_HTTP_PORT``, else 0.0.0.0:8000); a running Serve keeps its own.
    """

    def __init__(
        self,
        dashboard: Dashboard | None = None,
        http_host: str | None = None,
        http_port: int | None = None,
        http_timeout_s: float = 5.0,
    ) -> None:
        self.dashboard = dashboard or Dashboard()
        self.http_options = default_http_options(http_host, http_port)
        self.http_timeout_s = http_timeout_s

    def close(self) -> None:
        self.dashboard.close()

    def details(self, attempts: int = 5) -> dict[str, Any]:
        """Serve's instance details. A dropped or refused connection (a dashboard just started,
        or busy) is retried for about 15 s; an HTTP refusal (401, 500) is not."""
        for attempt in range(attempts):
            try:
                return self.dashboard.details()
            except DashboardError as exc:
                if attempt == attempts - 1 or not isinstance(exc.__cause__, httpx.TransportError):
                    raise
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def base_url(self, details: Mapping[str, Any] | None = None) -> str:
        return http_base(
            details if details is not None else self.details(), self.dashboard.address, self.http_options
        )

    # -- writes --------------------------------------------------------------------------
    def apply(self, items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> list[ApplyResult]:
        """Deploy the InferenceServices (``(Serve entry, document)``), keeping everything else."""
        details = self.details()
        config, results = apply_config(details, items, self.http_options)
        if any(r.action != "unchanged" for r in results):
            self._put(config)
        return results

    def delete(self, name: str, namespace: str = "default") -> None:
        self._put(delete_config(self.details(), namespace, name))

    def _put(self, config: dict[str, Any], attempts: int = 3) -> None:
        """PUT the whole config. It is idempotent, so a dropped connection or a 500 (e.g. Serve's
        proxy not up in time while Serve starts on a busy machine) is retried; a 400 is not."""
        for attempt in range(attempts):
            try:
                self.dashboard.deploy(config)
                return
            except DashboardError as exc:
                transient = isinstance(exc.__cause__, httpx.TransportError) or ": 500 " in str(exc)
                if attempt == attempts - 1 or not transient:
                    raise
                time.sleep(2.0 * (attempt + 1))

    # -- reads ---------------------------------------------------------------------------
    def ingress_info(self, base: str, svc: Deployed) -> dict[str, Any] | None:
        url = f"{service_base(base, svc.route_prefix)}/v1/models/{svc.name}"
        try:
            r = httpx.get(url, timeout=self.http_timeout_s)
            body = r.json()
        except (httpx.HTTPError, ValueError):
            return None
        return body if r.status_code == 200 and isinstance(body, dict) else None

    def downloads(self, svc: Deployed, lines: int = 200) -> list[dict[str, Any]]:
        """The model downloads the service's starting replicas report: the progress lines
        (:mod:`pipelines.storage.progress`) at the end of each one's log, read through the
        dashboard. A replica whose log cannot be read is left out (the status still answers)."""
        found = []
        for app_name, app in sorted(svc.apps.items()):
            for dep_name, dep in sorted((app.get("deployments") or {}).items()):
                for r in dep.get("replicas") or []:
                    node, path = r.get("node_id"), r.get("log_file_path")
                    if r.get("state") not in LOADING_STATES or not node or not path:
                        continue
                    try:
                        text = self.dashboard.log_tail(str(node), str(path), lines)
                    except DashboardError:
                        continue
                    replica = str(r.get("replica_id") or r.get("actor_name") or "")
                    for uri, snap in from_log(text).items():
                        found.append(download_entry(app_name, dep_name, replica, uri, snap))
        return found

    def services(self, namespace: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        """KServe-shaped InferenceServices (``status`` included), optionally one namespace / name."""
        details = self.details()
        base = self.base_url(details)
        out = []
        for (ns, n), svc in group_services(details.get("applications") or {}).items():
            if (namespace is not None and ns != namespace) or (name is not None and n != name):
                continue
            out.append(build_status(svc, base, self.ingress_info(base, svc), self.downloads(svc)))
        return out

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        found = self.services(namespace, name)
        if not found:
            where = f" in namespace {namespace!r}" if namespace else ""
            raise NotFound(f'inferenceservices.serving.kserve.io "{name}" not found{where}')
        if len(found) > 1:
            spaces = ", ".join(o["metadata"]["namespace"] for o in found)
            raise ControlError(f"{name!r} is in several namespaces ({spaces}); name one with -n / namespace=")
        return found[0]

    def stored(self, name: str, namespace: str) -> dict[str, Any]:
        """The document last applied (else the one the applications run)."""
        svc = group_services(self.details().get("applications") or {}).get((namespace, name))
        doc = deployed_document(svc) if svc else None
        if doc is None:
            raise NotFound(
                f'inferenceservices.serving.kserve.io "{name}" not found in namespace {namespace!r}'
            )
        return doc

    def wait_ready(
        self,
        keys: list[tuple[str, str]],
        timeout_s: float,
        interval_s: float = 1.0,
        on_poll: Callable[[list[dict[str, Any]]], None] | None = None,
        sleep_first: bool = True,
    ) -> list[dict[str, Any]]:
        """Poll until each ``(namespace, name)`` is Ready; returns their last objects.
        Raises TimeoutError (with the last objects in ``args[1]``) when time runs out."""
        deadline = time.monotonic() + timeout_s
        last: list[dict[str, Any]] = []
        while True:
            if sleep_first:
                time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))
            sleep_first = True
            try:
                found = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in self.services()}
            except DashboardError:
                if time.monotonic() >= deadline:
                    raise
                continue
            last = [found[k] for k in keys if k in found]
            if on_poll is not None:
                on_poll(last)
            if len(last) == len(keys) and all(is_ready(o) for o in last):
                return last
            if time.monotonic() >= deadline:
                raise TimeoutError(f"not ready after {timeout_s:g}s", last)
