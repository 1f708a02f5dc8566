"""The HTTP adapter: KServe V1 and V2 (Open Inference Protocol) routes over the data plane, no Ray.

``create_app(models)`` returns a Starlette ASGI app over ``{name: ModelPipeline}``;
Ray hosts it in the ingress replica, tests drive it with ``httpx.ASGITransport``. Every
error is an :class:`~pipelines.errors.ISVCError` raised by a route and turned into
``{"error": "..."}`` with its status by one handler.

Example::

    app = create_app({"churn": pipeline})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await c.post("/v1/models/churn:predict", json={"instances": [[1, 2, 3, 4, 5]]})
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from time import perf_counter
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipelines.dataplane.metrics import recorder
from pipelines.dataplane.pipeline import REQUEST_INFO, TAG_HEADER, ModelPipeline, require_dict
from pipelines.errors import (
    InternalError,
    ISVCError,
    ModelNotFound,
    ModelNotReady,
    NotConfigured,
    PayloadTooLarge,
    RequestTimeout,
    ServerOverloaded,
)
from pipelines.plan import DEFAULT_MAX_BODY_BYTES
from pipelines.protocol import (
    BINARY_CONTENT_TYPE,
    HEADER,
    BinaryBody,
    InferRequest,
    decode_request,
    decode_v1,
    dumps,
    parse_json,
)

__all__ = ["create_app", "SERVER_NAME", "server_version"]

logger = logging.getLogger("isvc.dataplane")

SERVER_NAME = "isvc"
REVISION_HEADER = "isvc-revision"
"""Response header: the name of the predictor revision that served the request."""
EXTENSIONS = ["binary_tensor_data"]
"""V2 protocol extensions this server implements (``GET /v2``)."""

Handler = Callable[[Request], Awaitable[Any]]


def server_version() -> str:
    """The installed ``isvc`` package's version (package metadata, one source of truth)."""
    try:
        return version("isvc")
    except PackageNotFoundError:  # pragma: no cover - running from a tree that is not installed
        return "0+unknown"


