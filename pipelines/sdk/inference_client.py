"""``InferenceRESTClient`` with the call shapes of KServe's (``kserve/inference_client.py``):
asynchronous, over httpx, V1 or V2 chosen by :class:`RESTConfig`'s ``protocol``.

::

    async with InferenceRESTClient(RESTConfig(protocol="v2")) as c:
        out = await c.infer("http://127.0.0.1:8000", {"inputs": [...]}, model_name="churn-classifier")

What differs: a V2 ``infer`` takes and returns plain dicts (KServe uses ``InferRequest`` /
``InferResponse``); binary outputs (the tensor extension) come back decoded into ``data``
lists. ``base_url`` may also be an InferenceService's ``status.url``
(``…/v1/models/<name>``): the model path is taken off before the route is added.
``get_model_metadata`` is an addition (``GET /v2/models/<m>``, or ``/v1/models/<m>``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from pipelines.sdk.constants import INFERENCE_CONTENT_LENGTH_HEADER

__all__ = ["InferenceRESTClient", "RESTConfig", "UnsupportedProtocol"]


class UnsupportedProtocol(ValueError):
    def __init__(self, protocol_version: str) -> None:
        super().__init__(f"Unsupported protocol {protocol_version}")
        self.protocol_version = protocol_version


class RESTConfig:
    """Configuration of :class:`InferenceRESTClient` (KServe's ``RESTConfig``)."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        protocol: str = "v1",
        retries: int = 3,
        http2: bool = False,
        timeout: float | None | tuple[Any, ...] | httpx.Timeout = 60,
        cert: Any = None,
        verify: Any = True,
        auth: Any = None,
        verbose: bool = False,
    ) -> None:
        self.protocol = str(getattr(protocol, "value", protocol))
        self.retries, self.http2, self.timeout = retries, http2, timeout
        self.cert, self.verify, self.auth, self.verbose = cert, verify, auth, verbose
        self.transport = transport or httpx.AsyncHTTPTransport(retries=retries, http2=http2, verify=verify)


def _is_v1(protocol: str) -> bool:
    return protocol == "v1"


def _is_v2(protocol: str) -> bool:
    return protocol == "v2"


