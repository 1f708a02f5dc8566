"""The ``isvc`` console script: what Ray's own CLI cannot do with an InferenceService.

FILE is an InferenceService YAML, or a Serve config whose ``applications[*].args`` hold
``isvc:`` (inline, or a path relative to the config)::

    $ isvc validate k8s/sklearn-isvc.yaml          # the plan it would run, and what is ignored
    $ isvc render k8s/sklearn-isvc.yaml > serve.yaml && serve run serve.yaml
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

from pipelines._planner import build_plan
from pipelines.errors import SpecError
from pipelines.plan import ServicePlan
from pipelines.spec import InferenceService, isvc_from_serve_args, load_isvc

__all__ = ["main", "load_file", "render_serve_config", "IMPORT_PATH"]

IMPORT_PATH = "pipelines.app:build"
"""The Serve ``import_path`` of isvc's application builder."""

Entry = tuple[dict[str, Any], InferenceService]
"""A Serve application entry (``{}`` for a bare InferenceService file) and its InferenceService."""


def load_file(path: str | Path, name: str | None = None) -> list[Entry]:
    """The InferenceServices in FILE, each with its Serve application entry.

    >>> [isvc.metadata.name for _, isvc in load_file("configs/churn.yaml")]
    ['churn-classifier']
    """
    path = Path(path)
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except OSError as exc:
        raise SpecError([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{path}: not valid YAML: {exc}"]) from None
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
        try:
            entries.append((app, isvc_from_serve_args(app.get("args"), base_dir=path.parent)))
        except SpecError as exc:
            problems += [f"{where} ({app.get('name', '?')}): {line}" for line in exc.problems]
    if problems:
        raise SpecError(problems)
    if name is not None:
        entries = [e for e in entries if e[1].metadata.name == name]
        if not entries:
            raise SpecError([f"no application serves an InferenceService named {name!r}"])
    return entries


def render_serve_config(entries: list[Entry], host: str = "0.0.0.0", port: int = 8000) -> dict[str, Any]:
    """A Ray Serve config that runs the InferenceServices with :data:`IMPORT_PATH`, each inline.

    >>> render_serve_config([({}, isvc)])["applications"][0]["import_path"]
    'pipelines.app:build'
    """
    apps = []
    for app, isvc in entries:
        plan = build_plan(isvc)
        rendered = {"name": plan.app_name, "route_prefix": "/", **app}
        rendered.update(import_path=IMPORT_PATH, args={"isvc": isvc.to_dict()})
        apps.append(rendered)
    return {"proxy_location": "EveryNode", "http_options": {"host": host, "port": port}, "applications": apps}


def _plan_dict(plan: ServicePlan) -> dict[str, Any]:
    body = json.loads(json.dumps(dataclasses.asdict(plan)))
    body.pop("ignored_fields")
    return {"app_name": plan.app_name, **body}


def _validate(args: argparse.Namespace) -> int:
    entries = load_file(args.file, args.name)
    plans = [build_plan(isvc) for _, isvc in entries]
    if args.json:
        out = [{"plan": _plan_dict(p), "ignored": list(p.ignored_fields)} for p in plans]
        print(json.dumps(out if len(out) > 1 else out[0], indent=2))
        return 0
    for plan in plans:
        print(f"# {plan.namespace}/{plan.name}: valid (Serve application {plan.app_name})")
        print(yaml.safe_dump(_plan_dict(plan), sort_keys=False).rstrip())
        if plan.ignored_fields:
            print("# ignored (no meaning outside Kubernetes):")
            print("\n".join(f"#   - {path}" for path in plan.ignored_fields))
    return 0


def _render(args: argparse.Namespace) -> int:
    config = render_serve_config(load_file(args.file, args.name), host=args.host, port=args.port)
    print(yaml.safe_dump(config, sort_keys=False).rstrip())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isvc", description="KServe InferenceService YAML on Ray Serve.")
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check FILE and print the plan it would run")
    validate.add_argument("--json", action="store_true", help="print the plan as JSON")
    render = sub.add_parser("render", help="print the Ray Serve config that runs FILE")
    render.add_argument("--host", default="0.0.0.0", help="HTTP host (default 0.0.0.0)")
    render.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    for command, func in ((validate, _validate), (render, _render)):
        command.add_argument("file", metavar="FILE", help="InferenceService YAML or Serve config")
        command.add_argument("--name", help="pick this InferenceService when FILE holds several")
        command.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``isvc`` command line; returns the exit status (0 ok, 1 invalid input).

    >>> main(["validate", "k8s/sklearn-isvc.yaml"])
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
