"""``isvc apply / get / delete / predict / explain``: InferenceServices on a running Ray cluster,
as ``kubectl`` has them on Kubernetes (the logic is :mod:`pipelines.control.services`, shared
with the SDK's ``KServeClient``)::

    $ isvc apply configs/isvc/churn.yaml               # deploy (routed layout), wait until Ready
    $ isvc get                                         # NAME URL READY PREV LATEST AGE + replicas
    $ isvc get churn-classifier -n ml-serving -o yaml  # KServe-shaped status (conditions, traffic)
    $ isvc predict churn-classifier --data @row.json   # POST :predict, print the answer
    $ isvc delete churn-classifier -n ml-serving

The cluster is found as Ray's CLI finds it (``RAY_DASHBOARD_ADDRESS``, an ``http://``
``RAY_ADDRESS``, else http://127.0.0.1:8265), with its token. Exit status: 0 ok, 1 invalid
input (or no such service), 2 the cluster cannot be reached or refused, 3 timed out / not ready.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from pipelines.control.dashboard import DashboardError
from pipelines.control.plane import ControlPlane
from pipelines.control.services import ControlError, NotFound, read_documents
from pipelines.control.status import traffic_summary
from pipelines.errors import SpecError

__all__ = ["add_commands", "format_age", "table_rows"]

OK, INVALID, UNREACHABLE, NOT_READY = 0, 1, 2, 3

try:  # rich tables and a spinner when installed; plain text otherwise
    from rich.console import Console
    from rich.table import Table
except ImportError:  # pragma: no cover - rich comes with ray[serve]
    Console = None  # type: ignore[assignment,misc]
    Table = None  # type: ignore[assignment,misc]


def format_age(created: str | None, now: float | None = None) -> str:
    """``kubectl``'s AGE: 45s, 5m12s, 3h4m, 2d3h.

    >>> format_age("2026-01-01T00:00:00Z", now=1767225600 + 312)
    '5m12s'
    """
    if not created:
        return "<unknown>"
    import datetime as dt

    try:
        then = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return "<unknown>"
    s = max(0, int((time.time() if now is None else now) - then))
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def _ready(obj: dict[str, Any]) -> str:
    cond: dict[str, Any] = next(
        (c for c in obj["status"].get("conditions", []) if c.get("type") == "Ready"), {}
    )
    return str(cond.get("status", "Unknown"))


def table_rows(objs: list[dict[str, Any]], wide: bool = False, namespaces: bool = True) -> list[list[str]]:
    """The ``isvc get`` table (header first): ``kubectl get isvc``'s columns, then replicas."""
    head = ["NAME", "URL", "READY", "PREV", "LATEST"]
    if wide:
        head += ["PREVROLLEDOUTREVISION", "LATESTREADYREVISION"]
    head += ["AGE", "PREDICTOR", "INGRESS", "EXPLAINER"]
    if namespaces:
        head.insert(0, "NAMESPACE")
    rows = [head]
    for obj in objs:
        status = obj["status"]
        prev, latest = traffic_summary(obj)
        traffic = status["components"]["predictor"].get("traffic") or []
        reps = status.get("replicas") or {}
        by_rev = reps.get("predictor") or {}
        predictor = "+".join(str(by_rev.get(t["revisionName"], 0)) for t in traffic) or "0"
        row = [obj["metadata"]["name"], status["url"], _ready(obj), prev, latest]
        if wide:
            row += [
                next((t["revisionName"] for t in traffic if t.get("tag") == "prev"), ""),
                status["components"]["predictor"].get("latestReadyRevision", ""),
            ]
        explainer = str(reps["explainer"]) if "explainer" in reps else "-"
        row += [format_age(obj["metadata"].get("creationTimestamp")), predictor, str(reps.get("ingress", 0))]
        row.append(explainer)
        if namespaces:
            row.insert(0, obj["metadata"]["namespace"])
        rows.append(row)
    return rows


def _print_table(rows: list[list[str]]) -> None:
    if Table is not None and Console is not None:
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for col in rows[0]:
            table.add_column(col, no_wrap=True, overflow="fold")
        for row in rows[1:]:
            table.add_row(*row)
        width = sum(max(len(r[i]) for r in rows) for i in range(len(rows[0]))) + 2 * len(rows[0])
        Console(width=max(80, width)).print(table)
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@contextlib.contextmanager
def _spinner(text: str) -> Iterator[Any]:
    """A spinner on stderr while waiting (rich's status; nothing without a terminal)."""
    if Console is None or not sys.stderr.isatty():

        class _Quiet:
            def update(self, _text: str) -> None:
                pass

        yield _Quiet()
        return
    with Console(stderr=True).status(text) as status:
        yield status


