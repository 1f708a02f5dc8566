"""Process settings read once: the Ray Serve environment isvc runs with (``serve.env``).

>>> SERVE_ENV["RAY_SERVE_ENABLE_HA_PROXY"]
'1'
>>> slow_settings({"RAY_SERVE_ENABLE_HA_PROXY": "0"})[:1]
['RAY_SERVE_ENABLE_HA_PROXY=0 (isvc runs with 1)']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "FAST_SETTINGS",
    "GRPC_LIMIT_VAR",
    "PRELOAD_VAR",
    "SERVE_ENV",
    "SERVE_ENV_FILE",
    "serve_env",
    "slow_settings",
]

SERVE_ENV_FILE = Path(__file__).with_name("serve.env")


def _read(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


SERVE_ENV: dict[str, str] = _read(SERVE_ENV_FILE)
"""The defaults, in file order."""

GRPC_LIMIT_VAR = "RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH"

PRELOAD_VAR = "RAY_preload_python_modules"
"""What Ray workers import before they take work: a list the user may extend (not checked)."""

FAST_SETTINGS = tuple(k for k in SERVE_ENV if k not in (GRPC_LIMIT_VAR, PRELOAD_VAR))
"""The settings whose absence costs request speed (the ingress says so once)."""


def serve_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default ``os.environ``) with every default it lacks added."""
    env = dict(os.environ if environ is None else environ)
    for key, value in SERVE_ENV.items():
        env.setdefault(key, value)
    return env


def slow_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """The fast settings that ``environ`` sets otherwise or not at all, as ``KEY=value`` lines."""
    env = os.environ if environ is None else environ
    return [
        f"{k}={env.get(k, '<unset>')} (isvc runs with {SERVE_ENV[k]})"
        for k in FAST_SETTINGS
        if env.get(k) != SERVE_ENV[k]
    ]
