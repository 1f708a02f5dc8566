"""Ray's dashboard REST API for Serve: ``GET/PUT/DELETE /api/serve/applications/``, and the
tail of a replica's log file (``GET /api/v0/logs/file``, Ray's state API).

The address is found as Ray's CLI finds it: ``RAY_DASHBOARD_ADDRESS``, else an ``http(s)://``
``RAY_ADDRESS``, else ``http://127.0.0.1:8265``. With token authentication (Ray 2.60's default,
``RAY_AUTH_MODE=token``) the token comes from ``RAY_AUTH_TOKEN``, else the file named by
``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token`` — where ``ray start`` writes it.

    >>> dashboard_address({"RAY_ADDRESS": "http://10.0.0.5:8265"})
    'http://10.0.0.5:8265'
    >>> dashboard_address({})
    'http://127.0.0.1:8265'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Dashboard", "DashboardError", "auth_token", "dashboard_address"]

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
APPLICATIONS = "/api/serve/applications/"
LOG_FILE = "/api/v0/logs/file"


class DashboardError(RuntimeError):
    """The dashboard could not be reached or refused the call (the message says which and why)."""


def dashboard_address(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    explicit = env.get("RAY_DASHBOARD_ADDRESS")
    if explicit:
        return explicit.rstrip("/") if "://" in explicit else f"http://{explicit.rstrip('/')}"
    ray_address = env.get("RAY_ADDRESS", "")
    if ray_address.startswith(("http://", "https://")):
        return ray_address.rstrip("/")
    return DEFAULT_ADDRESS


def auth_token(env: Mapping[str, str] | None = None) -> str | None:
    """The cluster's token, or None when there is none to send."""
    env = os.environ if env is None else env
    if env.get("RAY_AUTH_TOKEN"):
        return env["RAY_AUTH_TOKEN"].strip()
    path = (
        Path(env["RAY_AUTH_TOKEN_PATH"])
        if env.get("RAY_AUTH_TOKEN_PATH")
        else Path.home() / ".ray" / "auth_token"
    )
    try:
        token = path.read_text().strip()
    except OSError:
        return None
    return token or None


class Dashboard:
    """A small client of the Serve part of Ray's dashboard API."""

    def __init__(self, address: str | None = None, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.address = (address or dashboard_address()).rstrip("/")
        token = token if token is not None else auth_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=self.address, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            r = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise DashboardError(f"cannot reach the Ray dashboard at {self.address}: {exc}") from exc
        if r.status_code == 401 or r.status_code == 403:
            raise DashboardError(
                f"the Ray dashboard at {self.address} refused the token ({r.status_code}); set "
                "RAY_AUTH_TOKEN or run where `ray start` wrote ~/.ray/auth_token"
            )
        if r.status_code >= 400:
            raise DashboardError(f"{method} {path} on {self.address}: {r.status_code} {r.text[:500]}")
        return r

    def details(self) -> dict[str, Any]:
        """Serve's instance details: ``applications`` by name, each with its status,
        ``deployed_app_config`` and ``deployments`` (with their replicas)."""
        body: dict[str, Any] = self._call("GET", APPLICATIONS).json()
        return body

    def applications(self) -> dict[str, Any]:
        apps: dict[str, Any] = self.details().get("applications") or {}
        return apps

    def deploy(self, config: dict[str, Any]) -> None:
        """Declare the whole Serve config (what ``serve deploy`` does; apps left out are deleted)."""
        self._call("PUT", APPLICATIONS, json=config)

    def log_tail(self, node_id: str, filename: str, lines: int = 200) -> str:
        """The last ``lines`` lines of a log file on a node: ``filename`` relative to that node's
        Ray log folder, as Serve's replica details give it (``serve/replica_....log``)."""
        params = {"node_id": node_id, "filename": filename.lstrip("/"), "lines": str(lines)}
        return self._call("GET", LOG_FILE, params=params).text

    def delete_all(self) -> None:
        self._call("DELETE", APPLICATIONS)