def _plane(args: argparse.Namespace) -> ControlPlane:
    return ControlPlane(http_host=getattr(args, "host", None), http_port=getattr(args, "port", None))


def _waiting_line(objs: list[dict[str, Any]]) -> str:
    parts = []
    for obj in objs:
        failing = [c for c in obj["status"]["conditions"] if c["status"] != "True" and c["type"] != "Ready"]
        what = ", ".join(f"{c['type']} ({c.get('reason', '')})" for c in failing) or "Ready"
        for dl in (obj["status"].get("modelStatus") or {}).get("downloads") or []:
            if not dl.get("done"):
                got = f"{dl['percent']:.0f}%" if dl.get("percent") is not None else f"{dl['bytes']} bytes"
                what += f", downloading {dl['uri']} {got}"
        parts.append(f"{obj['metadata']['name']}: {what}")
    return "waiting — " + "; ".join(parts)


def _apply(args: argparse.Namespace) -> int:
    items = read_documents(args.file)
    plane = _plane(args)
    details = plane.details()
    running = details.get("http_options") if details.get("controller_info") else None
    if running and (args.port or args.host):
        print(
            f"isvc: Serve already listens on {running.get('host')}:{running.get('port')}; "
            "--host/--port ignored",
            file=sys.stderr,
        )
    results = plane.apply(items)
    for r in results:
        print(f"inferenceservice.serving.kserve.io/{r.name} {r.action} (namespace {r.namespace})")
        for entry in r.table:
            print(f"  {entry['tag']:<7} {entry['percent']:>5}%  {entry['app']}")
    if not args.wait:
        return OK
    keys = [(r.namespace, r.name) for r in results]
    with _spinner("waiting for the applications") as spin:
        try:
            objs = plane.wait_ready(keys, args.timeout, on_poll=lambda objs: spin.update(_waiting_line(objs)))
        except TimeoutError as exc:
            objs = exc.args[1] if len(exc.args) > 1 else []
            print(f"isvc: {exc.args[0]}", file=sys.stderr)
            for obj in objs:
                for c in obj["status"]["conditions"]:
                    if c["status"] != "True":
                        name, why = obj["metadata"]["name"], f"{c.get('reason', '')} {c.get('message', '')}"
                        print(f"  {name}: {c['type']}: {why}", file=sys.stderr)
            return NOT_READY
    _print_table(table_rows(objs))
    return OK


def _get(args: argparse.Namespace) -> int:
    plane = _plane(args)
    if args.name:
        objs = [plane.get(args.name, args.namespace)]
    else:
        objs = plane.services(args.namespace)
    if args.output in ("yaml", "json"):
        body: Any = objs[0] if args.name else {"apiVersion": "v1", "kind": "List", "items": objs}
        if args.output == "json":
            print(json.dumps(body, indent=2))
        else:
            print(yaml.safe_dump(body, sort_keys=False).rstrip())
        return OK
    if not objs:
        where = f" in namespace {args.namespace}" if args.namespace else ""
        print(f"No InferenceServices found{where}.", file=sys.stderr)
        return OK
    _print_table(table_rows(objs, wide=args.output == "wide", namespaces=args.namespace is None))
    return OK


def _resolve(plane: ControlPlane, name: str, namespace: str | None) -> dict[str, Any]:
    return plane.get(name, namespace)


def _delete(args: argparse.Namespace) -> int:
    plane = _plane(args)
    obj = _resolve(plane, args.name, args.namespace)
    ns = obj["metadata"]["namespace"]
    plane.delete(args.name, ns)
    print(f'inferenceservice.serving.kserve.io "{args.name}" deleted (namespace {ns})')
    if not args.wait:
        return OK
    gone = set(obj["status"]["applications"])
    deadline = time.monotonic() + args.timeout
    with _spinner(f"waiting for {len(gone)} applications to stop"):
        while gone & set(plane.details().get("applications") or {}):
            if time.monotonic() > deadline:
                print(f"isvc: applications still deleting after {args.timeout:g}s", file=sys.stderr)
                return NOT_READY
            time.sleep(1)
    return OK


def _data(value: str) -> bytes:
    if value == "-":
        return sys.stdin.buffer.read()
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_bytes()
        except OSError as exc:
            raise SpecError([f"--data {value}: cannot read ({exc.strerror or exc})"]) from None
    return value.encode()