class InferenceRESTClient:
    """Asynchronous REST client of a KServe (or isvc) endpoint."""

    def __init__(self, config: RESTConfig | None = None) -> None:
        self._config = config or RESTConfig()
        self._client = httpx.AsyncClient(
            transport=self._config.transport,
            timeout=self._config.timeout,  # type: ignore[arg-type]
            auth=self._config.auth,
        )

    async def __aenter__(self) -> InferenceRESTClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.aclose()

    # ------------------------------------------------------------------------------------
    def _url(self, base_url: str | httpx.URL, relative: str, model_name: str | None = None) -> httpx.URL:
        base = httpx.URL(str(base_url))
        if base.scheme not in ("http", "https"):
            raise httpx.InvalidURL("Base url should have 'http://' or 'https://' protocol")
        path = base.path.rstrip("/")
        if model_name:
            for version in ("/v1", "/v2"):
                suffix = f"{version}/models/{model_name}"
                if path.endswith(suffix):  # an InferenceService's status.url
                    path = path[: -len(suffix)]
        return base.copy_with(path=f"{path}/{relative.lstrip('/')}" if relative else path or "/")

    @staticmethod
    def _status_error(response: httpx.Response) -> httpx.HTTPStatusError:
        message: Any = ""
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                message = response.json()
            except ValueError:
                message = response.text
            if isinstance(message, dict) and "error" in message:
                message = message["error"]
        text = f"{message}, '{response.status_code} {response.reason_phrase}' for url '{response.url}'"
        return httpx.HTTPStatusError(text, request=response.request, response=response)

    def _log(self, *parts: Any) -> None:
        if self._config.verbose:
            print(*parts)

    # ------------------------------------------------------------------------------------
    async def infer(
        self,
        base_url: str | httpx.URL,
        data: Mapping[str, Any] | bytes,
        model_name: str | None = None,
        headers: Mapping[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
        is_graph_endpoint: bool = False,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> dict[str, Any]:
        """POST ``data`` to ``:predict`` (V1) or ``/infer`` (V2); the answer as a dict.
        ``bytes`` data are sent as they are (a binary V2 request: set the header yourself)."""
        protocol = self._config.protocol
        if is_graph_endpoint:
            url = httpx.URL(str(base_url))
        elif model_name is None:
            raise ValueError("model_name should not be 'None'")
        elif _is_v1(protocol):
            url = self._url(base_url, f"v1/models/{model_name}:predict", model_name)
        elif _is_v2(protocol):
            url = self._url(base_url, f"v2/models/{model_name}/infer", model_name)
        else:
            raise UnsupportedProtocol(protocol)
        self._log("url:", url)
        content = data if isinstance(data, bytes) else json.dumps(data).encode()
        sent = {"content-type": "application/json", **(headers or {})}
        response = await self._client.post(url, content=content, headers=sent, timeout=timeout)
        self._log("response:", response.status_code, response.text[:2000])
        if not response.is_success:
            raise self._status_error(response)
        if response_headers is not None:
            response_headers.update(response.headers)
        return _decode(response)

    async def explain(
        self,
        base_url: str | httpx.URL,
        model_name: str,
        data: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> dict[str, Any]:
        """POST ``data`` to ``/v1/models/<m>:explain`` (V1 only, as KServe)."""
        if not _is_v1(self._config.protocol):
            raise UnsupportedProtocol(self._config.protocol)
        url = self._url(base_url, f"v1/models/{model_name}:explain", model_name)
        response = await self._client.post(url, json=dict(data), headers=headers, timeout=timeout)
        if not response.is_success:
            raise self._status_error(response)
        out: dict[str, Any] = response.json()
        return out

    async def is_server_ready(
        self,
        base_url: str | httpx.URL,
        headers: Mapping[str, str] | None = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> bool:
        """``GET /v2/health/ready`` (V2 only, as KServe)."""
        if not _is_v2(self._config.protocol):
            raise UnsupportedProtocol(self._config.protocol)
        response = await self._client.get(
            self._url(base_url, "v2/health/ready"), headers=headers, timeout=timeout
        )
        if not response.is_success:
            raise self._status_error(response)
        return bool(response.json().get("ready"))

    async def is_server_live(
        self,
        base_url: str | httpx.URL,
        headers: Mapping[str, str] | None = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> bool:
        """V1 ``GET /`` (``{"status": "alive"}``), V2 ``GET /v2/health/live``."""
        protocol = self._config.protocol
        if _is_v1(protocol):
            url = self._url(base_url, "")
        elif _is_v2(protocol):
            url = self._url(base_url, "v2/health/live")
        else:
            raise UnsupportedProtocol(protocol)
        response = await self._client.get(url, headers=headers, timeout=timeout)
        if not response.is_success:
            raise self._status_error(response)
        body = response.json()
        return bool(str(body.get("status", "")).lower() == "alive" if _is_v1(protocol) else body.get("live"))

    async def is_model_ready(
        self,
        base_url: str | httpx.URL,
        model_name: str,
        headers: Mapping[str, str] | None = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> bool:
        """V1 ``GET /v1/models/<m>`` (False on 503, else its ``ready``); V2 ``…/ready`` is 2xx."""
        protocol = self._config.protocol
        if _is_v1(protocol):
            url = self._url(base_url, f"v1/models/{model_name}", model_name)
        elif _is_v2(protocol):
            url = self._url(base_url, f"v2/models/{model_name}/ready", model_name)
        else:
            raise UnsupportedProtocol(protocol)
        response = await self._client.get(url, headers=headers, timeout=timeout)
        if _is_v1(protocol):
            if response.status_code == httpx.codes.SERVICE_UNAVAILABLE:
                return False
            if not response.is_success:
                raise self._status_error(response)
            return bool(response.json().get("ready"))
        return response.is_success

    async def get_model_metadata(
        self,
        base_url: str | httpx.URL,
        model_name: str,
        headers: Mapping[str, str] | None = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> dict[str, Any]:
        """V2 ``GET /v2/models/<m>`` (versions, platform, inputs, outputs); V1 ``GET /v1/models/<m>``."""
        protocol = self._config.protocol
        if not (_is_v1(protocol) or _is_v2(protocol)):
            raise UnsupportedProtocol(protocol)
        url = self._url(base_url, f"{protocol}/models/{model_name}", model_name)
        response = await self._client.get(url, headers=headers, timeout=timeout)
        if not response.is_success:
            raise self._status_error(response)
        out: dict[str, Any] = response.json()
        return out


def _decode(response: httpx.Response) -> dict[str, Any]:
    """The JSON answer; with the binary extension's header, binary outputs decoded into ``data``."""
    length = response.headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
    if length is None:
        out: dict[str, Any] = response.json()
        return out
    from pipelines.protocol.binary import decode_tensor

    raw = response.content
    n = int(length)
    body: dict[str, Any] = json.loads(raw[:n])
    offset = n
    for i, output in enumerate(body.get("outputs") or []):
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            continue
        chunk = raw[offset : offset + int(size)]
        offset += int(size)
        arr = decode_tensor(chunk, output.get("datatype"), f"outputs[{i}]")
        output["data"] = [v.decode() if isinstance(v, bytes) else v for v in arr.tolist()]
        output["parameters"] = {k: v for k, v in output["parameters"].items() if k != "binary_data_size"}
    return body
