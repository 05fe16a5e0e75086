"""The I/O-free half of the transport: headers, status -> error, bodies and SSE -> models, deadlines.

Both transport shells (``_async/transport.py`` and its generated sync twin) call these, so a rule
about what goes on the wire or what an answer means is written once. Every answer is turned into
either a model or a typed ``CerebrasError`` here: nothing that leaves this module is a pydantic
``ValidationError``, a ``json`` error or an ``IndexError``.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import math
import platform
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio
import httpx
from pydantic import BaseModel

from cerebras_paygo._backends import monotonic
from cerebras_paygo._settings import INTEGRATION_HEADER, Settings
from cerebras_paygo._version import __version__
from cerebras_paygo._wire import ChatCompletion, ChatCompletionChunk, RateLimitSnapshot, ResponseMeta
from cerebras_paygo.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CerebrasError,
    ConfigurationError,
    MalformedResponseError,
    StreamInterruptedError,
    StreamTimeoutError,
    error_from_response,
)

__all__ = [
    "USER_AGENT",
    "AsyncDeadlineScope",
    "DeadlineScope",
    "Deadlines",
    "Response",
    "SSEParser",
    "build_headers",
    "error_for_status",
    "map_transport_error",
    "meta_of",
    "parse_body",
    "parse_completion",
    "parse_sse_data",
    "shared_ssl_context",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

USER_AGENT = f"cerebras-paygo/{__version__} httpx/{httpx.__version__} python/{platform.python_version()}"
DEFAULT_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30.0)

_ssl_context: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every connection pool the package builds.

    httpx builds a context per client (the CA bundle loaded again, ~840 KiB and several ms each);
    a context is safe to share between pools and threads once configured. Built at the first
    client, so ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` set before then are honoured (httpx's
    ``trust_env``). A client of your own (``http_client=``) keeps its own.
    """
    global _ssl_context
    if _ssl_context is None:
        with _ssl_lock:
            if _ssl_context is None:
                _ssl_context = httpx.create_ssl_context()
    return _ssl_context


#: A single SSE line longer than this is not a stream we can use (bounds memory on a server that
#: never sends a newline).
MAX_SSE_LINE = 16 * 1024 * 1024
_SNIPPET = 200


@dataclass(frozen=True)
class Response(Generic[T]):
    """A parsed body with what its headers said (``meta``, parsed once at the edge)."""

    data: T
    meta: ResponseMeta

    @property
    def rate_limits(self) -> RateLimitSnapshot:
        return self.meta.rate_limits

    @property
    def request_id(self) -> str | None:
        return self.meta.request_id

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers with lowercase names."""
        return self.meta.headers


def build_headers(settings: Settings, *, stream: bool = False) -> dict[str, str]:
    key = settings.require_key()
    headers = {
        **settings.default_headers,
        "Authorization": f"Bearer {key.get_secret_value()}",
        "User-Agent": USER_AGENT,
        INTEGRATION_HEADER: settings.integration,
        "Accept": "text/event-stream" if stream else "application/json",
    }
    return headers


def meta_of(response: httpx.Response) -> ResponseMeta:
    """The one parse of a response's headers (a single pass over ``headers.raw``)."""
    return ResponseMeta.from_raw(response.status_code, response.headers.raw)


def error_for_status(meta: ResponseMeta, content: bytes) -> APIStatusError:
    """The typed error of a non-2xx response (body already read)."""
    body: Any
    try:
        body = json.loads(content) if content else None
    except (ValueError, RecursionError):
        body = content.decode("utf-8", "replace")
    return error_from_response(meta.status_code, body, meta=meta)


def _snippet(content: bytes | str) -> str:
    text = content if isinstance(content, str) else content.decode("utf-8", "replace")
    return repr(text[:_SNIPPET]) + ("..." if len(text) > _SNIPPET else "")


def malformed(meta: ResponseMeta, what: str, *, delivered_chunks: int = 0) -> MalformedResponseError:
    """A 2xx/3xx answer we cannot use. A 3xx comes from in front of the API: never admitted."""
    return MalformedResponseError(
        what,
        status_code=meta.status_code,
        meta=meta,
        maybe_admitted=not 300 <= meta.status_code < 400,
        delivered_chunks=delivered_chunks,
    )


