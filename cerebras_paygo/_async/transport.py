"""The async transport: ``POST /v1/chat/completions`` (plain and SSE), ``GET /v1/models``.

Hand-written; ``_sync/transport.py`` is generated from it by ``scripts/unasync.py``. Everything
that decides something lives in ``cerebras_paygo._http``; this file only sends and reads. Each
response's headers are parsed once, here, into a ``ResponseMeta``; every answer comes back as a
model or a typed ``CerebrasError``.

``deadline`` and ``first_token_deadline`` are absolute ``time.monotonic()`` readings that bound
the whole response, body and SSE keep-alive comments included: httpx's per-operation timeouts are
capped at what is left, the bound is checked after every read, and (async only) the read in
flight is cancelled when it passes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import httpx

from cerebras_paygo._backends import monotonic
from cerebras_paygo._http import (
    DEFAULT_LIMITS,
    AsyncDeadlineScope,
    Deadlines,
    Response,
    SSEParser,
    build_headers,
    chunk_delivers_content,
    error_for_status,
    malformed,
    map_transport_error,
    meta_of,
    opens_stream,
    parse_body,
    parse_completion,
    parse_sse_data,
    refusal,
    shared_ssl_context,
)
from cerebras_paygo._settings import Settings
from cerebras_paygo._wire import (
    ChatCompletion,
    ChatCompletionChunk,
    ModelInfo,
    ModelList,
    RateLimitSnapshot,
    ResponseMeta,
)
from cerebras_paygo.errors import CerebrasError

__all__ = ["AsyncChatStream", "AsyncTransport"]

logger = logging.getLogger("cerebras_paygo.transport")


class _Progress:
    """The request's httpcore trace: whether it was written (so the server may have admitted it)."""

    def __init__(self, deadlines: Deadlines) -> None:
        self._deadlines = deadlines

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        if self._deadlines.written is None:
            self._deadlines.written = False
        if name.endswith("send_request_body.complete") or ".receive_response_headers." in name:
            self._deadlines.written = True


