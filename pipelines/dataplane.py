"""The HTTP data plane: KServe V1 and V2 (Open Inference Protocol) routes, no Ray.

``create_app(models)`` returns a Starlette ASGI app over ``{name: ModelPipeline}``;
Ray hosts it in the ingress replica, tests drive it with ``httpx.ASGITransport``.

Example::

    app = create_app({"churn": pipeline})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await c.post("/v1/models/churn:predict", json={"instances": [[1, 2, 3, 4, 5]]})
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipelines._binary import BINARY_CONTENT_TYPE, HEADER, BinaryBody, decode_request
from pipelines._pipeline import ModelPipeline, require_dict
from pipelines.errors import ISVCError, ModelNotFound, ModelNotReady, RequestTimeout
from pipelines.protocol import InferRequest, decode_v1, dumps, parse_json

__all__ = ["create_app", "SERVER_NAME", "SERVER_VERSION"]

logger = logging.getLogger("isvc.dataplane")

SERVER_NAME = "isvc"
SERVER_VERSION = "0.1.0"

Handler = Callable[[Request], Awaitable[Any]]


def json_response(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json")


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


class _Limiter:
    """Back-pressure: more than ``limit`` requests in flight answer 503 at once."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.inflight = 0


def create_app(
    models: Mapping[str, ModelPipeline], max_inflight: int | None = None, timeout_s: float | None = None
) -> Starlette:
    """Build the V1/V2 ASGI app over ``models`` (name → :class:`ModelPipeline`).

    ``max_inflight``: more predict/infer requests in flight answer 503 at once.
    ``timeout_s`` (the component's ``timeout``): a slower predict/infer answers 504.
    """
    limiter = _Limiter(max_inflight)

    def model(request: Request, ready: bool = True) -> ModelPipeline:
        name = request.path_params["name"]
        pipe = models.get(name)
        if pipe is None:
            raise ModelNotFound(name)
        version = request.path_params.get("version")
        if version is not None and pipe.version is not None and version != pipe.version:
            raise ModelNotFound(f"{name}/versions/{version}")
        if ready and not pipe.ready:
            raise ModelNotReady(name)
        return pipe

    def endpoint(fn: Handler, limited: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            if limited and limiter.limit is not None and limiter.inflight >= limiter.limit:
                return error_response(503, f"server overloaded: {limiter.inflight} requests in flight")
            limiter.inflight += 1
            try:
                if limited and timeout_s:
                    try:
                        result = await asyncio.wait_for(fn(request), timeout_s)
                    except asyncio.TimeoutError:
                        raise RequestTimeout(
                            f"request took longer than the timeout of {timeout_s:g}s"
                        ) from None
                else:
                    result = await fn(request)
            except ISVCError as exc:
                if exc.status_code >= 500:
                    logger.warning("%s %s: %s", request.method, request.url.path, exc)
                return error_response(exc.status_code, exc.message)
            except Exception as exc:  # last resort: the server keeps serving
                logger.exception("unhandled error on %s", request.url.path)
                return error_response(500, f"internal error: {type(exc).__name__}: {exc}")
            finally:
                limiter.inflight -= 1
            return result if isinstance(result, Response) else json_response(result)

        return handle

    async def body_of(request: Request) -> Any:
        return parse_json(await request.body())

    # ---- V1 ---------------------------------------------------------------------------
    async def v1_list(request: Request) -> Any:
        return {"models": list(models)}

    async def v1_model(request: Request) -> Any:
        pipe = model(request, ready=False)
        return {"name": pipe.name, "ready": pipe.ready}

    async def v1_predict(request: Request) -> Any:
        pipe = model(request)
        body = decode_v1(await body_of(request))
        return await pipe.predict_v1(body, dict(request.headers))

    # ---- V2 ---------------------------------------------------------------------------
    async def v2_server(request: Request) -> Any:
        return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": ["binary_tensor_data"]}

    async def v2_live(request: Request) -> Any:
        return {"live": True}

    async def v2_ready(request: Request) -> Any:
        ready = all(p.ready for p in models.values())
        return json_response({"ready": ready}, 200 if ready else 503)

    async def v2_metadata(request: Request) -> Any:
        return model(request, ready=False).metadata_v2()

    async def v2_model_ready(request: Request) -> Any:
        pipe = model(request, ready=False)
        return json_response({"name": pipe.name, "ready": pipe.ready}, 200 if pipe.ready else 503)

    async def v2_infer(request: Request) -> Any:
        pipe = model(request)
        header_length = request.headers.get(HEADER)
        if header_length is None:
            body = await body_of(request)
        else:  # binary tensor data extension: JSON header, then raw tensor bytes
            body = decode_request(await request.body(), header_length)
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

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error_response(404, f"no route for {request.method} {request.url.path}")
        if exc.status_code == 405:
            return error_response(405, f"method {request.method} not allowed on {request.url.path}")
        return error_response(exc.status_code, str(exc.detail))

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
