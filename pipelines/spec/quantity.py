"""Kubernetes quantities (``500m``, ``2``, ``512Mi``, ``1G``, ``1e3``): one grammar for the spec
validators and the planner.

>>> parse_quantity("500m"), parse_quantity("512Mi"), parse_quantity("1G"), parse_quantity("1e3")
(0.5, 536870912.0, 1000000000.0, 1000.0)
"""

from __future__ import annotations

import re

__all__ = ["QUANTITY", "check_quantity", "parse_cpu", "parse_memory", "parse_quantity"]

QUANTITY = re.compile(r"^[+]?(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+)|(m|k|Ki|[MGTPE]i?))?$")
"""A Kubernetes quantity: a number, then an exponent or one suffix."""

_SUFFIXES = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_SUFFIXES |= {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}


def parse_quantity(text: str | float) -> float:
    """A Kubernetes quantity as a number; anything else is a ``ValueError``."""
    match = QUANTITY.match(str(text).strip())
    if match is None:
        raise ValueError(f"not a Kubernetes quantity like '500m', '2', '512Mi' or '1G': {text!r}")
    number, exponent, suffix = match.groups()
    return float(number) * (10.0 ** int(exponent) if exponent else _SUFFIXES[suffix or ""])


def check_quantity(value: str | None) -> str | None:
    """``value`` unchanged when it parses (a pydantic validator body)."""
    if value is not None:
        parse_quantity(value)
    return value


def parse_cpu(text: str | float) -> float:
    """CPU cores: ``parse_cpu("500m") == 0.5``, ``parse_cpu("2") == 2.0``."""
    return parse_quantity(text)


def parse_memory(text: str | float) -> int:
    """Bytes: ``parse_memory("512Mi") == 536870912``, ``parse_memory("1G") == 10**9``."""
    return round(parse_quantity(text))
