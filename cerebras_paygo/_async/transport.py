"""The async transport: ``POST /v1/chat/completions`` (plain and SSE), ``GET /v1/models``.

Hand-written; ``_sync/transport.py`` is generated from it by ``scripts/unasync.py``. Everything
that decides something lives in ``cerebras_paygo._http``; this file only sends and reads.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import EventSource

from cerebras_paygo._http import (
    DEFAULT_LIMITS,
    Response,
    build_headers,
    chunk_delivers_content,
    error_for_status,
    map_transport_error,
    parse_sse_data,
    request_id_of,
)
from cerebras_paygo._settings import Settings
from cerebras_paygo._wire import ChatCompletion, ChatCompletionChunk, ModelInfo, ModelList, RateLimitSnapshot
from cerebras_paygo.errors import CerebrasError

__all__ = ["AsyncChatStream", "AsyncTransport"]

logger = logging.getLogger("cerebras_paygo.transport")


class AsyncTransport:
    """Sends requests for one key; the connection pool can be shared between transports."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=settings.timeout, limits=DEFAULT_LIMITS)

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    def with_settings(self, settings: Settings) -> AsyncTransport:
        """A transport for other settings (the fallback key) over the same connection pool."""
        return AsyncTransport(settings, self._client)

    def _url(self, path: str) -> str:
        return f"{self.settings.base_url}/{path}"

    async def chat(self, payload: dict[str, Any]) -> Response[ChatCompletion]:
        body = {**payload, "stream": False}
        body.pop("stream_options", None)
        response = await self._send("POST", "chat/completions", json=body)
        return self._parsed(response, ChatCompletion.model_validate_json(response.content))

    def stream_chat(self, payload: dict[str, Any]) -> AsyncChatStream:
        """Open with ``async with``; iterate chunks; ``rate_limits`` is set once open."""
        return AsyncChatStream(self, {**payload, "stream": True})

    async def list_models(self) -> Response[ModelList]:
        response = await self._send("GET", "models")
        return self._parsed(response, ModelList.model_validate_json(response.content))

    async def retrieve_model(self, model_id: str) -> Response[ModelInfo]:
        response = await self._send("GET", f"models/{model_id}")
        return self._parsed(response, ModelInfo.model_validate_json(response.content))

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        request = self._client.build_request(method, self._url(path), headers=build_headers(self.settings), **kwargs)
        try:
            response = await self._client.send(request)
        except httpx.HTTPError as exc:
            raise map_transport_error(exc) from exc
        logger.debug("%s %s -> %s", method, request.url, response.status_code)
        if response.status_code >= 400:
            raise error_for_status(response.status_code, response.content, response.headers)
        return response

    @staticmethod
    def _parsed(response: httpx.Response, data: Any) -> Response[Any]:
        return Response(
            data=data,
            rate_limits=RateLimitSnapshot.from_headers(response.headers),
            request_id=request_id_of(response.headers),
            headers=dict(response.headers),
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncTransport:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class AsyncChatStream:
    """One SSE response: open it, then iterate ``ChatCompletionChunk``s until the server ends it.

    Accepts streams with or without ``data: [DONE]``. A failure before any content raises
    ``APIConnectionError``/``APITimeoutError``; after content, ``StreamInterruptedError``.
    """

    def __init__(self, transport: AsyncTransport, payload: dict[str, Any]) -> None:
        self._transport = transport
        self._payload = payload
        self._response: httpx.Response | None = None
        self.rate_limits: RateLimitSnapshot | None = None
        self.request_id: str | None = None
        self.headers: dict[str, str] = {}
        self.delivered_chunks = 0

    async def __aenter__(self) -> AsyncChatStream:
        transport = self._transport
        client = transport.client
        request = client.build_request(
            "POST",
            transport._url("chat/completions"),
            json=self._payload,
            headers=build_headers(transport.settings, stream=True),
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise map_transport_error(exc) from exc
        logger.debug("POST %s (stream) -> %s", request.url, response.status_code)
        self._response = response
        self.rate_limits = RateLimitSnapshot.from_headers(response.headers)
        self.request_id = request_id_of(response.headers)
        self.headers = dict(response.headers)
        if response.status_code >= 400:
            try:
                content = await response.aread()
            except httpx.HTTPError:
                content = b""
            finally:
                await response.aclose()
            raise error_for_status(response.status_code, content, response.headers)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._response is not None:
            await self._response.aclose()

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        if self._response is None:
            raise RuntimeError("open the stream with 'async with' before iterating it")
        events = EventSource(self._response).aiter_sse()
        while True:
            try:
                event = await events.__anext__()
            except StopAsyncIteration:
                return
            except CerebrasError:
                raise
            except (httpx.HTTPError, ValueError) as exc:
                # httpx-sse raises ValueError-family errors for truncated frames; both mean a broken stream.
                raise map_transport_error(exc, delivered_chunks=self.delivered_chunks) from exc
            chunk = parse_sse_data(event.data, event.event)
            if chunk is None:
                continue
            if chunk_delivers_content(chunk):
                self.delivered_chunks += 1
            yield chunk
