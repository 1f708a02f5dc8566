"""The control plane: a running Ray cluster's Serve applications, read and changed through Ray's
dashboard REST API (what ``serve deploy`` / ``serve status`` use), with the cluster's token."""

from pipelines.control.dashboard import Dashboard, DashboardError, auth_token, dashboard_address

__all__ = ["Dashboard", "DashboardError", "auth_token", "dashboard_address"]