class _BodyReader:
    """Reads a streamed body one network piece at a time, so bounds are checked between reads."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._pieces: AsyncIterator[bytes] | None = None

    async def next(self) -> bytes | None:
        """The next piece; ``None`` at the end of the body."""
        if self._pieces is None:
            self._pieces = self._response.aiter_bytes()
        try:
            return await self._pieces.__anext__()
        except StopAsyncIteration:
            return None

    async def aclose(self) -> None:
        """Close the piece iterator (so it is not left suspended) and the response."""
        pieces, self._pieces = self._pieces, None
        close = getattr(pieces, "aclose", None)
        if close is not None:
            await close()
        await self._response.aclose()


class AsyncTransport:
    """Sends requests for one key; the connection pool can be shared between transports."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=settings.timeout, limits=DEFAULT_LIMITS, verify=shared_ssl_context()
        )
        # Parsed once per transport, not per request (httpx parses a str URL on every build_request).
        self._urls: dict[str, httpx.URL] = {}
        self._headers: dict[bool, dict[str, str]] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    def with_settings(self, settings: Settings) -> AsyncTransport:
        """A transport for other settings (the fallback key) over the same connection pool."""
        return AsyncTransport(settings, self._client)

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(f"{self.settings.base_url}/{path}")
            if len(self._urls) < 64:  # chat/completions, models, a few model ids
                self._urls[path] = url
        return url

    def _headers_for(self, stream: bool) -> dict[str, str]:
        headers = self._headers.get(stream)
        if headers is None:  # built at the first request: a missing key raises there, as before
            headers = self._headers[stream] = build_headers(self.settings, stream=stream)
        return headers

    def _request(
        self, method: str, path: str, deadlines: Deadlines, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Request:
        timeout = deadlines.timeout(self.settings.timeout, monotonic())
        return self._client.build_request(
            method,
            self._url(path),
            headers=self._headers_for(stream),
            timeout=timeout,
            extensions={"trace": _Progress(deadlines)},
            **kwargs,
        )

    async def chat(self, payload: dict[str, Any], *, deadline: float | None = None) -> Response[ChatCompletion]:
        """One completion; ``deadline`` (``time.monotonic()``) bounds it all, body included."""
        body = {**payload, "stream": False}
        body.pop("stream_options", None)
        deadlines = Deadlines(deadline)
        meta, content = await self._send(self._request("POST", "chat/completions", deadlines, json=body), deadlines)
        return Response(parse_completion(content, meta), meta)

    def stream_chat(
        self,
        payload: dict[str, Any],
        *,
        deadline: float | None = None,
        first_token_deadline: float | None = None,
    ) -> AsyncChatStream:
        """Open with ``async with``; iterate chunks; ``meta`` (and ``rate_limits``) is set once open.

        ``deadline`` bounds the whole stream; ``first_token_deadline`` the wait for the first chunk
        that carries content (both ``time.monotonic()`` readings).
        """
        return AsyncChatStream(self, {**payload, "stream": True}, Deadlines(deadline, first_token_deadline))

    async def list_models(self, *, deadline: float | None = None) -> Response[ModelList]:
        deadlines = Deadlines(deadline)
        meta, content = await self._send(self._request("GET", "models", deadlines), deadlines)
        return Response(parse_body(ModelList, content, meta), meta)

    async def retrieve_model(self, model_id: str, *, deadline: float | None = None) -> Response[ModelInfo]:
        deadlines = Deadlines(deadline)
        meta, content = await self._send(self._request("GET", f"models/{model_id}", deadlines), deadlines)
        return Response(parse_body(ModelInfo, content, meta), meta)

    async def _send(self, request: httpx.Request, deadlines: Deadlines) -> tuple[ResponseMeta, bytes]:
        """Send and read the whole body under the deadline; an error status raises its typed error."""
        bound = deadlines.nearest()
        with AsyncDeadlineScope(None if bound is None else bound[0]) as scope:
            try:
                response = await self._client.send(request, stream=True)
                reader = _BodyReader(response)
                try:
                    meta = meta_of(response)
                    logger.debug("%s %s -> %s", request.method, request.url, meta.status_code)
                    _cap_body_timeout(request, deadlines, self.settings.timeout)
                    parts: list[bytes] = []
                    while (part := await reader.next()) is not None:
                        parts.append(part)
                        if deadlines.active:
                            deadlines.check(monotonic())
                finally:
                    await reader.aclose()
            except httpx.HTTPError as exc:
                raise _mapped(exc, deadlines) from exc
        if scope.tripped:
            raise deadlines.error(bound[1] if bound else "deadline", now=monotonic())
        content = b"".join(parts)
        if meta.status_code >= 400:
            raise error_for_status(meta, content)
        return meta, content

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncTransport:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _cap_body_timeout(request: httpx.Request, deadlines: Deadlines, base: httpx.Timeout) -> None:
    """Re-cap the read timeout for the body at what is left of the deadline.

    httpcore reads ``request.extensions["timeout"]`` when the body read starts, so this bounds a
    body that stalls; the first-token bound is left out here (it is checked between reads), so a
    quiet gap after the first token is never taken for it.
    """
    if deadlines.deadline is None:
        return
    timeouts = request.extensions.get("timeout")
    if isinstance(timeouts, dict):
        timeouts.update(deadlines.timeout(base, monotonic(), before_headers=False).as_dict())


def _mapped(exc: httpx.HTTPError, deadlines: Deadlines, delivered_chunks: int = 0) -> CerebrasError:
    if isinstance(exc, httpx.TimeoutException) and deadlines.active:
        bound = deadlines.tripped(monotonic())
        if bound is not None:
            return deadlines.error(bound, now=monotonic(), delivered_chunks=delivered_chunks)
    return map_transport_error(exc, delivered_chunks=delivered_chunks, written=deadlines.written)


class AsyncChatStream:
    """One SSE response: open it, then iterate ``ChatCompletionChunk``s until the server ends it.

    Accepts streams with or without ``data: [DONE]``. A failure before any content raises
    ``APIConnectionError``/``APITimeoutError``/``MalformedResponseError``; after content,
    ``StreamInterruptedError`` (``StreamTimeoutError`` for a timeout or deadline), or a
    ``MalformedResponseError`` whose ``delivered_chunks`` is set.
    """

    def __init__(self, transport: AsyncTransport, payload: dict[str, Any], deadlines: Deadlines | None = None) -> None:
        self._transport = transport
        self._payload = payload
        self._deadlines = deadlines or Deadlines()
        self._response: httpx.Response | None = None
        self.meta: ResponseMeta | None = None
        self.delivered_chunks = 0

    @property
    def rate_limits(self) -> RateLimitSnapshot | None:
        return None if self.meta is None else self.meta.rate_limits

    @property
    def request_id(self) -> str | None:
        return None if self.meta is None else self.meta.request_id

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.meta is None else dict(self.meta.headers)

    async def __aenter__(self) -> AsyncChatStream:
        transport = self._transport
        deadlines = self._deadlines
        request = transport._request("POST", "chat/completions", deadlines, stream=True, json=self._payload)
        bound = deadlines.nearest()
        with AsyncDeadlineScope(None if bound is None else bound[0]) as scope:
            try:
                response = await transport.client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise _mapped(exc, deadlines) from exc
        if scope.tripped:
            raise deadlines.error(bound[1] if bound else "deadline", now=monotonic())
        self._response = response
        self.meta = meta = meta_of(response)
        logger.debug("POST %s (stream) -> %s", request.url, meta.status_code)
        _cap_body_timeout(request, deadlines, transport.settings.timeout)
        if not opens_stream(meta):
            # An error status, a redirect or a body that is no event stream: read what it says.
            content = b""
            with AsyncDeadlineScope(None if bound is None else bound[0]):
                try:
                    content = await response.aread()
                except httpx.HTTPError as exc:
                    if 200 <= meta.status_code < 300:
                        raise _mapped(exc, deadlines) from exc
                    content = b""  # the status says enough
                finally:
                    await response.aclose()
            raise refusal(meta, content)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._response is not None:
            await self._response.aclose()

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        response = self._response
        if response is None or self.meta is None:
            raise RuntimeError("open the stream with 'async with' before iterating it")
        meta = self.meta
        deadlines = self._deadlines
        parser = SSEParser()
        reader = _BodyReader(response)
        try:
            while True:
                bound = deadlines.nearest()
                with AsyncDeadlineScope(None if bound is None else bound[0]) as scope:
                    try:
                        piece = await reader.next()
                    except httpx.HTTPError as exc:
                        raise _mapped(exc, deadlines, self.delivered_chunks) from exc
                if scope.tripped:
                    raise deadlines.error(
                        bound[1] if bound else "deadline", now=monotonic(), delivered_chunks=self.delivered_chunks
                    )
                try:
                    events = parser.flush() if piece is None else parser.feed(piece)
                except ValueError as exc:
                    raise malformed(meta, str(exc), delivered_chunks=self.delivered_chunks) from exc
                for event, data in events:
                    chunk = parse_sse_data(data, event, meta=meta, delivered_chunks=self.delivered_chunks)
                    if chunk is None:
                        continue
                    if chunk_delivers_content(chunk):
                        self.delivered_chunks += 1
                        deadlines.content_seen = True
                    yield chunk
                if piece is None:
                    return
                if deadlines.active:
                    # Keep-alive comments and trickled bytes arrive without an event: check anyway.
                    deadlines.check(monotonic(), delivered_chunks=self.delivered_chunks)
        finally:
            await reader.aclose()
