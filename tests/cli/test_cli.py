"""The ``isvc`` console script: validate and render, on InferenceService files and Serve configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.cli import IMPORT_PATH, main
from pipelines.spec import load_isvc
from predictors.registry import RUNTIME_ALIASES
from tests.helpers import SPECS

CHURN = SPECS / "good" / "seed_sklearn_churn.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def serve_config(tmp_path: Path, isvc: object) -> Path:
    config = {
        "applications": [
            {"name": "churn", "route_prefix": "/", "import_path": IMPORT_PATH, "args": {"isvc": isvc}}
        ]
    }
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_validate_prints_plan_and_ignored_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", str(CHURN))
    assert (code, err) == (0, "")
    assert "ml-serving/churn-classifier: valid" in out
    body = yaml.safe_load(out)  # the comment lines are YAML comments
    assert body["app_name"] == "ml-serving-churn-classifier"
    assert body["predictor"]["runtime"] == "predictors.sklearn:SKLearnPredictor"
    assert body["predictor"]["scaling"]["max_replicas"] == 5
    assert "#   - spec.predictor.serviceAccountName" in out


def test_validate_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    canary = tmp_path / "canary.yaml"
    canary.write_text(
        (SPECS / "good" / "seed_pytorch_canary.yaml").read_text().replace("pytorch:", "sklearn:")
    )
    code, out, _ = run(capsys, "validate", "--json", str(canary))
    body = json.loads(out)
    assert code == 0 and body["plan"]["canary_traffic_percent"] == 20 and body["ignored"] == []
    assert body["plan"]["version"] == "1" and body["notes"] == []


@pytest.mark.parametrize(
    ("name", "runtime"),
    [("seed_huggingface_gpu.yaml", "huggingface"), ("seed_pytorch_canary.yaml", "pytorch")],
)
def test_validate_names_runtimes_not_built_yet(
    capsys: pytest.CaptureFixture[str], name: str, runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(RUNTIME_ALIASES, runtime)  # every KServe name has a runtime now: pretend one has not
    code, out, err = run(capsys, "validate", str(SPECS / "good" / name))
    assert (code, out) == (1, "")
    assert f"spec.predictor.{runtime}: the '{runtime}' runtime is not built yet; available: sklearn" in err


def test_validate_bad_file_exits_1_with_paths_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", str(SPECS / "bad" / "many_problems.yaml"))
    assert (code, out) == (1, "")
    assert "spec.predictor.sklearn.storageUrl: unknown field; did you mean 'storageUri'?" in err
    assert "spec.transfomer: unknown field; did you mean 'transformer'?" in err


def test_validate_plan_errors_and_missing_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "validate", str(SPECS / "bad" / "bad_target_annotation.yaml"))
    assert code == 1 and 'metadata.annotations["autoscaling.knative.dev/target"]' in err
    code, _, err = run(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 1 and "cannot read" in err


def test_render_serve_config_single_layout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", "--layout", "single", str(CHURN))
    config = yaml.safe_load(out)
    assert code == 0
    assert config["http_options"] == {"host": "0.0.0.0", "port": 8000}
    assert "proxy_location" in config
    [app] = config["applications"]
    assert (app["name"], app["route_prefix"], app["import_path"]) == (
        "ml-serving-churn-classifier",
        "/",
        "pipelines.app:build",
    )
    rendered = load_isvc(app["args"]["isvc"])
    assert rendered.model_dump() == load_isvc(CHURN).model_dump()


def test_render_single_layout_gives_the_explainer_its_own_route(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from pipelines.cli.commands import load_file

    code, out, _ = run(capsys, "render", "--layout", "single", "configs/isvc/churn.yaml")
    assert code == 0
    service, explainer = yaml.safe_load(out)["applications"]
    assert (service["route_prefix"], service["import_path"]) == ("/", "pipelines.app:build")
    assert service["args"]["explainer_app"] == explainer["name"] == "ml-serving-churn-classifier-explainer"
    assert (explainer["route_prefix"], explainer["import_path"]) == (
        "/v1/models/churn-classifier:explain",
        "pipelines.app:build_explainer",
    )
    assert explainer["args"] == {"isvc": service["args"]["isvc"]}
    # the written config reads back as the one service (its explainer's application is part of it)
    (tmp_path / "rendered.yaml").write_text(out)
    [(entry, isvc)] = load_file(tmp_path / "rendered.yaml")
    assert entry["name"] == service["name"] and isvc.metadata.name == "churn-classifier"


def test_render_routed_layout_puts_traffic_in_the_ingress_user_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "render", "configs/isvc/churn.yaml")  # with its explainer
    assert code == 0
    apps = yaml.safe_load(out)["applications"]
    predictor, explainer, ingress = apps
    assert predictor["name"].startswith("ml-serving-churn-classifier-predictor-")
    assert predictor["route_prefix"] is None and predictor["import_path"] == "pipelines.app:build_predictor"
    assert explainer["import_path"] == "pipelines.app:build_explainer"
    assert explainer["args"]["predictor_app"] == predictor["name"]
    assert explainer["route_prefix"] == "/v1/models/churn-classifier:explain"  # Ray's proxy → explainer
    assert (ingress["name"], ingress["route_prefix"]) == ("ml-serving-churn-classifier", "/")
    assert "predictor" not in ingress["args"]["isvc"]["spec"]  # no model in the ingress's build args
    [dep] = ingress["deployments"]
    assert dep["name"] == "ingress"
    assert dep["user_config"]["predictors"] == [
        {"tag": "latest", "app": predictor["name"], "percent": 100, "scalesToZero": False}
    ]
    assert dep["user_config"]["explainer"] == explainer["name"]
    # the predictor's own document is a complete InferenceService with that predictor
    assert load_isvc(predictor["args"]["isvc"]).spec.predictor.sklearn is not None


def test_render_port_option(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "render", "--port", "9000", str(CHURN))
    assert yaml.safe_load(out)["http_options"]["port"] == 9000


def test_serve_config_with_relative_isvc_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "isvc").mkdir()
    (tmp_path / "isvc" / "churn.yaml").write_text(CHURN.read_text())
    (tmp_path / "configs").mkdir()
    config = serve_config(tmp_path / "configs", "isvc/churn.yaml")
    # One rule, as `serve run` applies it: relative to the working directory, not the config's folder.
    code, _, err = run(capsys, "validate", str(config))
    assert code == 1 and "isvc/churn.yaml: cannot read" in err
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "validate", str(config))
    assert code == 0 and "churn-classifier: valid" in out
    code, out, _ = run(capsys, "render", "--layout", "single", str(config))
    [app] = yaml.safe_load(out)["applications"]
    assert app["name"] == "churn"  # the config's own application name is kept
    assert app["args"]["isvc"]["metadata"]["name"] == "churn-classifier"  # and the isvc is now inline


def test_serve_config_with_inline_isvc_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = yaml.safe_load(CHURN.read_text())
    bad["spec"]["predictor"]["sklearn"]["storageUrl"] = "s3://x/"
    code, _, err = run(capsys, "validate", str(serve_config(tmp_path, bad)))
    assert code == 1
    assert "applications[0] (churn): spec.predictor.sklearn.storageUrl: unknown field" in err


def test_multi_document_needs_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    both = tmp_path / "both.yaml"
    seeds = ("seed_sklearn_churn.yaml", "seed_huggingface_gpu.yaml")
    both.write_text("---\n".join((SPECS / "good" / n).read_text() for n in seeds))
    code, _, err = run(capsys, "render", str(both))
    assert code == 1 and "pick one by name" in err
    code, out, _ = run(capsys, "render", "--name", "churn-classifier", str(both))
    assert code == 0 and yaml.safe_load(out)["applications"][-1]["name"] == "ml-serving-churn-classifier"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    capsys.readouterr()


def test_configs_canary_yaml_is_the_rendering_of_its_inference_service() -> None:
    """configs/canary.yaml stays what `isvc render configs/isvc/canary.yaml` writes."""
    from pipelines.cli.commands import load_file, render_serve_config

    shipped = yaml.safe_load(Path("configs/canary.yaml").read_text())
    rendered = render_serve_config(load_file("configs/isvc/canary.yaml"), layout="routed")
    assert shipped == rendered
    ingress = shipped["applications"][-1]["deployments"][0]["user_config"]
    assert [(p["tag"], p["percent"]) for p in ingress["predictors"]] == [("prev", 80), ("latest", 20)]
    assert ingress["shadow"]["to"] == "latest"


def test_render_target_rayservice_passes_the_crd_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.render.test_rayservice import check

    code, out, _ = run(capsys, "render", "--target", "rayservice", "configs/isvc/canary.yaml")
    assert code == 0
    manifest = yaml.safe_load(out)
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayService"
    check(manifest)  # the RayService CRD schema, and no key it does not name
    serve = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    assert [a["import_path"] for a in serve["applications"]][-1] == "pipelines.app:build_ingress"
