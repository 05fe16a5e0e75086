"""pytest fixtures for testing code against the Cerebras emulator.

Enable them in a ``conftest.py``::

    pytest_plugins = ["cerebras_paygo.emulator.pytest_plugin"]

Fixtures:

- ``emulator_config`` (session): the ``EmulatorConfig`` the live server starts with; override it
  in your own ``conftest.py`` to change the defaults for the whole session.
- ``emulator_server`` (session): a live ``EmulatorServer`` on ``127.0.0.1`` (a free port).
- ``emulator`` (function): the same server, reset before and after each test; an
  ``EmulatorHandle`` with ``base_url``, ``api_key`` (paygo), ``free_api_key``, ``stats()``,
  ``configure(**changes)``, ``set_faults(**faults)``, ``set_balance(org, usd)``, ``advance(s)``,
  ``freeze_time()``, ``client()``, ``app`` and ``state``.
- ``emulator_asgi`` (function): a fresh in-process app behind ``httpx.ASGITransport`` (no socket;
  a frozen clock, so bucket arithmetic is exact): ``transport``, ``base_url``, ``async_client()``,
  ``http_client()`` / ``async_http_client()`` for the adapters, and the same methods as ``emulator``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cerebras_paygo.emulator.app import create_app
from cerebras_paygo.emulator.clock import ControllableClock
from cerebras_paygo.emulator.config import FREE_KEY, PAYGO_KEY, EmulatorConfig
from cerebras_paygo.emulator.server import EmulatorServer
from cerebras_paygo.emulator.state import EmulatorState

__all__ = ["AsgiEmulatorHandle", "EmulatorHandle"]


class _Handle:
    state: EmulatorState
    app: Starlette
    base_url: str

    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    @property
    def api_key(self) -> str:
        """A key of a paygo org (``csk-emulator-paygo`` by default)."""
        return self.state.config.key_for("paygo") or PAYGO_KEY

    @property
    def free_api_key(self) -> str:
        """A key of a free-tier org (``csk-emulator-free`` by default)."""
        return self.state.config.key_for("free") or FREE_KEY

    @property
    def paygo_org(self) -> str:
        return self.state.config.keys[self.api_key]

    @property
    def free_org(self) -> str:
        return self.state.config.keys[self.free_api_key]

    @property
    def clock(self) -> Any:
        return self.state.clock

    def stats(self) -> dict[str, Any]:
        """What ``GET /_emulator/stats`` returns: statuses, 429/402 counts, tokens, balances, per model."""
        return self.state.stats()

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change ``EmulatorConfig`` fields for this test: ``limits``, ``faults``, ``orgs``, ``send_done`` ..."""
        return self.state.update_config(**changes)

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Merge fault settings (``FaultConfig`` fields) into the current ones; counters restart."""
        return self.state.set_faults(**faults)

    def set_balance(self, org: str, balance_usd: float) -> dict[str, Any]:
        return self.state.set_balance(org, balance_usd)

    def balance(self, org: str | None = None) -> float:
        balances: dict[str, float] = self.state.stats()["balances"]
        return balances[org or self.paygo_org]

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock (buckets refill, recharges land, 402 windows end)."""
        self.state.advance(seconds)

    def freeze_time(self) -> None:
        """Stop the emulator's clock: buckets stop refilling until ``advance`` (undone by the reset)."""
        freeze = getattr(self.state.clock, "freeze", None)
        if freeze is None:
            raise TypeError("this emulator's clock cannot be frozen")
        freeze()

    def reset(self) -> None:
        self.state.reset()

    def headers(self, *, free: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.free_api_key if free else self.api_key}"}


