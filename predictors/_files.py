"""Finding a runtime's model file in a storage folder, the way KServe's servers do.

KServe's sklearn, xgboost and lightgbm servers look at the folder's top-level files, take the
one whose name ends in one of the runtime's extensions and refuse zero or several. Here a
file named ``model.<ext>`` wins when there are several, and ``model_dir`` may be the file.

Example::

    find_model_file(Path("artifacts/m"), (".bst", ".json", ".ubj"), "xgboost")   # .../model.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.errors import StorageError

__all__ = ["find_model_file", "flag", "need_dir", "positive_int"]


def need_dir(model_dir: str | Path | None, runtime: str) -> Path:
    """``model_dir`` as a Path; a runtime without a storageUri is a :class:`StorageError`."""
    if model_dir is None:
        raise StorageError(f"the {runtime} runtime needs a storageUri (a folder holding the model file)")
    path = Path(model_dir)
    if not path.exists():
        raise StorageError(f"{runtime}: model path {path} does not exist")
    return path


def find_model_file(model_dir: Path, extensions: tuple[str, ...], runtime: str) -> Path:
    """The one model file in ``model_dir`` (or ``model_dir`` itself when it is such a file)."""
    wanted = ", ".join(f"model{e}" for e in extensions)
    if model_dir.is_file():
        if model_dir.suffix in extensions:
            return model_dir
        raise StorageError(f"{runtime}: {model_dir} is not a model file (expected {wanted})")
    for ext in extensions:
        if (model_dir / f"model{ext}").is_file():
            return model_dir / f"model{ext}"
    found = sorted(p.name for p in model_dir.iterdir() if p.is_file() and p.suffix in extensions)
    if len(found) == 1:
        return model_dir / found[0]
    if not found:
        raise StorageError(
            f"no model file in {model_dir}: the {runtime} runtime expects one of {wanted} "
            f"(or one file ending in {', '.join(extensions)})"
        )
    raise StorageError(f"more than one model file in {model_dir}: {found}; only one is allowed")


def flag(value: Any, name: str) -> bool:
    """A KServe boolean arg: a bare ``--flag`` (``True``) or ``"true"``/``"false"``, any case.

    >>> flag(True, "x"), flag("False", "x"), flag("1", "x")
    (True, False, True)
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y", "on", "t"):
        return True
    if text in ("0", "false", "no", "n", "off", "f"):
        return False
    raise ValueError(f"{name}: expected true or false, got {value!r}")


def positive_int(value: Any, name: str) -> int:
    """A KServe integer arg (strings from ``args`` included) that must be >= 1.

    >>> positive_int("4", "nthread")
    4
    """
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return number
