"""The wire client: sync and async httpx transports for ``/v1/chat/completions`` (plain and SSE) and ``/v1/models``.

``AsyncTransport`` is written by hand in ``_async/transport.py``; ``Transport`` is generated from it
(``scripts/unasync.py``). Each sends ``Authorization: Bearer``, a ``User-Agent`` naming this package and
the ``X-Cerebras-3rd-Party-Integration`` header, maps every failure to a typed ``cerebras_paygo.errors``
error, and parses the ``x-ratelimit-*`` headers of every response into a ``RateLimitSnapshot``. Most
users want ``CerebrasClient`` (``cerebras_paygo.gateway``), which adds limits, retries and policies.
"""

from cerebras_paygo._async.transport import AsyncChatStream, AsyncTransport
from cerebras_paygo._http import USER_AGENT, Response
from cerebras_paygo._sync.transport import ChatStream, Transport

__all__ = ["USER_AGENT", "AsyncChatStream", "AsyncTransport", "ChatStream", "Response", "Transport"]
