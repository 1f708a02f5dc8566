"""The ``isvc`` console script: what Ray's own CLI cannot do with an InferenceService.

FILE is an InferenceService YAML, or a Serve config whose ``applications[*].args`` hold the
InferenceService (itself, or ``isvc:`` inline or a path relative to the working directory)::

    $ isvc validate tests/fixtures/specs/good/seed_sklearn_churn.yaml   # the plan, what is ignored
    $ isvc render configs/isvc/churn.yaml > serve.yaml && serve deploy serve.yaml
    $ isvc render --target rayservice configs/isvc/churn.yaml > rayservice.yaml   # KubeRay
    $ isvc serve configs/isvc/churn.yaml           # Ray's `serve run` with isvc's Serve settings
    $ isvc apply configs/isvc/churn.yaml && isvc get   # on a running cluster (pipelines/cli/control.py)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import SpecError
from pipelines.plan import ServicePlan, build_plan
from pipelines.plan.layout import EXPLAINER_IMPORT
from pipelines.spec import InferenceService, isvc_from_serve_args, load_isvc

__all__ = ["main", "load_file", "render_serve_config", "serve_command", "IMPORT_PATH"]

IMPORT_PATH = "pipelines.app:build"
"""The Serve ``import_path`` of isvc's application builder."""

Entry = tuple[dict[str, Any], InferenceService]
"""A Serve application entry (``{}`` for a bare InferenceService file) and its InferenceService."""


