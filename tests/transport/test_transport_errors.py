"""How each httpx failure maps: which error, and whether the server may have admitted the request."""

from __future__ import annotations

import httpx
import pytest

from cerebras_paygo._http import map_transport_error
from cerebras_paygo.errors import APIConnectionError, APITimeoutError, StreamInterruptedError, StreamTimeoutError

REQUEST = httpx.Request("POST", "https://api.cerebras.ai/v1/chat/completions")


@pytest.mark.parametrize(
    ("exc", "cls", "admitted"),
    [
        (httpx.ConnectError("dns: name not known"), APIConnectionError, False),
        (httpx.ConnectTimeout("connect"), APITimeoutError, False),
        (httpx.PoolTimeout("pool"), APITimeoutError, False),
        (httpx.WriteError("broken pipe"), APIConnectionError, False),
        (httpx.WriteTimeout("write"), APITimeoutError, False),
        (httpx.UnsupportedProtocol("ftp"), APIConnectionError, False),
        (httpx.ReadTimeout("read"), APITimeoutError, True),
        (httpx.ReadError("reset"), APIConnectionError, True),
        (httpx.RemoteProtocolError("server disconnected without a response"), APIConnectionError, True),
        (httpx.DecodingError("bad gzip"), APIConnectionError, True),
    ],
)
def test_maybe_admitted_by_failure(exc: httpx.HTTPError, cls: type, admitted: bool) -> None:
    error = map_transport_error(exc)
    assert type(error) is cls
    assert isinstance(error, APIConnectionError)
    assert error.maybe_admitted is admitted


def test_an_unknown_failure_follows_the_request_trace() -> None:
    assert map_transport_error(httpx.CloseError("x"), written=False).maybe_admitted is False
    assert map_transport_error(httpx.CloseError("x"), written=True).maybe_admitted is True
    assert map_transport_error(httpx.CloseError("x")).maybe_admitted is True  # no trace: the safe side


def test_after_content_every_failure_is_an_interruption() -> None:
    broken = map_transport_error(httpx.ReadError("reset"), delivered_chunks=3)
    assert type(broken) is StreamInterruptedError and broken.delivered_chunks == 3
    late = map_transport_error(httpx.ReadTimeout("read"), delivered_chunks=1)
    assert type(late) is StreamTimeoutError and isinstance(late, APITimeoutError)
