"""``hf://org/model[@revision]``: a snapshot folder of the local Hugging Face hub cache, offline.

The hub cache (``huggingface_hub``'s layout, as ``huggingface-cli download`` leaves it)::

    <cache>/models--org--model/refs/main            the commit sha the branch/tag points at
    <cache>/models--org--model/snapshots/<sha>/     the files of that commit (links into blobs/)

``<cache>`` is ``$HF_HUB_CACHE`` (or the older ``$HUGGINGFACE_HUB_CACHE``), else ``$HF_HOME/hub``,
else ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``. The revision is a
branch or tag (read from ``refs/``) or a 40-hex commit, default ``main``; ``@`` and ``:`` both
introduce it (``hf://org/model@v1.0``, ``hf://org/model:v1.0``). Nothing is downloaded: a model
that is not in the cache is a StorageError naming the path looked at. The snapshot is returned
in place; it is already node-local, so it is not copied into isvc's cache.

Example::

    resolve_hf("hf://acme/tiny-bert@main", hf_hub_cache())
    # -> ~/.cache/huggingface/hub/models--acme--tiny-bert/snapshots/3f1c.../
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from pipelines.errors import StorageError

__all__ = ["hf_hub_cache", "resolve_hf", "split_hf_uri"]

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def hf_hub_cache(environ: Mapping[str, str] | None = None) -> Path:
    """The hub cache folder, from ``environ`` (default ``os.environ``); see the module docstring."""
    env = os.environ if environ is None else environ
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def split_hf_uri(uri: str) -> tuple[str, str]:
    """``hf://org/model@rev`` → ``("org/model", "rev")``; the revision defaults to ``main``.

    >>> split_hf_uri("hf://acme/tiny-bert@v1.0")
    ('acme/tiny-bert', 'v1.0')
    >>> split_hf_uri("hf://gpt2")
    ('gpt2', 'main')
    """
    rest = uri[len("hf://") :].strip().strip("/")
    repo, revision = rest, "main"
    for sep in ("@", ":"):
        if sep in rest:
            repo, revision = rest.split(sep, 1)
            break
    repo, revision = repo.strip("/"), revision.strip()
    parts = repo.split("/")
    if not repo or len(parts) > 2 or not all(_NAME.match(p) and ".." not in p for p in parts):
        raise StorageError(f"{uri}: expected hf://org/model or hf://org/model@revision")
    if not revision or revision.startswith("/") or ".." in revision.split("/"):
        raise StorageError(f"{uri}: {revision!r} is not a revision (a branch, tag or commit sha)")
    return repo, revision


def resolve_hf(uri: str, cache: Path) -> Path:
    """The snapshot folder for ``uri`` in the hub cache ``cache``; never touches the network."""
    repo, revision = split_hf_uri(uri)
    folder = cache / ("models--" + repo.replace("/", "--"))
    ref = folder / "refs" / revision
    hint = (
        f"isvc reads hf:// from the local cache only: run `huggingface-cli download {repo}"
        f"{'' if revision == 'main' else f' --revision {revision}'}` on this node first, or point "
        "HF_HUB_CACHE / HF_HOME at the cache that has it"
    )
    if not folder.is_dir():
        raise StorageError(
            f"{uri}: model {repo!r} is not in the Hugging Face cache {cache} (no {folder}); {hint}"
        )
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
        if not _HEX40.match(commit):
            raise StorageError(
                f"{uri}: {ref} holds {commit[:60]!r}, not a commit sha; the cache looks damaged"
            )
    elif _HEX40.match(revision):
        commit = revision
    else:
        raise StorageError(
            f"{uri}: revision {revision!r} is not in the Hugging Face cache (no {ref}); {hint}"
        )
    snapshot = folder / "snapshots" / commit
    if not snapshot.is_dir() or not any(snapshot.iterdir()):
        raise StorageError(
            f"{uri}: revision {revision!r} (commit {commit}) has no files in the Hugging Face cache "
            f"(no {snapshot}); {hint}"
        )
    return snapshot