def read_documents(path: Path) -> list[Any]:
    """The non-empty YAML documents of FILE; an unreadable file or bad YAML is a SpecError."""
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except OSError as exc:
        raise SpecError([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{path}: not valid YAML: {exc}"]) from None


def load_file(path: str | Path, name: str | None = None) -> list[Entry]:
    """The InferenceServices in FILE, each with its Serve application entry.

    Relative ``isvc:`` paths resolve against the working directory, as ``serve run`` resolves them.

    >>> [isvc.metadata.name for _, isvc in load_file("configs/churn.yaml")]
    ['churn-classifier']
    """
    path = Path(path)
    docs = read_documents(path)
    if not (len(docs) == 1 and isinstance(docs[0], dict) and "applications" in docs[0]):
        return [({}, load_isvc(path, name=name))]
    apps = docs[0]["applications"]
    if not isinstance(apps, list) or not apps:
        raise SpecError(["applications: expected a non-empty list"])
    entries: list[Entry] = []
    problems: list[str] = []
    for i, app in enumerate(apps):
        where = f"applications[{i}]"
        if not isinstance(app, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        if app.get("import_path") == EXPLAINER_IMPORT:  # the explainer of a service listed beside it
            continue
        args = app.get("args")
        if isinstance(args, dict) and "explainer_app" in args:  # where that explainer is: a builder's key
            args = {k: v for k, v in args.items() if k != "explainer_app"}
        try:
            entries.append((app, isvc_from_serve_args(args)))
        except SpecError as exc:
            problems += [f"{where} ({app.get('name', '?')}): {line}" for line in exc.problems]
    if problems:
        raise SpecError(problems)
    if name is not None:
        entries = [e for e in entries if e[1].metadata.name == name]
        if not entries:
            raise SpecError([f"no application serves an InferenceService named {name!r}"])
    return entries


LAYOUTS = ("routed", "single")
"""``routed``: one Serve application per predictor revision, the explainer and the ingress, the
traffic table in the ingress's ``user_config`` (:mod:`pipelines.plan.layout`; canary steps are
light updates). ``single``: everything in one application (:data:`IMPORT_PATH`), as
``configs/churn.yaml``. A collocated service is always ``single`` (its model is in the ingress)."""


def render_serve_config(
    entries: list[Entry], host: str = "0.0.0.0", port: int = 8000, layout: str = "single"
) -> dict[str, Any]:
    """A Ray Serve config that runs the InferenceServices, each inline.

    >>> render_serve_config(load_file("configs/isvc/churn.yaml"))["applications"][0]["import_path"]
    'pipelines.app:build'
    >>> [a["import_path"] for a in render_serve_config(load_file("configs/isvc/churn.yaml"), layout="routed")
    ...  ["applications"]][-1]
    'pipelines.app:build_ingress'
    """
    from pipelines.plan.layout import routed_apps, with_direct_explainer

    if layout not in LAYOUTS:
        raise SpecError([f"--layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}"])
    apps = []
    for app, isvc in entries:
        plan = build_plan(isvc)
        if layout == "routed" and not plan.collocate:
            apps += routed_apps(isvc, extra=app, app_name=app.get("name"))
            continue
        rendered = {"name": plan.app_name, "route_prefix": "/", **app}
        rendered.update(import_path=IMPORT_PATH, args={"isvc": isvc.to_dict()})
        apps += with_direct_explainer(rendered, plan)
    return {"proxy_location": "EveryNode", "http_options": {"host": host, "port": port}, "applications": apps}


def _plan_dict(plan: ServicePlan) -> dict[str, Any]:
    body = json.loads(json.dumps(dataclasses.asdict(plan)))
    body.pop("ignored_fields")
    body.pop("notes")
    return {"app_name": plan.app_name, **body}


def _validate(args: argparse.Namespace) -> int:
    from pipelines.dataplane import check_transformer  # imports the transformer class, not its artifacts

    entries = load_file(args.file, args.name)
    plans = [build_plan(isvc) for _, isvc in entries]
    checks = [(found, [*p.notes, *notes]) for p, (found, notes) in ((p, check_transformer(p)) for p in plans)]
    problems = [line for found, _ in checks for line in found]
    if problems:
        raise SpecError(problems)
    if args.json:
        out = [
            {"plan": _plan_dict(p), "ignored": list(p.ignored_fields), "notes": notes}
            for p, (_, notes) in zip(plans, checks, strict=True)
        ]
        print(json.dumps(out if len(out) > 1 else out[0], indent=2))
        return 0
    for plan, (_, notes) in zip(plans, checks, strict=True):
        print(f"# {plan.namespace}/{plan.name}: valid (Serve application {plan.app_name})")
        print(yaml.safe_dump(_plan_dict(plan), sort_keys=False).rstrip())
        if plan.ignored_fields:
            print("# ignored (no meaning outside Kubernetes):")
            print("\n".join(f"#   - {path}" for path in plan.ignored_fields))
        if notes:
            print("# notes:")
            print("\n".join(f"#   - {line}" for line in notes))
    return 0


def _render(args: argparse.Namespace) -> int:
    entries = load_file(args.file, args.name)
    config = render_serve_config(entries, host=args.host, port=args.port, layout=args.layout)
    if args.target == "rayservice":
        from pipelines.render import rayservice, rayservice_yaml

        plans = [build_plan(isvc) for _, isvc in entries]  # one per InferenceService, sized once
        print(rayservice_yaml(rayservice(config, plans)).rstrip())
        return 0
    print(yaml.safe_dump(config, sort_keys=False).rstrip())
    return 0


def serve_command(
    file: str | Path,
    name: str | None = None,
    host: str = "0.0.0.0",
    port: int = 8000,
    extra: list[str] | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The ``serve run`` command line and environment ``isvc serve FILE`` execs.

    A Serve config runs as it is; a bare InferenceService (KServe's YAML, unchanged) is
    rendered into a Serve config in a temporary file first. The environment gets isvc's
    Serve settings (``pipelines/serve.env``) where it does not set them itself.
    """
    import os
    import shutil
    import tempfile

    from pipelines.settings import serve_env

    path = Path(file)
    entries = load_file(path, name)
    for _, isvc in entries:
        build_plan(isvc)  # fail here, with field paths, rather than inside a replica
    target = str(path)
    if not entries[0][0] or name is not None:  # a bare InferenceService, or one picked by name
        config = render_serve_config(entries, host=host, port=port)
        fd, target = tempfile.mkstemp(prefix="isvc-serve-", suffix=".yaml")
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump(config, out, sort_keys=False)
    serve = shutil.which("serve") or str(Path(sys.executable).with_name("serve"))
    return [serve, "run", target, *(extra or [])], serve_env(environ)


def _serve(args: argparse.Namespace) -> int:
    import os

    argv, env = serve_command(args.file, args.name, args.host, args.port, args.serve_args)
    print(f"isvc: {' '.join(argv)}", file=sys.stderr)
    os.execve(argv[0], argv, env)
    return 0  # pragma: no cover - execve does not return


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isvc", description="KServe InferenceService YAML on Ray Serve.")
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check FILE and print the plan it would run")
    validate.add_argument("--json", action="store_true", help="print the plan as JSON")
    render = sub.add_parser("render", help="print the Ray Serve config that runs FILE")
    render.add_argument("--host", default="0.0.0.0", help="HTTP host (default 0.0.0.0)")
    render.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    render.add_argument(
        "--target",
        choices=("serve", "rayservice"),
        default="serve",
        help="serve: a Ray Serve config (serve deploy/run); rayservice: a KubeRay ray.io/v1 RayService",
    )
    render.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="routed",
        help="routed (default): an application per predictor revision, canary steps without restarts; "
        "single: one application",
    )
    serve = sub.add_parser(
        "serve", help="run FILE with Ray's `serve run` and isvc's Serve settings (pipelines/serve.env)"
    )
    serve.add_argument("--host", default="0.0.0.0", help="HTTP host for a bare InferenceService")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port for a bare InferenceService")
    for command, func in ((validate, _validate), (render, _render), (serve, _serve)):
        command.add_argument("file", metavar="FILE", help="InferenceService YAML or Serve config")
        command.add_argument("--name", help="pick this InferenceService when FILE holds several")
        command.set_defaults(func=func)
    serve.add_argument("serve_args", nargs=argparse.REMAINDER, help="passed on to `serve run`")
    from pipelines.cli.control import add_commands  # apply, get, delete, predict, explain

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``isvc`` command line; returns the exit status (0 ok, 1 invalid input).

    >>> main(["validate", "configs/isvc/churn.yaml"])  # doctest: +ELLIPSIS
    # ml-serving/churn-classifier: valid ...
    0
    """
    args = _parser().parse_args(argv)
    spec_logger = logging.getLogger("pipelines.spec")
    level = spec_logger.level
    spec_logger.setLevel(logging.ERROR)  # ignored fields are printed by validate, not logged
    try:
        return int(args.func(args))
    except SpecError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    finally:
        spec_logger.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
