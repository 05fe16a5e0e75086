"""Serving the emulator: ``EmulatorServer`` (a background thread, for tests) and ``run`` (the CLI)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn

from cerebras_paygo.emulator.app import create_app
from cerebras_paygo.emulator.clock import Clock
from cerebras_paygo.emulator.config import FREE_KEY, PAYGO_KEY, EmulatorConfig
from cerebras_paygo.emulator.faults import EmulatedConnectionDrop
from cerebras_paygo.emulator.state import EmulatorState

__all__ = ["EmulatorServer", "listening_socket", "run"]

logger = logging.getLogger("cerebras_paygo.emulator")


class _QuietDrops(logging.Filter):
    """Drop uvicorn's traceback for streams we cut on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, EmulatedConnectionDrop):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


_FILTER = _QuietDrops()


def _install_filter() -> None:
    log = logging.getLogger("uvicorn.error")
    if _FILTER not in log.filters:
        log.addFilter(_FILTER)


class EmulatorServer:
    """The emulator on loopback, served by uvicorn in a background thread.

    Usage::

        with EmulatorServer() as server:
            client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)

    Args:
        config: the run's configuration (default: ``EmulatorConfig()``).
        host: the interface to bind (loopback by default).
        port: the port; 0 picks a free one.
        clock: the emulator's clock (default: monotonic, advanceable and freezable).

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1`` (for OpenAI-style clients and ours).
        root_url: ``http://127.0.0.1:PORT`` (for the Cerebras SDK, which adds ``/v1`` itself).
        app: the Starlette app; ``state``: its ``EmulatorState`` (stats, reset, faults, balances).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Clock | None = None,
        log_level: str = "warning",
    ) -> None:
        self.state = EmulatorState(config, clock=clock)
        self.app = create_app(state=self.state)
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    @property
    def root_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the emulator server is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def api_key(self) -> str:
        """A paygo key of the config (``csk-emulator-paygo`` by default)."""
        return self.state.config.key_for("paygo") or PAYGO_KEY

    @property
    def free_api_key(self) -> str:
        return self.state.config.key_for("free") or FREE_KEY

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            return self
        _install_filter()
        sock = listening_socket(self.host, self._requested_port)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level=self._log_level,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"cerebras-emulator-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=5)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(timeout=2)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self.port = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self.port is not None else "not running"
        return f"EmulatorServer({where})"


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (``OSError`` if the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto set: asyncio then sets NODELAY
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT only: a listener still refuses
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that calls ``on_ready`` once it has started serving."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()


def run(
    config: EmulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    sock: socket.socket | None = None,
    on_ready: Callable[[], None] | None = None,
    **uvicorn_options: Any,
) -> None:
    """Serve the emulator in the foreground until interrupted (``cerebras-paygo emulate``).

    ``sock``: an already listening socket (``listening_socket``) to serve on instead of binding
    ``host:port``; ``on_ready``: called once the server accepts requests (the CLI's banner).
    """
    _install_filter()
    app = create_app(config)
    uvicorn_options.setdefault("log_level", "info")
    listener = sock if sock is not None else listening_socket(host, port)
    server = _AnnouncingServer(uvicorn.Config(app, lifespan="off", **uvicorn_options), on_ready)
    try:
        server.run(sockets=[listener])
    finally:
        if sock is None:
            listener.close()
