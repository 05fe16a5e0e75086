"""Property tests of the sans-IO edge: header parsing, SSE decoding, body parsing.

Whatever bytes arrive, only typed ``CerebrasError``s come out (issue 13 defects 2 and 5).
Examples are bounded so the module runs in a few seconds.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cerebras_paygo._http import SSEParser, parse_completion, parse_sse_data
from cerebras_paygo._wire import RateLimitSnapshot, ResponseMeta, header_number
from cerebras_paygo.errors import CerebrasError

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RATE_NAMES = [
    f"x-ratelimit-{what}-{kind}-{window}"
    for what in ("limit", "remaining", "reset")
    for kind in ("requests", "tokens")
    for window in ("minute", "hour", "day")
]
header_names = st.one_of(
    st.sampled_from([*RATE_NAMES, "retry-after", "retry-after-ms", "x-should-retry", "x-request-id", "cf-ray"]),
    st.binary(max_size=40),
).map(lambda n: n if isinstance(n, bytes) else n.encode())
number_like = st.one_of(
    st.sampled_from(["inf", "-inf", "nan", "1e400", "-1e400", "1e-400", "0", "-0", "+5", " 7 ", "1_000", "0x10"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**500), max_value=10**500).map(str),
    st.text(max_size=30),
)
header_values = st.one_of(number_like.map(lambda v: v.encode("utf-8", "replace")), st.binary(max_size=60))


@FAST
@given(st.lists(st.tuples(header_names, header_values), max_size=25), st.integers(100, 599))
def test_header_parser_never_raises_and_keeps_only_finite_non_negative_numbers(
    raw: list[tuple[bytes, bytes]], status: int
) -> None:
    """Issue 13 defect 5: arbitrary header names and values never raise (``inf``/``1e400`` did)."""
    meta = ResponseMeta.from_raw(status, raw)
    snapshot = meta.rate_limits
    for mapping in (snapshot.limit, snapshot.remaining, snapshot.reset):
        for value in mapping.values():
            assert math.isfinite(value) and value >= 0
    assert meta.retry_after is None or 0 < meta.retry_after <= 120
    assert meta.should_retry in (None, True, False)
    assert all(name == name.lower() for name in meta.headers)
    # The mapping path (tests, error events) agrees with the raw path.
    again = ResponseMeta.from_headers(status, dict(meta.headers), now=meta.received_at)
    assert again.rate_limits.limit == snapshot.limit
    assert again.rate_limits.remaining == snapshot.remaining
    assert again.rate_limits.reset == snapshot.reset
    assert RateLimitSnapshot.from_headers(dict(meta.headers)).remaining == snapshot.remaining


@FAST
@given(number_like)
def test_header_number_is_finite_and_non_negative_or_none(raw: str) -> None:
    value = header_number(raw)
    assert value is None or (math.isfinite(value) and value >= 0)


def test_header_number_table() -> None:
    assert header_number("11.38") == 11.38
    assert header_number(" 5 ") == 5.0
    for junk in ("inf", "1e400", "nan", "-1", "abc", "", None):
        assert header_number(junk) is None


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        st.text(max_size=20),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                ["choices", "delta", "content", "message", "error", "status_code", "index", "usage", "role", "x"]
            )
            | st.text(max_size=8),
            children,
            max_size=5,
        ),
    ),
    max_leaves=25,
)


def only_typed(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except CerebrasError:
        return None


@FAST
@given(json_values, st.sampled_from(["", "message", "error"]))
def test_random_json_sse_events_give_chunks_or_typed_errors(value: Any, event: str) -> None:
    only_typed(parse_sse_data, json.dumps(value), event)


@FAST
@given(st.binary(max_size=300), st.integers(1, 17))
def test_random_bytes_through_the_sse_parser_give_chunks_or_typed_errors(raw: bytes, step: int) -> None:
    parser = SSEParser()
    events = []
    for i in range(0, len(raw), step):
        events += parser.feed(raw[i : i + step])
    events += parser.flush()
    for event, data in events:
        only_typed(parse_sse_data, data, event)


@FAST
@given(st.lists(json_values, max_size=4))
def test_random_json_streams_split_anywhere(values: list[Any]) -> None:
    body = b"".join(f"data: {json.dumps(v)}\n\n".encode() for v in values) + b": ping\r\n\r\ndata: [DONE]\n\n"
    parser = SSEParser()
    events = []
    for i in range(0, len(body), 7):
        events += parser.feed(body[i : i + 7])
    events += parser.flush()
    assert [data for _, data in events][-1] == "[DONE]"
    assert len(events) == len(values) + 1
    for event, data in events:
        only_typed(parse_sse_data, data, event)


@FAST
@given(st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())), st.integers(200, 399))
def test_random_bodies_give_a_completion_or_a_typed_error(body: bytes, status: int) -> None:
    completion = only_typed(parse_completion, body, ResponseMeta(status_code=status))
    if completion is not None:
        assert completion.choices and all(choice.message is not None for choice in completion.choices)


def test_sse_parser_follows_the_line_rules() -> None:
    parser = SSEParser()
    events = parser.feed(b'data: {"a":\r\ndata: 1}\r\n\r\n: comment\n\nevent: error\ndata: x\r')
    assert events == [("", '{"a":\n1}')]
    assert parser.feed(b"\n\n") == [("error", "x")]
    assert parser.feed("data: é".encode()[:-1]) == []
    assert parser.feed("data: é".encode()[-1:] + b"\n\n") == [("", "é")]
    assert parser.flush() == []