def _post(args: argparse.Namespace, verb: str) -> int:
    raw = _data(args.data)
    try:
        json.loads(raw)
    except ValueError as exc:
        raise SpecError([f"--data: not JSON ({exc})"]) from None
    plane = _plane(args)
    obj = _resolve(plane, args.name, args.namespace)
    root = obj["status"]["address"]["url"]
    name = obj["metadata"]["name"]
    if verb == "explain":
        url = f"{root}/v1/models/{name}:explain"
    else:
        url = f"{root}/v2/models/{name}/infer" if args.v2 else f"{root}/v1/models/{name}:predict"
    try:
        r = httpx.post(url, content=raw, headers={"content-type": "application/json"}, timeout=args.timeout)
    except httpx.TimeoutException as exc:
        print(f"isvc: {url}: no answer after {args.timeout:g}s ({type(exc).__name__})", file=sys.stderr)
        return NOT_READY
    except httpx.HTTPError as exc:
        print(f"isvc: cannot reach {url}: {exc}", file=sys.stderr)
        return UNREACHABLE
    try:
        text = json.dumps(r.json(), indent=2)
    except ValueError:
        text = r.text
    if r.status_code >= 400:
        print(f"isvc: {r.status_code} from {url}\n{text}", file=sys.stderr)
        return NOT_READY if r.status_code in (503, 504) else INVALID
    print(text)
    return OK


def _guard(func: Any) -> Any:
    """Errors → messages and exit statuses (0 ok, 1 invalid, 2 unreachable/refused, 3 not ready)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except SpecError as exc:
            print(f"isvc {args.command}: {exc}", file=sys.stderr)
            return INVALID
        except NotFound as exc:
            print(f"Error from server (NotFound): {exc}", file=sys.stderr)
            return INVALID
        except ControlError as exc:
            print(f"isvc {args.command}: {exc}", file=sys.stderr)
            return INVALID
        except DashboardError as exc:
            print(f"isvc {args.command}: {exc}", file=sys.stderr)
            return UNREACHABLE
        except TimeoutError as exc:
            print(f"isvc {args.command}: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return NOT_READY

    return run


def add_commands(sub: Any) -> None:
    """Register ``apply``, ``get``, ``delete``, ``predict``, ``explain`` on the ``isvc`` parser."""
    apply = sub.add_parser("apply", help="deploy FILE's InferenceServices to the running Ray cluster")
    apply.add_argument(
        "file", metavar="FILE", help="InferenceService YAML (one or several) or a Serve config"
    )
    apply.add_argument(
        "--wait", action=argparse.BooleanOptionalAction, default=True, help="wait until Ready (default)"
    )
    apply.add_argument("--timeout", type=float, default=300, help="seconds to wait (default 300)")
    apply.add_argument("--host", default=None, help="Serve's HTTP host if this starts Serve (else kept)")
    apply.add_argument("--port", type=int, default=None, help="Serve's HTTP port if this starts Serve")
    apply.set_defaults(func=_guard(_apply))

    get = sub.add_parser("get", help="InferenceServices on the cluster (kubectl get inferenceservice)")
    get.add_argument("name", nargs="?", metavar="NAME")
    get.add_argument("-n", "--namespace", default=None, help="one namespace (default: all)")
    get.add_argument("-o", "--output", choices=("yaml", "json", "wide"), default=None)
    get.set_defaults(func=_guard(_get))

    delete = sub.add_parser("delete", help="remove an InferenceService's applications (the rest stay)")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("-n", "--namespace", default=None)
    delete.add_argument(
        "--wait", action=argparse.BooleanOptionalAction, default=True, help="wait until its apps are gone"
    )
    delete.add_argument("--timeout", type=float, default=120)
    delete.set_defaults(func=_guard(_delete))

    for verb, text in (("predict", "POST :predict (or V2 /infer)"), ("explain", "POST :explain")):
        cmd = sub.add_parser(verb, help=f"{text} to the service and print the JSON answer")
        cmd.add_argument("name", metavar="NAME")
        cmd.add_argument("-n", "--namespace", default=None)
        cmd.add_argument("--data", "-d", required=True, help="JSON: '{...}', @file.json or - (stdin)")
        cmd.add_argument("--timeout", type=float, default=60)
        if verb == "predict":
            cmd.add_argument("--v2", action="store_true", help="V2: POST /v2/models/NAME/infer")
        cmd.set_defaults(func=_guard(lambda a, v=verb: _post(a, v)))
