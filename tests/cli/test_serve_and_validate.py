"""``isvc serve`` (the argv and environment it execs), ``isvc validate`` on user transformer
classes, and the Serve settings read from pipelines/serve.env (settings, Makefile)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml

from pipelines.cli import IMPORT_PATH, main, serve_command
from pipelines.errors import SpecError
from pipelines.settings import FAST_SETTINGS, GRPC_LIMIT_VAR, SERVE_ENV, slow_settings
from predictors.registry import RUNTIME_ALIASES
from tests.helpers import ROOT, SPECS

BARE = SPECS / "good" / "seed_sklearn_churn.yaml"
NOT_BUILT = SPECS / "good" / "seed_huggingface_gpu.yaml"


@pytest.fixture
def tmpdir_for_mkstemp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tempfile`` writes under a folder of this test (rendered Serve configs land there)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# ---------------------------------------------------------------------------- serve


def test_serve_bare_isvc_renders_a_serve_config(tmpdir_for_mkstemp: Path):
    argv, env = serve_command(BARE, environ={})
    assert len(argv) == 3 and Path(argv[0]).name == "serve" and argv[1] == "run"
    target = Path(argv[2])
    assert target.parent == tmpdir_for_mkstemp and target.suffix == ".yaml"
    config = yaml.safe_load(target.read_text())
    (app,) = config["applications"]
    assert app["import_path"] == IMPORT_PATH == "pipelines.app:build"
    isvc = app["args"]["isvc"]
    assert isinstance(isvc, dict)  # inline, not a path
    assert isvc["metadata"]["name"] == "churn-classifier"
    assert isvc["spec"]["predictor"]["sklearn"]["storageUri"] == "s3://my-models/churn/v1/"
    assert app["name"] == "ml-serving-churn-classifier"


def test_serve_bare_isvc_passes_host_port_and_extra_args(tmpdir_for_mkstemp: Path):
    argv, _ = serve_command(BARE, host="127.0.0.1", port=9001, extra=["--non-blocking"], environ={})
    assert argv[1] == "run" and argv[3:] == ["--non-blocking"]
    config = yaml.safe_load(Path(argv[2]).read_text())
    assert config["http_options"] == {"host": "127.0.0.1", "port": 9001}


def test_serve_config_runs_as_it_is(tmpdir_for_mkstemp: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(ROOT)  # its `isvc:` path is relative to the working directory
    argv, _ = serve_command("configs/churn.yaml", environ={})
    assert argv[1:] == ["run", "configs/churn.yaml"]
    assert list(tmpdir_for_mkstemp.iterdir()) == []  # nothing rendered


def test_serve_env_has_every_setting_and_environ_wins(tmpdir_for_mkstemp: Path):
    _, env = serve_command(BARE, environ={})
    assert env == SERVE_ENV
    environ = {"RAY_SERVE_ENABLE_HA_PROXY": "0", "OTHER": "x"}
    _, env = serve_command(BARE, environ=environ)
    assert set(SERVE_ENV) <= set(env)
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "0" and env["OTHER"] == "x"
    assert env == {**SERVE_ENV, **environ}


def test_serve_env_defaults_to_os_environ(tmpdir_for_mkstemp: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ISVC_TEST_MARKER", "here")
    monkeypatch.setenv(GRPC_LIMIT_VAR, "1234")
    _, env = serve_command(BARE)
    assert env["ISVC_TEST_MARKER"] == "here" and env[GRPC_LIMIT_VAR] == "1234"
    assert all(key in env for key in SERVE_ENV)


def test_serve_runtime_not_built_fails_before_exec(
    tmpdir_for_mkstemp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.delitem(RUNTIME_ALIASES, "huggingface")  # it is built now: pretend it is not
    with pytest.raises(SpecError) as info:
        serve_command(NOT_BUILT, environ={})
    assert any("huggingface" in p and "not built yet" in p for p in info.value.problems)

    execs: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: execs.append((path, argv)))
    assert main(["serve", str(NOT_BUILT)]) == 1
    assert execs == []
    assert "huggingface" in capsys.readouterr().err
    assert list(tmpdir_for_mkstemp.iterdir()) == []  # nothing rendered either


def test_serve_main_execs_serve_run(tmpdir_for_mkstemp: Path, monkeypatch: pytest.MonkeyPatch):
    execs: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: execs.append((path, argv, env)))
    assert main(["serve", str(BARE)]) == 0
    ((path, argv, env),) = execs
    assert path == argv[0] and argv[1] == "run" and Path(argv[2]).parent == tmpdir_for_mkstemp
    assert all(key in env for key in SERVE_ENV)


# ---------------------------------------------------------------------------- validate


def write_isvc(tmp_path: Path, class_path: str, args: dict[str, object] | None = None) -> Path:
    custom: dict[str, object] = {"class": class_path}
    if args is not None:
        custom["args"] = args
    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m", "namespace": "ns"},
        "spec": {
            "transformer": {"custom": custom},
            "predictor": {"sklearn": {"storageUri": "s3://b/m/"}},
        },
    }
    path = tmp_path / "isvc.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def write_module(tmp_path: Path, name: str, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_validate_notes_a_preprocess_without_input_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    write_module(
        tmp_path,
        "isvc_test_notes_mod",
        """
        from transformers_.base import Transformer

        class Cls(Transformer):
            def preprocess(self, payload, headers=None):
                return payload
        """,
        monkeypatch,
    )
    code = main(["validate", str(write_isvc(tmp_path, "isvc_test_notes_mod:Cls"))])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert "# notes:" in lines
    notes = lines[lines.index("# notes:") + 1 :]
    assert any("get_input_types" in line and "preprocess" in line for line in notes), out
    assert not any("get_output_types" in line for line in notes)  # postprocess is not overridden


def test_validate_has_no_notes_when_types_are_declared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    write_module(
        tmp_path,
        "isvc_test_declared_mod",
        """
        from transformers_.base import Transformer

        class Cls(Transformer):
            def preprocess(self, payload, headers=None):
                return payload

            def get_input_types(self):
                return [{"name": "x", "datatype": "FP64", "shape": [-1, 5]}]
        """,
        monkeypatch,
    )
    code = main(["validate", str(write_isvc(tmp_path, "isvc_test_declared_mod:Cls"))])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "# notes:" not in out


def test_validate_unknown_transformer_arg_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    write_module(
        tmp_path,
        "isvc_test_args_mod",
        """
        class Cls:
            def __init__(self, name, predictor_host=None):
                self.name = name
        """,
        monkeypatch,
    )
    code = main(["validate", str(write_isvc(tmp_path, "isvc_test_args_mod:Cls", {"colour": "red"}))])
    out, err = capsys.readouterr()
    assert code == 1
    assert "spec.transformer.custom.args.colour" in err
    assert "valid" not in out


# ---------------------------------------------------------------------------- settings


def test_slow_settings_lists_every_fast_setting_when_unset():
    slow = slow_settings({})
    assert len(slow) == len(FAST_SETTINGS) and FAST_SETTINGS
    for key, line in zip(FAST_SETTINGS, slow, strict=True):
        assert line.startswith(f"{key}=<unset>") and f"(isvc runs with {SERVE_ENV[key]})" in line
    assert GRPC_LIMIT_VAR not in FAST_SETTINGS
    assert slow_settings(SERVE_ENV) == []
    assert slow_settings({**SERVE_ENV, GRPC_LIMIT_VAR: "1"}) == []


def test_makefile_reads_serve_env():
    env = {k: v for k, v in os.environ.items() if k not in SERVE_ENV and not k.startswith("MAKE")}
    out = subprocess.run(
        ["make", "-s", "-p", "-n", "lint"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    lines = set(out.splitlines())
    for key, value in SERVE_ENV.items():
        assert f"{key} = {value}" in lines, key


def test_makefile_takes_values_from_the_file_not_its_own_copy(tmp_path: Path):
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "serve.env").write_text("# changed\nRAY_SERVE_ENABLE_HA_PROXY=7\nISVC_X=abc\n")
    for prerequisite in ("pyproject.toml", "requirements.lock"):  # of `lint: install`
        (tmp_path / prerequisite).touch()
    env = {k: v for k, v in os.environ.items() if k not in SERVE_ENV and not k.startswith("MAKE")}
    out = subprocess.run(
        ["make", "-s", "-p", "-n", "-f", str(ROOT / "Makefile"), "lint"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = set(out.splitlines())
    assert "RAY_SERVE_ENABLE_HA_PROXY = 7" in lines and "ISVC_X = abc" in lines