def json_response(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json")


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n % 2**20 == 0 else f"{n} bytes"


def create_app(
    models: Mapping[str, ModelPipeline],
    max_inflight: int | None = None,
    timeout_s: float | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    extra_routes: list[Route] | None = None,
) -> Starlette:
    """Build the V1/V2 ASGI app over ``models`` (name → :class:`ModelPipeline`).

    ``max_inflight``: more predict/infer/explain requests in flight answer 503 at once.
    ``timeout_s`` (the component's ``timeout``): a slower one answers 504 (explanations have
    the explainer's own time limit).
    ``max_body_bytes``: a larger request body answers 413.
    ``extra_routes`` come after the V1/V2 routes, under the same error handling (e.g. the V2
    model repository of :mod:`pipelines.multimodel`). ``models`` may be a live mapping: a model
    added to it later is served at once.
    """
    inflight = 0
    too_large = (
        f"is over this service's limit of {_size(max_body_bytes)}; raise it with the annotation "
        'isvc.dev/max-body-size (e.g. "256Mi") on the InferenceService'
    )

    def model(request: Request, ready: bool = True) -> ModelPipeline:
        name = request.path_params["name"]
        pipe = models.get(name)
        if pipe is None:
            raise ModelNotFound(name)
        version = request.path_params.get("version")
        if version is not None and version != pipe.version:
            raise ModelNotFound(f"{name}/versions/{version}")
        if ready and not pipe.ready:
            raise ModelNotReady(name)
        return pipe

    def own_timeout(request: Request) -> bool:
        """An explainer's requests run under the explainer's ``timeout``, not this one."""
        return bool(getattr(models.get(request.path_params.get("name", "")), "timeout_handled", False))

    def endpoint(
        fn: Handler, limited: bool = False, timed: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        route = fn.__name__  # the endpoint label of the request metrics: v1_predict, v2_infer, ...

        async def handle(request: Request) -> Response:
            start = perf_counter()
            status = 500
            try:
                response = await serve(request)
                status = response.status_code
                return response
            except ISVCError as exc:
                status = exc.status_code
                raise
            except asyncio.CancelledError:
                status = 499  # the client went away (nginx's "client closed request")
                raise
            finally:
                name = request.path_params.get("name", "")
                recorder().count(name if name in models else "", route, status, perf_counter() - start)

        async def serve(request: Request) -> Response:
            nonlocal inflight
            if limited and max_inflight is not None and inflight >= max_inflight:
                raise ServerOverloaded(f"server overloaded: {inflight} requests in flight")
            inflight += 1
            info: dict[str, Any] = {"force_tag": request.headers.get(TAG_HEADER)}
            REQUEST_INFO.set(info)  # this request's task; the router writes which revision served
            try:
                if limited and timed and timeout_s and not own_timeout(request):
                    try:
                        result = await asyncio.wait_for(fn(request), timeout_s)
                    except TimeoutError:
                        raise RequestTimeout(
                            f"request took longer than the timeout of {timeout_s:g}s"
                        ) from None
                else:
                    result = await fn(request)
            except ISVCError:
                raise
            except Exception as exc:  # last resort: the server keeps serving
                logger.exception("unhandled error on %s", request.url.path)
                raise InternalError(f"internal error: {type(exc).__name__}: {exc}") from exc
            finally:
                inflight -= 1
            response = result if isinstance(result, Response) else json_response(result)
            if "served_by" in info:
                response.headers[TAG_HEADER] = info["served_by"]
                response.headers[REVISION_HEADER] = info["revision"]
            return response

        return handle

    async def raw_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise PayloadTooLarge(f"request body of {int(declared)} bytes {too_large}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise PayloadTooLarge(f"request body {too_large}")
            chunks.append(chunk)
        return b"".join(chunks)

    async def body_of(request: Request) -> Any:
        return parse_json(await raw_body(request))

    # ---- V1 ---------------------------------------------------------------------------
    async def v1_list(request: Request) -> Any:
        return {"models": list(models)}

    async def v1_model(request: Request) -> Any:
        pipe = model(request, ready=False)
        status = pipe.status() if hasattr(pipe, "status") else {}
        return {"name": pipe.name, "ready": pipe.ready, **status}

    async def v1_predict(request: Request) -> Any:
        pipe = model(request)
        body = decode_v1(await body_of(request))
        return await pipe.predict_v1(body, dict(request.headers))

    async def v1_explain(request: Request) -> Any:
        pipe = model(request)
        body = decode_v1(await body_of(request))
        return await pipe.explain_v1(body, dict(request.headers))

    # ---- V2 ---------------------------------------------------------------------------
    async def v2_server(request: Request) -> Any:
        return {"name": SERVER_NAME, "version": server_version(), "extensions": EXTENSIONS}

    async def v2_live(request: Request) -> Any:
        return {"live": True}

    async def v2_ready(request: Request) -> Any:
        ready = all(p.ready for p in models.values())
        return json_response({"ready": ready}, 200 if ready else 503)

    async def v2_metadata(request: Request) -> Any:
        return await model(request, ready=False).metadata_v2()

    async def v2_model_ready(request: Request) -> Any:
        pipe = model(request, ready=False)
        return json_response({"name": pipe.name, "ready": pipe.ready}, 200 if pipe.ready else 503)

    async def v2_infer(request: Request) -> Any:
        pipe = model(request)
        raw = await raw_body(request)
        header_length = request.headers.get(HEADER)
        if header_length is None:
            body = parse_json(raw)
        else:  # binary tensor data extension: JSON header, then raw tensor bytes
            body = decode_request(raw, header_length)
        infer_request = InferRequest.from_json(require_dict(body))
        result = await pipe.infer_v2(infer_request, dict(request.headers))
        if isinstance(result, BinaryBody):
            return Response(
                result.body,
                media_type=BINARY_CONTENT_TYPE,
                headers={HEADER: str(result.json_length)},
            )
        return result

    async def root(request: Request) -> Any:
        return {"status": "alive"}

    routes = [
        Route("/", endpoint(root)),
        Route("/v1/models", endpoint(v1_list)),
        Route("/v1/models/{name}", endpoint(v1_model)),
        Route("/v1/models/{name}:predict", endpoint(v1_predict, limited=True), methods=["POST"]),
        Route("/v1/models/{name}:explain", endpoint(v1_explain, limited=True, timed=False), methods=["POST"]),
        Route("/v2", endpoint(v2_server)),
        Route("/v2/health/live", endpoint(v2_live)),
        Route("/v2/health/ready", endpoint(v2_ready)),
    ]
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            Route(prefix, endpoint(v2_metadata)),
            Route(prefix + "/ready", endpoint(v2_model_ready)),
            Route(prefix + "/infer", endpoint(v2_infer, limited=True), methods=["POST"]),
        ]

    async def isvc_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ISVCError)
        if exc.status_code >= 500 and not isinstance(exc, NotConfigured):
            logger.warning("%s %s: %s", request.method, request.url.path, exc)
        return error_response(exc.status_code, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error_response(404, f"no route for {request.method} {request.url.path}")
        if exc.status_code == 405:
            return error_response(405, f"method {request.method} not allowed on {request.url.path}")
        return error_response(exc.status_code, str(exc.detail))

    routes += extra_routes or []
    return Starlette(routes=routes, exception_handlers={ISVCError: isvc_error, HTTPException: http_error})
