"""JSON bodies: :func:`parse_json` (errors say where) and :func:`dumps` (numpy-aware, orjson when present).

Example::

    dumps({"p": np.float32(0.5)})    # b'{"p":0.5}'
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipelines.errors import InvalidInput

try:  # orjson is optional: faster, and serialises numpy natively.
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]

__all__ = ["dumps", "flat_list", "parse_json", "show_json"]


def show_json(v: Any) -> str:
    """``v`` as JSON text for error messages (``repr`` when it is not JSON-able)."""
    try:
        return json.dumps(v)
    except (TypeError, ValueError):
        return repr(v)


def flat_list(arr: NDArray[Any]) -> list[Any]:
    """Flat JSON-ready list; BYTES elements that are bytes are decoded as UTF-8."""
    flat: list[Any] = arr.reshape(-1).tolist()
    if arr.dtype.kind in "OS":
        flat = [v.decode("utf-8") if type(v) is bytes else v for v in flat]
    return flat


def parse_json(raw: bytes | str) -> Any:
    """Parse a request body; empty or malformed JSON is an ``InvalidInput`` saying where.

    Example::

        parse_json(b'{"a": 1,}')  # InvalidInput: malformed JSON: Expecting property name ... line 1 column 9
    """
    if not raw or not raw.strip():
        raise InvalidInput("malformed JSON: empty body")
    try:
        return orjson.loads(raw) if orjson is not None else json.loads(raw)
    except json.JSONDecodeError as exc:  # orjson.JSONDecodeError subclasses it
        raise InvalidInput(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise InvalidInput("malformed JSON: body is not valid UTF-8") from None


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()  # bytes elements come back here one by one
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, bytes):
        return obj.decode("utf-8")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # pandas DataFrame
        return obj.to_dict(orient="records")
    if hasattr(obj, "tolist"):  # pandas Series / Index
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS if orjson is not None else 0


def dumps(obj: Any) -> bytes:
    """Serialise to compact UTF-8 JSON; numpy scalars/arrays, bytes and DataFrames are handled.

    Example::

        dumps({"p": np.float32(0.5), "y": np.arange(3)})  # b'{"p":0.5,"y":[0,1,2]}'
    """
    if orjson is not None:
        out: bytes = orjson.dumps(obj, default=_default, option=_OPTS)
        return out
    return json.dumps(obj, default=_default, separators=(",", ":"), ensure_ascii=False).encode()
