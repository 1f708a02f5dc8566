"""``hf://org/model[@revision]`` from a fake Hugging Face hub cache built in tmp_path (offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import StorageError
from pipelines.storage import StorageSettings, download
from pipelines.storage.hf import hf_hub_cache, resolve_hf, split_hf_uri

MAIN = "a" * 40
V1 = "b" * 40


def fake_hub(cache: Path, repo: str, refs: dict[str, str]) -> Path:
    """``models--org--name`` with ``blobs/``, ``snapshots/<sha>/`` (files link into blobs) and ``refs/``."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    for name, sha in refs.items():
        (folder / "refs" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "refs" / name).write_text(sha)  # the hub writes no newline
        snapshot = folder / "snapshots" / sha
        snapshot.mkdir(parents=True, exist_ok=True)
        blob = folder / "blobs" / f"{sha[:8]}-config"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_text(f'{{"revision": "{name}"}}')
        (snapshot / "config.json").symlink_to(Path("..", "..", "blobs", blob.name))
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> StorageSettings:
    fake_hub(tmp_path / "hub", "acme/tiny-bert", {"main": MAIN, "v1.0": V1})
    return StorageSettings(cache_dir=tmp_path / "isvc-cache", hf_cache_dir=tmp_path / "hub")


def test_cache_location_from_environment(tmp_path: Path) -> None:
    assert hf_hub_cache({"HF_HUB_CACHE": str(tmp_path / "a")}) == tmp_path / "a"
    assert hf_hub_cache({"HF_HOME": str(tmp_path / "h"), "XDG_CACHE_HOME": "/x"}) == tmp_path / "h" / "hub"
    assert hf_hub_cache({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "huggingface" / "hub"
    assert hf_hub_cache({}) == Path("~/.cache/huggingface/hub").expanduser()
    env = {"HF_HOME": str(tmp_path / "h"), "ISVC_CACHE_DIR": str(tmp_path / "c")}
    assert StorageSettings.from_env(env).hf_cache_dir == tmp_path / "h" / "hub"


def test_main_revision_in_place(settings: StorageSettings, tmp_path: Path) -> None:
    path = download("hf://acme/tiny-bert", settings)
    assert path == tmp_path / "hub" / "models--acme--tiny-bert" / "snapshots" / MAIN
    assert (path / "config.json").read_text() == '{"revision": "main"}'  # through the blob link
    assert not settings.cache_dir.exists()  # never copied into isvc's cache


@pytest.mark.parametrize(
    "uri", ["hf://acme/tiny-bert@v1.0", "hf://acme/tiny-bert:v1.0", f"hf://acme/tiny-bert@{V1}"]
)
def test_tag_or_commit_revision(settings: StorageSettings, uri: str) -> None:
    assert download(uri, settings).name == V1


def test_model_not_in_cache_names_the_cache(settings: StorageSettings, tmp_path: Path) -> None:
    looked = tmp_path / "hub" / "models--acme--other"
    with pytest.raises(
        StorageError, match=rf"hf://acme/other: .*{tmp_path / 'hub'} \(no {looked}\).*download"
    ):
        download("hf://acme/other", settings)


def test_revision_not_in_cache_names_the_ref(settings: StorageSettings, tmp_path: Path) -> None:
    ref = tmp_path / "hub" / "models--acme--tiny-bert" / "refs" / "v2"
    with pytest.raises(StorageError, match=rf"revision 'v2' is not in the Hugging Face cache \(no {ref}\)"):
        download("hf://acme/tiny-bert@v2", settings)
    with pytest.raises(StorageError, match="commit " + "c" * 40):
        download("hf://acme/tiny-bert@" + "c" * 40, settings)


@pytest.mark.parametrize("uri", ["hf://", "hf://a/b/c", "hf://acme/../x", "hf://acme/tiny@../../etc"])
def test_bad_uris(settings: StorageSettings, uri: str) -> None:
    with pytest.raises(StorageError, match="hf://"):
        download(uri, settings)


def test_split() -> None:
    assert split_hf_uri("hf://gpt2") == ("gpt2", "main")
    assert split_hf_uri("hf://acme/m@refs/pr/1") == ("acme/m", "refs/pr/1")


def test_pr_ref(tmp_path: Path) -> None:
    fake_hub(tmp_path, "acme/m", {"refs/pr/1": MAIN})
    assert resolve_hf("hf://acme/m@refs/pr/1", tmp_path).name == MAIN