class EmulatorHandle(_Handle):
    """The live emulator as one test sees it."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.state = server.state
        self.app = server.app
        self.base_url = server.base_url
        self.root_url = server.root_url

    def client(self, *, free: bool = False, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` on ``base_url`` with the paygo (or free) key."""
        kwargs.setdefault("timeout", 10.0)
        return httpx.Client(base_url=self.base_url, headers=self.headers(free=free), **kwargs)

    def async_client(self, *, free: bool = False, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 10.0)
        return httpx.AsyncClient(base_url=self.base_url, headers=self.headers(free=free), **kwargs)


class _SyncASGITransport(httpx.BaseTransport):
    """Sync requests to an ASGI app: each one runs on a private event loop in a daemon thread
    (``httpx.ASGITransport`` is async only). Response bodies are read whole, streams included."""

    def __init__(self, app: Starlette) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="emulator-asgi", daemon=True).start()
                self._loop = loop
            return self._loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._inner.handle_async_request(inner)
            content = b"".join([part async for part in response.stream])  # type: ignore[union-attr]
            return response.status_code, response.headers.raw, content

        status, headers, content = asyncio.run_coroutine_threadsafe(send(), self._running_loop()).result()
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)


class AsgiEmulatorHandle(_Handle):
    """An in-process emulator: requests go through ``httpx.ASGITransport``, no socket.

    Give the adapters its HTTP clients (``base_url`` is a ``.localhost`` name, so the adapters'
    plain-http rule accepts it, and nothing listens there: without the clients nothing arrives)::

        ChatCerebras(base_url=emulator_asgi.base_url, api_key=emulator_asgi.api_key,
                     http_client=emulator_asgi.http_client(), http_async_client=emulator_asgi.async_http_client())
        Cerebras(base_url=emulator_asgi.base_url, api_key=emulator_asgi.api_key,
                 http_client=emulator_asgi.http_client(), async_http_client=emulator_asgi.async_http_client())
    """

    root_url = "http://emulator.localhost"

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.state = EmulatorState(config, clock=ControllableClock(frozen=True))
        self.app = create_app(state=self.state)
        self.transport = httpx.ASGITransport(app=self.app)
        self.sync_transport = _SyncASGITransport(self.app)
        self.base_url = f"{self.root_url}/v1"

    def async_client(self, *, free: bool = False, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` bound to the app, on ``base_url``, with the paygo (or free) key."""
        return httpx.AsyncClient(
            transport=self.transport, base_url=self.base_url, headers=self.headers(free=free), **kwargs
        )

    def http_client(self, **kwargs: Any) -> httpx.Client:
        """A plain ``httpx.Client`` bound to the app (no key: the adapters send their own)."""
        return httpx.Client(transport=self.sync_transport, **kwargs)

    def async_http_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """A plain ``httpx.AsyncClient`` bound to the app (no key: the adapters send their own)."""
        return httpx.AsyncClient(transport=self.transport, **kwargs)

    def close(self) -> None:
        self.sync_transport.close()


@pytest.fixture(scope="session")
def emulator_config() -> EmulatorConfig:
    """The config the session's live emulator starts with (override to change it)."""
    return EmulatorConfig()


@pytest.fixture(scope="session")
def emulator_server(emulator_config: EmulatorConfig) -> Iterator[EmulatorServer]:
    """A live emulator for the whole session, on a free loopback port."""
    with EmulatorServer(emulator_config, clock=ControllableClock()) as server:
        yield server


def _fresh(server: EmulatorServer) -> None:
    unfreeze = getattr(server.state.clock, "unfreeze", None)
    if unfreeze is not None:
        unfreeze()
    server.state.reset()


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Iterator[EmulatorHandle]:
    """The session's live emulator, reset before and after the test."""
    _fresh(emulator_server)
    yield EmulatorHandle(emulator_server)
    _fresh(emulator_server)


@pytest.fixture
def emulator_asgi(emulator_config: EmulatorConfig) -> Iterator[AsgiEmulatorHandle]:
    """A fresh in-process emulator app with an ``httpx.ASGITransport`` (frozen clock)."""
    handle = AsgiEmulatorHandle(emulator_config)
    yield handle
    handle.close()
