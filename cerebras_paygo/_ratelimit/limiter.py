"""``Limiter``: waits, reservations, jitter, fallbacks and logging over one ``Storage``.

Two axes, as in ``limits``: this class is the only limiter, and a storage (``MemoryStorage`` in
process, ``RedisStorage`` across processes and machines) keeps the buckets. The limiter never
sleeps and never holds a lock across I/O; the caller sleeps ``send_delay`` outside it.

Backend failures (Redis down, timeouts): with ``on_backend_error="local"`` (the default) the
limiter warns once and books on an in-process ``MemoryStorage`` whose limits are divided by
``workers`` (the number of processes sharing the quota), probing the backend again at most every
``probe_interval`` seconds; with ``"raise"`` every call raises ``BackendUnavailableError``.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from cerebras_paygo._ratelimit.base import AsyncStorage, BucketStats, Reservation, Scope, Storage, Ticket
from cerebras_paygo._ratelimit.gcra import US, to_us
from cerebras_paygo._ratelimit.limits import RateLimits
from cerebras_paygo._ratelimit.memory import MemoryStorage
from cerebras_paygo._wire import RateLimitSnapshot
from cerebras_paygo.errors import BackendUnavailableError, ConfigurationError, RateLimitError, RequestTooLargeError

if TYPE_CHECKING:
    from cerebras_paygo._ratelimit.redis_storage import AsyncRedisStorage, RedisStorage

__all__ = ["Limiter", "MemoryLimiter", "shared_limiter"]

logger = logging.getLogger("cerebras_paygo.ratelimit")

#: Waits longer than this (seconds) are logged at INFO, shorter ones at DEBUG.
SLOW_WAIT_S = 1.0

#: Seconds of headroom kept on request buckets that no ``x-ratelimit-*`` header reports
#: (requests-minute and -hour on Cerebras): the server's window starts when our first request
#: arrives, after ours, and latencies jitter. At 1,000 RPM the burst is 983 requests, not 1,000;
#: the steady rate stays at the limit (``gcra.request_margin``).
REQUEST_MARGIN_S = 1.0

T = TypeVar("T")


class Limiter:
    """The shared rate limiter: token-aware GCRA reservations per ``Scope``, over one storage.

    Usage (what the call pipeline does)::

        limiter = shared_limiter()                 # or Limiter.from_url("redis://host:6379/0")
        r = limiter.acquire(scope, limits, prompt_estimate + max_completion_tokens, max_wait=60)
        try:
            while (delay := limiter.send_delay(r)) > 0:   # r.wait_s, then any 429 pause
                time.sleep(delay)
            response = send()
        except BaseException:
            limiter.release(r)          # never sent: request and tokens return
            raise
        limiter.settle(r, response.usage.total_tokens)
        limiter.apply_headers(scope, limits, response.rate_limits)

    Args:
        storage: where the buckets live (default: a fresh ``MemoryStorage``). A ``redis.Redis``,
            ``redis.cluster.RedisCluster`` or ``redis.asyncio`` client is accepted too.
        async_storage: the awaitable twin of ``storage`` for the ``a*`` methods (a Redis backend
            over ``redis.asyncio``). Without it the ``a*`` methods of a remote storage run its
            blocking calls in a worker thread; a memory storage is called directly (no I/O).
        clock: seconds on a monotonic clock, the one ``RateLimitSnapshot.received_at`` and
            ``Reservation.start`` use (default: the storage's clock, else ``time.monotonic``).
        rng: source of the pause jitter (seed it in tests).
        max_pause_jitter: after a 429 pause, callers resume spread over ``min(this, 0.2 * pause)``
            seconds so they do not all fire at once.
        on_backend_error: ``"local"`` (fall back to local limits / ``workers``) or ``"raise"``.
        workers: how many processes share the quota; the local fallback books ``limit // workers``.
        probe_interval: seconds between attempts to return to a failed backend.
        request_margin: seconds of headroom on request buckets no header reports (0: the exact
            bucket; see ``REQUEST_MARGIN_S``).
    """

    def __init__(
        self,
        storage: Storage | AsyncStorage | Any | None = None,
        *,
        async_storage: AsyncStorage | None = None,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
        max_pause_jitter: float = 1.0,
        on_backend_error: Literal["local", "raise"] = "local",
        workers: int = 1,
        probe_interval: float = 5.0,
        request_margin: float = REQUEST_MARGIN_S,
    ) -> None:
        if on_backend_error not in ("local", "raise"):
            raise ConfigurationError(f"on_backend_error must be 'local' or 'raise', not {on_backend_error!r}")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ConfigurationError(f"workers must be an integer >= 1, not {workers!r}")
        if not isinstance(request_margin, (int, float)) or not 0 <= request_margin <= 60:
            raise ConfigurationError(f"request_margin must be seconds in [0, 60], not {request_margin!r}")
        self._margin_us = to_us(request_margin)
        if storage is not None and not isinstance(storage, (Storage, AsyncStorage)):
            storage, async_storage = _storages_for_client(storage, async_storage)
        if isinstance(storage, AsyncStorage) and not isinstance(storage, Storage):
            storage, async_storage = None, storage
        if storage is None and async_storage is None:
            storage = MemoryStorage(clock=clock or time.monotonic)
        self._storage: Storage | None = storage
        self._astorage = async_storage
        primary: object = storage if storage is not None else async_storage
        self.clock: Callable[[], float] = clock or getattr(primary, "clock", None) or time.monotonic
        for backend in (storage, async_storage):
            if backend is not None and not isinstance(backend, MemoryStorage) and hasattr(backend, "clock"):
                # A remote storage keeps its own (server) clock; it reads ours only to convert.
                backend.clock = self.clock
        self._remote = not isinstance(primary, MemoryStorage)
        self._rng = rng if rng is not None else random.Random()
        self._max_jitter = max(0.0, max_pause_jitter)
        self._on_error = on_backend_error
        self._workers = workers
        self._probe_interval = probe_interval
        self._local = MemoryStorage(clock=self.clock)
        self._down = False
        self._next_probe = 0.0
        self._flag_lock = threading.Lock()

    def __repr__(self) -> str:
        backend = self._storage if self._storage is not None else self._astorage
        return f"Limiter({backend!r}{', fallback: local' if self._down else ''})"

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "cerebras_paygo:rl",
        timeout: float = 1.0,
        lease: float = 30.0,
        idle_ttl: float = 600.0,
        cluster: bool | None = None,
        **kwargs: Any,
    ) -> Limiter:
        """A limiter from a URL: ``memory://``, ``redis://host:port/db``, ``rediss://...`` (TLS), or
        ``redis+cluster://host:port`` / ``rediss+cluster://`` (or ``cluster=True``) for Redis Cluster.

        ``timeout`` bounds connecting and each reply (seconds), so a request never hangs on an
        unreachable Redis; ``lease`` and ``idle_ttl`` are ``RedisStorage``'s; other keyword arguments
        go to ``Limiter``. The sync and the asyncio clients are made from the same URL (one asyncio
        client per event loop).
        """
        scheme, sep, _ = url.partition("://")
        if not sep:
            raise ConfigurationError(f"not a limiter URL (memory:// or redis://...): {_redact(url)!r}")
        if scheme == "memory":
            return cls(None, **kwargs)
        if scheme.endswith("+cluster"):
            scheme, cluster = scheme.removesuffix("+cluster"), True
            url = scheme + url[url.index("://") :]
        if scheme not in ("redis", "rediss", "unix"):
            raise ConfigurationError(f"unknown limiter URL scheme {scheme!r}: use memory://, redis:// or rediss://")
        from cerebras_paygo._ratelimit.redis_storage import AsyncRedisStorage, RedisStorage

        options = {"prefix": prefix, "lease": lease, "idle_ttl": idle_ttl}
        sync = RedisStorage.from_url(url, timeout=timeout, cluster=bool(cluster), **options)
        aio = AsyncRedisStorage.from_url(url, timeout=timeout, cluster=bool(cluster), **options)
        return cls(sync, async_storage=aio, **kwargs)

    @classmethod
    def from_client(
        cls,
        client: Any,
        *,
        async_client: Any = None,
        prefix: str = "cerebras_paygo:rl",
        lease: float = 30.0,
        idle_ttl: float = 600.0,
        **kwargs: Any,
    ) -> Limiter:
        """A Redis limiter over ready clients: ``redis.Redis`` or ``redis.cluster.RedisCluster`` for
        the sync methods, ``redis.asyncio.Redis`` / ``RedisCluster`` for the ``a*`` ones (either may
        be given as ``client``; set their socket timeouts yourself)."""
        sync, aio = _storages_for_client(client, async_client, prefix=prefix, lease=lease, idle_ttl=idle_ttl)
        return cls(sync, async_storage=aio, **kwargs)

    # --- dispatch: backend, or local fallback ---------------------------------------------------

    def _divided(self, limits: RateLimits) -> RateLimits:
        if self._workers == 1:
            return limits
        return RateLimits(**{name: max(1, value // self._workers) for name, value in limits.items()})

    def _divided_snapshot(self, snapshot: RateLimitSnapshot) -> RateLimitSnapshot:
        if self._workers == 1:
            return snapshot
        w = self._workers
        return RateLimitSnapshot(
            limit={k: max(1, v // w) for k, v in snapshot.limit.items()},
            remaining={k: v // w for k, v in snapshot.remaining.items()},
            reset=dict(snapshot.reset),
            received_at=snapshot.received_at,
            received_wall=snapshot.received_wall,
        )

    def _use_backend(self) -> bool:
        """True: call the backend (healthy, or time to probe it); False: the local fallback."""
        if not self._down:
            return True
        now = self.clock()
        with self._flag_lock:
            if now >= self._next_probe:
                self._next_probe = now + self._probe_interval
                return True
        return False

    def _failed(self, exc: BackendUnavailableError) -> None:
        if self._on_error == "raise":
            raise exc
        with self._flag_lock:
            first = not self._down
            self._down = True
            self._next_probe = self.clock() + self._probe_interval
        if first:
            logger.warning(
                "rate limit backend unavailable (%s); using local limits / %d worker(s) until it is back",
                exc,
                self._workers,
            )

    def _recovered(self) -> None:
        if self._down:
            with self._flag_lock:
                was_down, self._down = self._down, False
            if was_down:
                logger.warning("rate limit backend is back; shared limits again")

    def _sync_backend(self) -> Storage:
        if self._storage is None:
            raise ConfigurationError("this Limiter has only an asyncio Redis client: use the a* methods")
        return self._storage

    def _run(self, call: Callable[[Storage, bool], T]) -> T:
        """``call(storage, is_local)`` on the backend, or on the local fallback when it fails."""
        if self._remote and not self._use_backend():
            return call(self._local, True)
        backend = self._sync_backend()
        if not self._remote:
            return call(backend, False)
        try:
            result = call(backend, False)
        except BackendUnavailableError as exc:
            self._failed(exc)
            return call(self._local, True)
        self._recovered()
        return result

    async def _arun(self, call: Callable[[Any, bool], Any]) -> Any:
        """The async ``_run``: the awaitable backend, or the blocking one in a worker thread."""
        if self._remote and not self._use_backend():
            return call(self._local, True)
        if not self._remote:
            return call(self._sync_backend(), False)
        try:
            if self._astorage is not None:
                result = await call(self._astorage, False)
            else:
                import anyio.to_thread

                result = await anyio.to_thread.run_sync(functools.partial(call, self._sync_backend(), False))
        except BackendUnavailableError as exc:
            self._failed(exc)
            return call(self._local, True)
        self._recovered()
        return result

    # --- acquire ------------------------------------------------------------------------------

    def _prepare(self, tokens: int, max_wait: float | None) -> tuple[float, int | None]:
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            raise ConfigurationError(f"tokens must be an integer >= 0, not {tokens!r}")
        return self._rng.random(), None if max_wait is None else max(0, to_us(max_wait))

    def _booking(
        self, scope: Scope, limits: RateLimits, tokens: int, max_wait_us: int | None, jitter: float
    ) -> Callable[[Any, bool], Any]:
        """The reserve step, for ``_run`` / ``_arun`` (a local fallback books its share of ``limits``)."""
        return lambda s, local: s.reserve(
            scope,
            self._divided(limits) if local else limits,
            tokens,
            max_wait_us=max_wait_us,
            jitter=jitter,
            margin_us=self._margin_us,
        )

    def _granted(self, scope: Scope, ticket: Ticket, limits: RateLimits) -> Reservation:
        reservation = Reservation(scope, ticket, start=self.clock() + ticket.wait_us / US, owner=self, limits=limits)
        logger.log(
            logging.INFO if reservation.wait_s > SLOW_WAIT_S else logging.DEBUG,
            "acquire %s tokens=%d wait=%.3fs binding=%s",
            scope,
            ticket.tokens,
            reservation.wait_s,
            ticket.binding,
        )
        return reservation

    def acquire(self, scope: Scope, limits: RateLimits, tokens: int, *, max_wait: float | None = None) -> Reservation:
        """Book 1 request and ``tokens`` on every bucket of ``limits``; never sleeps.

        ``limits`` are the user's over the catalog's; limits learned from headers override them.
        The booking is all-or-nothing and FIFO: it may start after every earlier booking of the
        scope, and after a 429 pause (plus jitter).

        Returns:
            The reservation: sleep ``wait_s`` (better: loop on ``send_delay``), then send.

        Raises:
            RequestTooLargeError: ``tokens`` exceed a token bucket's capacity.
            RateLimitError: the wait would exceed ``max_wait`` seconds (``quota`` "tokens" or
                "requests", None for a 429 pause; ``type`` "local_rate_limit"). Nothing is booked.
            ConfigurationError: ``tokens`` is not an integer >= 0.
            BackendUnavailableError: the backend failed and ``on_backend_error="raise"``.
        """
        jitter, max_wait_us = self._prepare(tokens, max_wait)
        try:
            ticket = self._run(self._booking(scope, limits, tokens, max_wait_us, jitter))
        except (RateLimitError, RequestTooLargeError) as exc:
            logger.debug("acquire %s tokens=%d refused: %s", scope, tokens, exc)
            raise
        return self._granted(scope, ticket, limits)

    async def aacquire(
        self, scope: Scope, limits: RateLimits, tokens: int, *, max_wait: float | None = None
    ) -> Reservation:
        """``acquire`` for event loops (awaits the backend's I/O; same semantics)."""
        jitter, max_wait_us = self._prepare(tokens, max_wait)
        try:
            ticket = await self._arun(self._booking(scope, limits, tokens, max_wait_us, jitter))
        except (RateLimitError, RequestTooLargeError) as exc:
            logger.debug("acquire %s tokens=%d refused: %s", scope, tokens, exc)
            raise
        return self._granted(scope, cast(Ticket, ticket), limits)

    # --- settle / release ---------------------------------------------------------------------

    def _claim(self, reservation: Reservation) -> bool:
        """Mark the reservation closed; False when it already was (only the first close counts)."""
        if reservation._owner is not self:
            raise ConfigurationError("this reservation was granted by another limiter")
        with self._flag_lock:
            if reservation._closed:
                return False
            reservation._closed = True
            return True

    def _ticket_call(self, reservation: Reservation, call: Callable[[Storage], T], default: T) -> T:
        ticket = reservation.ticket
        if ticket.source is self._local or not self._remote:
            return call(cast(Storage, ticket.source))
        try:
            result = call(self._sync_backend())
        except BackendUnavailableError as exc:
            self._failed(exc)
            return default
        self._recovered()
        return result

    async def _aticket_call(self, reservation: Reservation, call: Callable[[Any], Any], default: Any) -> Any:
        ticket = reservation.ticket
        if ticket.source is self._local or not self._remote:
            return call(ticket.source)
        try:
            if self._astorage is not None:
                result = await call(self._astorage)
            else:
                import anyio.to_thread

                result = await anyio.to_thread.run_sync(functools.partial(call, self._sync_backend()))
        except BackendUnavailableError as exc:
            self._failed(exc)
            return default
        self._recovered()
        return result

    def _log_close(self, what: str, reservation: Reservation, actual: int | None, first: bool, done: bool) -> None:
        note = "" if first and done else " (already closed: ignored)" if not first else " (reclaimed or reset)"
        if actual is None:
            logger.debug("release %s tokens=%d%s", reservation.scope, reservation.tokens, note)
        else:
            logger.debug("settle %s reserved=%d actual=%d%s", reservation.scope, reservation.tokens, actual, note)

    def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        """The request was sent: correct its booking to ``actual_tokens``.

        Unused tokens return at once (never past full) and move the bookings queued behind it
        earlier; extra tokens are charged. Call it with the usage the server reported, or with
        ``reservation.tokens`` to keep the charge when the usage is unknown (timeout or broken
        stream after the server admitted the request). Idempotent: only the first settle or release
        of a reservation counts.
        """
        actual = max(0, int(actual_tokens))
        first = self._claim(reservation)
        done = first and self._ticket_call(
            reservation, lambda s: s.close(reservation.scope, reservation.ticket, actual), False
        )
        self._log_close("settle", reservation, actual, first, done)

    async def asettle(self, reservation: Reservation, actual_tokens: int) -> None:
        """``settle`` for event loops."""
        actual = max(0, int(actual_tokens))
        first = self._claim(reservation)
        done = first and await self._aticket_call(
            reservation, lambda s: s.close(reservation.scope, reservation.ticket, actual), False
        )
        self._log_close("settle", reservation, actual, first, done)

    def release(self, reservation: Reservation) -> None:
        """The request never reached the server (cancelled, connection refused, 429, 402): return
        its request and tokens, moving the bookings queued behind it earlier. Idempotent."""
        first = self._claim(reservation)
        done = first and self._ticket_call(
            reservation, lambda s: s.close(reservation.scope, reservation.ticket, None), False
        )
        self._log_close("release", reservation, None, first, done)

    async def arelease(self, reservation: Reservation) -> None:
        """``release`` for event loops."""
        first = self._claim(reservation)
        done = first and await self._aticket_call(
            reservation, lambda s: s.close(reservation.scope, reservation.ticket, None), False
        )
        self._log_close("release", reservation, None, first, done)

    # --- header sync --------------------------------------------------------------------------

    def _headers_call(
        self, scope: Scope, limits: RateLimits, snapshot: RateLimitSnapshot, in_flight_tokens: int | None
    ) -> Callable[[Any, bool], Any]:
        received = snapshot.received_at
        age_us = 0 if received <= 0 else max(0, to_us(self.clock() - received))

        def call(storage: Any, local: bool) -> Any:
            if local:
                flight = None if in_flight_tokens is None else in_flight_tokens // self._workers
                return storage.apply_headers(
                    scope,
                    self._divided(limits),
                    self._divided_snapshot(snapshot),
                    age_us=age_us,
                    in_flight_tokens=flight,
                )
            return storage.apply_headers(scope, limits, snapshot, age_us=age_us, in_flight_tokens=in_flight_tokens)

        return call

    def _headers_done(
        self, scope: Scope, snapshot: RateLimitSnapshot, result: tuple[RateLimits, bool], local: bool
    ) -> RateLimits:
        effective, applied = result
        if logger.isEnabledFor(logging.DEBUG):  # not the dict copies of every response with logging off
            logger.debug(
                "apply_headers %s remaining=%s limit=%s%s",
                scope,
                dict(snapshot.remaining),
                dict(snapshot.limit),
                "" if applied else " (stale: ignored)",
            )
        if local and self._workers > 1:
            return RateLimits(**{name: value * self._workers for name, value in effective.items()})
        return effective

    def apply_headers(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        in_flight_tokens: int | None = None,
    ) -> RateLimits:
        """Correct the scope's buckets from one response's ``x-ratelimit-*`` headers.

        ``limit-*`` values are adopted and override ``limits`` from now on. ``remaining-*`` only
        lowers a bucket, to ``remaining`` minus what the server has not counted yet: by default the
        requests and tokens of reservations still sleeping their wait (``in_flight_tokens``
        overrides the token figure). Snapshots older than the newest applied one are ignored.
        ``snapshot.received_at`` is read on this limiter's clock (0.0: now).

        Returns:
            The effective limits: header limits over ``limits``.
        """
        call = self._headers_call(scope, limits, snapshot, in_flight_tokens)
        local_box: list[bool] = []

        def run(storage: Storage, local: bool) -> tuple[RateLimits, bool]:
            local_box.append(local)
            return cast("tuple[RateLimits, bool]", call(storage, local))

        result = self._run(run)
        return self._headers_done(scope, snapshot, result, local_box[-1])

    async def aapply_headers(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        in_flight_tokens: int | None = None,
    ) -> RateLimits:
        """``apply_headers`` for event loops."""
        call = self._headers_call(scope, limits, snapshot, in_flight_tokens)
        local_box: list[bool] = []

        def run(storage: Any, local: bool) -> Any:
            local_box.append(local)
            return call(storage, local)

        result = await self._arun(run)
        return self._headers_done(scope, snapshot, result, local_box[-1])

    def sync(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        in_flight_tokens: int | None = None,
    ) -> RateLimits:
        """Deprecated alias of ``apply_headers`` (kept while the call pipeline moves over)."""
        return self.apply_headers(scope, limits, snapshot, in_flight_tokens=in_flight_tokens)

    async def async_(
        self,
        scope: Scope,
        limits: RateLimits,
        snapshot: RateLimitSnapshot,
        *,
        in_flight_tokens: int | None = None,
    ) -> RateLimits:
        """Deprecated alias of ``aapply_headers``."""
        return await self.aapply_headers(scope, limits, snapshot, in_flight_tokens=in_flight_tokens)

    # --- 429 pause ----------------------------------------------------------------------------

    def _pause_args(self, seconds: float) -> tuple[int, int] | None:
        if not seconds > 0:
            return None
        seconds = min(seconds, 86400.0)
        return to_us(seconds), to_us(min(self._max_jitter, 0.2 * seconds))

    def pause(self, scope: Scope, seconds: float) -> None:
        """A 429: nothing on ``scope`` starts before now + ``seconds``; a pause is never shortened.

        New reservations get ``wait_s`` >= the pause left (plus jitter); holders of reservations
        already granted must check ``send_delay`` (or ``pause_remaining``) before sending.
        """
        args = self._pause_args(seconds)
        if args is None:
            return
        self._run(lambda s, _local: s.pause(scope, *args))
        logger.info("rate limit: %s paused for %.2fs after a 429", scope, args[0] / US)

    async def apause(self, scope: Scope, seconds: float) -> None:
        """``pause`` for event loops."""
        args = self._pause_args(seconds)
        if args is None:
            return
        await self._arun(lambda s, _local: s.pause(scope, *args))
        logger.info("rate limit: %s paused for %.2fs after a 429", scope, args[0] / US)

    def pause_remaining(self, scope: Scope) -> float:
        """Seconds left of the scope's 429 pause (0.0 if none), without jitter."""
        return self._run(lambda s, _local: s.pause_remaining(scope)) / US

    async def apause_remaining(self, scope: Scope) -> float:
        """``pause_remaining`` for event loops."""
        return cast(int, await self._arun(lambda s, _local: s.pause_remaining(scope))) / US

    # --- send delay ---------------------------------------------------------------------------

    def send_delay(self, reservation: Reservation) -> float:
        """Seconds before ``reservation`` may be sent: its own wait (moved earlier by refunds, later
        by header syncs), or a later 429 pause (with this reservation's jitter). 0.0 means send now.
        Loop on it: a pause may come while sleeping.

        A booking whose holder stayed away longer than its lease (Redis) was reclaimed for the
        fleet; it is booked again here, at the back of the queue, so what is sent is counted.
        """
        delay = self._ticket_call(reservation, lambda s: s.delay(reservation.scope, reservation.ticket), 0)
        if reservation.ticket.reclaimed:
            return self._rebooked(reservation, self._run(self._booking_again(reservation)))
        return delay / US

    async def asend_delay(self, reservation: Reservation) -> float:
        """``send_delay`` for event loops."""
        delay = await self._aticket_call(reservation, lambda s: s.delay(reservation.scope, reservation.ticket), 0)
        if reservation.ticket.reclaimed:
            return self._rebooked(reservation, cast(Ticket, await self._arun(self._booking_again(reservation))))
        return cast(int, delay) / US

    def _booking_again(self, reservation: Reservation) -> Callable[[Any, bool], Any]:
        """The reserve step of a reclaimed reservation: same scope, limits, tokens and jitter; no bound."""
        ticket = reservation.ticket
        return self._booking(reservation.scope, reservation.limits, reservation.tokens, None, ticket.jitter)

    def _rebooked(self, reservation: Reservation, ticket: Ticket) -> float:
        reservation.rebook(ticket, start=self.clock() + ticket.wait_us / US)
        logger.warning(
            "rate limit: %s booked again (wait %.3fs) after its reservation was reclaimed",
            reservation.scope,
            reservation.wait_s,
        )
        return reservation.wait_s

    # --- stats / reset ------------------------------------------------------------------------

    def stats(self, scope: Scope | None = None) -> list[BucketStats]:
        """One ``BucketStats`` per bucket of ``scope`` (every scope when None)."""
        return self._run(lambda s, _local: s.stats(scope, self.clock()))

    async def astats(self, scope: Scope | None = None) -> list[BucketStats]:
        """``stats`` for event loops."""
        return cast("list[BucketStats]", await self._arun(lambda s, _local: s.stats(scope, self.clock())))

    def reset(self, scope: Scope | None = None) -> None:
        """Forget the state of ``scope`` (every scope when None): buckets start full again.

        Reservations still open stay valid; settling or releasing them becomes a no-op. On Redis
        this deletes the scope's key (every key under the prefix when None) for every process.
        """
        self._local.reset(scope)
        if self._remote:
            try:
                self._sync_backend().reset(scope)
            except BackendUnavailableError as exc:
                self._failed(exc)
        else:
            self._sync_backend().reset(scope)


def _storages_for_client(
    client: Any, async_client: Any, **options: Any
) -> tuple[RedisStorage | None, AsyncRedisStorage | None]:
    """Wrap ready redis-py clients (sync and/or asyncio) in Redis storages."""
    from cerebras_paygo._ratelimit.redis_storage import AsyncRedisStorage, RedisStorage

    sync: RedisStorage | None = None
    aio: AsyncRedisStorage | None = None
    for candidate in (client, async_client):
        if candidate is None:
            continue
        if isinstance(candidate, (RedisStorage, AsyncRedisStorage)):
            if isinstance(candidate, RedisStorage):
                sync = candidate
            else:
                aio = candidate
        elif type(candidate).__module__.startswith("redis.asyncio"):
            aio = AsyncRedisStorage(candidate, **options)
        elif type(candidate).__module__.startswith("redis"):
            sync = RedisStorage(candidate, **options)
        else:
            raise ConfigurationError(
                f"not a limiter storage nor a redis-py client: {type(candidate).__name__} "
                "(use MemoryStorage, Limiter.from_url, or a redis.Redis / redis.asyncio.Redis client)"
            )
    return sync, aio


def _redact(url: str) -> str:
    """The URL without its password (never log or raise a credential)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


class MemoryLimiter(Limiter):
    """A ``Limiter`` over a fresh ``MemoryStorage`` (one process; threads and event loops share it).

    Args:
        clock: seconds on a monotonic clock; ``RateLimitSnapshot.received_at`` must use the same one.
        rng: source of the pause jitter (seed it in tests).
        max_pause_jitter: after a 429 pause, callers resume spread over ``min(this, 0.2 * pause)``.
        request_margin: seconds of headroom on request buckets no header reports.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        max_pause_jitter: float = 1.0,
        request_margin: float = REQUEST_MARGIN_S,
    ) -> None:
        super().__init__(
            MemoryStorage(clock=clock), rng=rng, max_pause_jitter=max_pause_jitter, request_margin=request_margin
        )


_shared: Limiter | None = None
_shared_lock = threading.Lock()


def shared_limiter() -> Limiter:
    """The process-wide memory ``Limiter``: every client, adapter and event loop of a process that
    uses the same key and model shares its buckets (LangChain and LlamaIndex models included).

    Processes do not share it (a forked child keeps a copy); use ``Limiter.from_url("redis://...")``
    for that.
    """
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = MemoryLimiter()
    return _shared