def _redirect(meta: ResponseMeta, content: bytes) -> MalformedResponseError:
    location = meta.headers.get("location")
    where = f" to {location!r}" if location else ""
    body = f" and body {_snippet(content)}" if content else " and an empty body"
    return malformed(meta, f"HTTP {meta.status_code} redirect{where}{body}; redirects are not followed")


def refusal(meta: ResponseMeta, content: bytes) -> APIStatusError:
    """Why a stream could not be opened: an error status, a redirect, or a body that is no event stream."""
    if meta.status_code >= 400:
        return error_for_status(meta, content)
    if not 200 <= meta.status_code < 300:
        return _redirect(meta, content)
    content_type = meta.headers.get("content-type", "")
    return malformed(meta, f"expected a text/event-stream, got {content_type!r}: {_snippet(content)}")


def parse_body(model: type[M], content: bytes, meta: ResponseMeta) -> M:
    """A 2xx JSON body as ``model``; anything else (3xx, not JSON, wrong shape) is ``MalformedResponseError``."""
    if not 200 <= meta.status_code < 300:
        raise _redirect(meta, content)
    try:
        return model.model_validate_json(content)
    except (ValueError, RecursionError) as exc:  # pydantic's ValidationError is a ValueError
        raise malformed(
            meta, f"the {meta.status_code} body is not a valid {model.__name__}: {_snippet(content)} ({_reason(exc)})"
        ) from exc


def parse_completion(content: bytes, meta: ResponseMeta) -> ChatCompletion:
    """A chat completion, which must have at least one choice (each with a message)."""
    completion = parse_body(ChatCompletion, content, meta)
    if not completion.choices:
        raise malformed(meta, f"the completion has no choices: {_snippet(content)}")
    return completion


def _reason(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {' '.join(first[:3])[:300]}" if first else type(exc).__name__


# --- server-sent events ---------------------------------------------------------------------


class SSEParser:
    """An incremental ``text/event-stream`` decoder (WHATWG rules): ``feed`` bytes, get ``(event, data)``.

    The bytes are UTF-8 whatever the charset says (the SSE rule; bad bytes become U+FFFD). Lines
    end at ``\\r\\n``, ``\\r`` or ``\\n``; ``:`` lines are comments (keep-alives); an empty line
    dispatches the event. At EOF, an event left without its empty line is still dispatched, so a
    truncated last event is parsed (and rejected) rather than silently dropped.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        """The events completed by ``data``; raises ``ValueError`` for a line over ``MAX_SSE_LINE``."""
        return self._text(self._decoder.decode(data))

    def _text(self, text: str) -> list[tuple[str, str]]:
        buffer = self._buffer + text
        # A trailing "\r" may be half of "\r\n": keep it for the next piece.
        keep_cr = buffer.endswith("\r")
        if keep_cr:
            buffer = buffer[:-1]
        if "\r" in buffer:
            buffer = buffer.replace("\r\n", "\n").replace("\r", "\n")
        *lines, rest = buffer.split("\n")
        self._buffer = rest + ("\r" if keep_cr else "")
        if len(self._buffer) > MAX_SSE_LINE:
            raise ValueError(f"an SSE line longer than {MAX_SSE_LINE} characters")
        events: list[tuple[str, str]] = []
        for line in lines:
            self._line(line, events)
        return events

    def flush(self) -> list[tuple[str, str]]:
        """The events left at the end of the body (the last one may lack its empty line)."""
        events = self._text(self._decoder.decode(b"", final=True))
        rest, self._buffer = self._buffer.rstrip("\r"), ""
        if rest:
            self._line(rest, events)
        self._line("", events)
        return events

    def _line(self, line: str, events: list[tuple[str, str]]) -> None:
        if not line:
            if self._data or self._event:
                events.append((self._event, "\n".join(self._data)))
            self._event, self._data = "", []
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # "id" and "retry" mean nothing for a completion stream; unknown fields are ignored.


def parse_sse_data(
    data: str, event: str, *, meta: ResponseMeta | None = None, delivered_chunks: int = 0
) -> ChatCompletionChunk | None:
    """One SSE event -> a chunk; ``None`` for ``[DONE]`` and empty events; an error event raises its
    typed error; anything that is not a chunk raises ``MalformedResponseError``."""
    text = data.strip()
    if not event and text.startswith("{") and '"error"' not in text:
        # The common case, once per chunk: no error key can be in it, so pydantic parses the JSON
        # and validates in one pass (4.3 µs against 9.4 for json.loads + model_validate). Anything it refuses
        # takes the path below, which words the error.
        try:
            return ChatCompletionChunk.model_validate_json(text)
        except (ValueError, RecursionError):
            pass
    meta = meta if meta is not None else ResponseMeta(status_code=200)
    if event == "error" and not text:
        raise error_from_response(500, None, meta=dataclasses.replace(meta, status_code=500))
    if not text or text == "[DONE]":
        return None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise malformed(
            meta, f"a stream event is not JSON: {_snippet(text)}", delivered_chunks=delivered_chunks
        ) from exc
    if event == "error" or (isinstance(payload, dict) and payload.get("error") is not None):
        status = payload.get("status_code") if isinstance(payload, dict) else None
        if not isinstance(status, int) or isinstance(status, bool):
            status = 500
        raise error_from_response(status, payload, meta=dataclasses.replace(meta, status_code=status))
    try:
        return ChatCompletionChunk.model_validate(payload)
    except (ValueError, RecursionError) as exc:
        raise malformed(
            meta,
            f"a stream event is not a chat.completion.chunk: {_snippet(text)} ({_reason(exc)})",
            delivered_chunks=delivered_chunks,
        ) from exc


def may_end_stream(chunk: ChatCompletionChunk) -> bool:
    """Whether ``chunk`` may be a stream's last: it gives a finish reason or the usage. Only such a
    chunk is held back until the call has closed (so it reaches the caller with ``info`` set); every
    other chunk is handed over as it arrives."""
    if chunk.usage is not None:
        return True
    return any(choice.finish_reason is not None for choice in chunk.choices)


def chunk_delivers_content(chunk: ChatCompletionChunk) -> bool:
    """Whether a caller that saw this chunk saw tokens (a role-only chunk says nothing)."""
    for choice in chunk.choices:
        delta = choice.delta
        if delta.content or delta.reasoning or delta.tool_calls:
            return True
    return False


def opens_stream(meta: ResponseMeta) -> bool:
    """A 2xx whose content type is ``text/event-stream`` (or not given: liberal in what we accept)."""
    if not 200 <= meta.status_code < 300:
        return False
    content_type = meta.headers.get("content-type", "").strip().lower()
    return not content_type or "text/event-stream" in content_type


# --- httpx failures -------------------------------------------------------------------------

#: The request certainly never reached the server.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.ProxyError,
    httpx.WriteError,
    httpx.WriteTimeout,
)
#: The request was written (a response was being read): the server may have admitted it.
_SENT = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError, httpx.DecodingError)


def map_transport_error(exc: Exception, *, delivered_chunks: int = 0, written: bool | None = None) -> CerebrasError:
    """Translate an httpx failure at the one edge where it can happen.

    ``written`` is what the request's trace said (``None`` when the transport reports no trace,
    as with in-process transports); ``maybe_admitted`` is false only when the request certainly
    never reached the server.
    """
    name = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if delivered_chunks:
        cls = StreamTimeoutError if isinstance(exc, httpx.TimeoutException) else StreamInterruptedError
        return cls(
            f"the stream broke after {delivered_chunks} chunk(s) had been delivered ({name}); "
            "it is not retried because the caller already received tokens",
            delivered_chunks=delivered_chunks,
            maybe_admitted=True,
        )
    if isinstance(exc, _NOT_SENT):
        admitted = False
    elif isinstance(exc, _SENT):
        admitted = True
    else:
        admitted = True if written is None else written
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"request timed out ({type(exc).__name__})", bound="timeout", maybe_admitted=admitted)
    return APIConnectionError(f"connection failed ({name})", maybe_admitted=admitted)


# --- deadlines ------------------------------------------------------------------------------

_TRIP_SLACK = 0.005  # a socket timeout fires at (not before) the bound it was capped to


def check_deadline(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a time.monotonic() reading or None, not {value!r}")
    return float(value)


class Deadlines:
    """The absolute bounds of one response on the ``time.monotonic()`` clock.

    ``deadline`` bounds the whole response, body and keep-alive comments included;
    ``first_token_deadline`` bounds the wait for the first chunk carrying content (a stream only).
    The shells check :meth:`check` between reads and cap httpx's per-operation timeouts with
    :meth:`timeout`, so even a read that never returns ends at a bound.
    """

    def __init__(self, deadline: float | None = None, first_token_deadline: float | None = None) -> None:
        self.deadline = check_deadline(deadline, "deadline")
        self.first_token = check_deadline(first_token_deadline, "first_token_deadline")
        self.content_seen = False
        self.written: bool | None = None  # set by the shell from the request trace

    @property
    def active(self) -> bool:
        return self.deadline is not None or self.first_token is not None

    def nearest(self) -> tuple[float, str] | None:
        """The bound in force now: the first-token one until content arrives, then the deadline."""
        bounds: list[tuple[float, str]] = []
        if self.deadline is not None:
            bounds.append((self.deadline, "deadline"))
        if self.first_token is not None and not self.content_seen:
            bounds.append((self.first_token, "first_token_deadline"))
        return min(bounds) if bounds else None

    def timeout(self, base: httpx.Timeout, now: float, *, before_headers: bool = True) -> httpx.Timeout:
        """httpx's timeouts, each capped at what is left of the bound (the deadline alone once the
        body is read, so a quiet gap after the first token is never a first-token trip)."""
        bound = self.nearest() if before_headers else self._deadline_only()
        if bound is None:
            return base
        left = bound[0] - now
        if left <= 0:
            raise self.error(bound[1], now=now, sent=False if before_headers else None)

        def cap(value: float | None) -> float:
            return left if value is None else min(value, left)

        return httpx.Timeout(connect=cap(base.connect), read=cap(base.read), write=cap(base.write), pool=cap(base.pool))

    def _deadline_only(self) -> tuple[float, str] | None:
        return None if self.deadline is None else (self.deadline, "deadline")

    def check(self, now: float, *, delivered_chunks: int = 0) -> None:
        """Raise once a bound has passed (between reads)."""
        bound = self.nearest()
        if bound is not None and now >= bound[0]:
            raise self.error(bound[1], now=now, delivered_chunks=delivered_chunks)

    def tripped(self, now: float) -> str | None:
        """Which bound a timeout at ``now`` is due to, if any."""
        bound = self.nearest()
        if bound is not None and now >= bound[0] - _TRIP_SLACK:
            return bound[1]
        return None

    def error(self, bound: str, *, now: float, delivered_chunks: int = 0, sent: bool | None = None) -> APITimeoutError:
        at = self.deadline if bound == "deadline" else self.first_token
        late = f" ({now - at:.3f} s ago)" if at is not None and now > at else ""
        what = "no content arrived before" if bound == "first_token_deadline" else "the response did not end before"
        # Before anything was written nothing can have been admitted; unknown counts as written.
        admitted = (self.written is not False) if sent is None else sent
        if delivered_chunks:
            return StreamTimeoutError(
                f"{what} its {bound}{late}, after {delivered_chunks} chunk(s) had been delivered; "
                "it is not retried because the caller already received tokens",
                bound=bound,
                delivered_chunks=delivered_chunks,
                maybe_admitted=True,
            )
        return APITimeoutError(f"{what} its {bound}{late}", bound=bound, maybe_admitted=admitted)


class AsyncDeadlineScope:
    """Cancels what runs inside when ``at`` (a ``time.monotonic()`` reading) passes; ``tripped`` says so.

    Used with a plain ``with`` around awaits; never across a ``yield``. Its sync twin
    :class:`DeadlineScope` does nothing: the sync shell relies on capped socket timeouts and checks
    between reads.
    """

    def __init__(self, at: float | None) -> None:
        self._at = at
        self._scope: anyio.CancelScope | None = None

    def __enter__(self) -> AsyncDeadlineScope:
        if self._at is not None:
            # anyio's clock may differ from time.monotonic(): carry the distance over, not the value.
            self._scope = anyio.CancelScope(deadline=anyio.current_time() + (self._at - monotonic()))
            self._scope.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if self._scope is None:
            return False
        return bool(self._scope.__exit__(exc_type, exc, tb))

    @property
    def tripped(self) -> bool:
        return self._scope is not None and self._scope.cancelled_caught


class DeadlineScope:
    """The sync twin of :class:`AsyncDeadlineScope`: a blocking read cannot be cancelled, so nothing."""

    def __init__(self, at: float | None) -> None:
        self._at = at

    def __enter__(self) -> DeadlineScope:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    @property
    def tripped(self) -> bool:
        return False
