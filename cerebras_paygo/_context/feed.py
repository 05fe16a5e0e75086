"""The estimator's calibration, shared by every process on one Redis (``CalibrationFeed``).

Each process's ``TokenEstimator`` learns from the responses it gets (``observe``). With Redis, what
it learns is also appended to one capped Redis stream (``<prefix>:cal``, a single key, so Redis
Cluster is fine), and every other process folds the entries it did not write into its own
estimator (``TokenEstimator.learn``). A worker that starts later replays the last entries first,
so worker 2 begins where worker 1 is, instead of at the prior.

What is shared is an ``Observation``: the raw token-count parts of one estimate, its low end, the
exactness flag and the server's ``usage.prompt_tokens``; never text, never a key (calibration is
per model, whatever the key). The estimator never waits for Redis: ``publish`` queues, and one
daemon thread per feed sends the queue and reads the others' entries every ``interval`` seconds
(about a second behind; ``sync_now()`` does one round at once). Redis errors are logged once per
outage and skipped: calibration is best effort, a call never fails for it.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from cerebras_paygo._context.calibration import Observation

if TYPE_CHECKING:
    from cerebras_paygo._context.estimator import TokenEstimator

__all__ = ["CalibrationFeed"]

logger = logging.getLogger("cerebras_paygo.calibration")

#: Entries the stream keeps (about the estimator's memory: older ones weigh next to nothing).
STREAM_LENGTH = 2048
#: Entries a feed replays when it starts.
REPLAY = 1024
#: The stream expires when no process has written to it for this long.
TTL_S = 7 * 24 * 3600

_FEEDS: weakref.WeakSet[CalibrationFeed] = weakref.WeakSet()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _encode(model: str, origin: str, observation: Observation) -> dict[str, str]:
    return {
        "o": origin,
        "m": model,
        "p": ",".join(repr(float(part)) for part in observation.parts),
        "l": repr(float(observation.low)),
        "x": "1" if observation.exact else "0",
        "a": str(int(observation.actual)),
    }


def _decode(fields: dict[Any, Any]) -> tuple[str, str, Observation] | None:
    """An entry's origin, model and observation; None for an entry that is not one of ours."""
    try:
        data = {_text(key): _text(value) for key, value in fields.items()}
        parts = tuple(float(part) for part in data["p"].split(","))
        if len(parts) != 6:
            return None
        a, b, c, d, e, f = parts
        observation = Observation((a, b, c, d, e, f), float(data["l"]), data["x"] == "1", int(data["a"]))
        return data["o"], data["m"], observation
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


class CalibrationFeed:
    """Shares the observations of the estimators attached to it with every process on ``client``'s Redis.

    Args:
        client: a sync redis-py client (``redis.Redis`` or ``RedisCluster``).
        prefix: the first part of the stream's key (``<prefix>:cal``).
        interval: seconds between the background thread's rounds; ``None``: no thread (call
            ``sync_now()`` yourself).
    """

    def __init__(self, client: Any, *, prefix: str, interval: float | None = 1.0) -> None:
        self._client = client
        self.key = f"{prefix}:cal"
        self._interval = interval
        self._pending: deque[tuple[str, Observation]] = deque(maxlen=STREAM_LENGTH)
        self._estimators: weakref.WeakSet[TokenEstimator] = weakref.WeakSet()
        self._wake = threading.Event()
        self._failing = False
        self._reset_process()  # origin, read position, thread and round lock: per process
        _FEEDS.add(self)

    def _reset_process(self) -> None:
        # A forked child is another process: its own origin (its siblings must not skip its
        # entries as their own), nothing of the parent's queue, its own thread.
        self.origin = os.urandom(8).hex()
        self._last_id: str | None = None
        self._pending.clear()
        self._thread: threading.Thread | None = None
        self._round = threading.Lock()  # one round at a time (the thread's or sync_now's)

    def attach(self, estimator: TokenEstimator) -> None:
        """Share what ``estimator`` observes, and teach it what the other processes observe."""
        self._estimators.add(estimator)
        estimator.add_feed(self)
        self._ensure_thread()

    def publish(self, model: str, observation: Observation) -> None:
        """Queue an observation for the other processes (no I/O here)."""
        self._pending.append((model, observation))
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._interval is None:
            return
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with _START_LOCK:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=_loop, args=(weakref.ref(self),), name="cerebras-paygo-calibration", daemon=True
                )
                self._thread.start()

    def sync_now(self) -> int:
        """One round now: send the queue, learn the others' new entries. Returns how many were learned.

        Raises redis-py's errors (the background thread logs them instead).
        """
        with self._round:
            self._flush()
            return self._pull()

    def _flush(self) -> None:
        if not self._pending:
            return
        batch = []
        while self._pending:
            batch.append(self._pending.popleft())
        try:
            pipe = self._client.pipeline(transaction=False)
            for model, observation in batch:
                pipe.xadd(self.key, _encode(model, self.origin, observation), maxlen=STREAM_LENGTH, approximate=True)
            pipe.expire(self.key, TTL_S)
            pipe.execute()
        except Exception:
            self._pending.extendleft(reversed(batch))  # sent next round (the deque stays bounded)
            raise

    def _pull(self) -> int:
        if self._last_id is None:
            entries = list(reversed(self._client.xrevrange(self.key, count=REPLAY)))
        else:
            entries = self._client.xrange(self.key, min=f"({self._last_id}", count=REPLAY)
        learned = 0
        for entry_id, fields in entries:
            self._last_id = _text(entry_id)
            decoded = _decode(fields)
            if decoded is None or decoded[0] == self.origin:
                continue
            _, model, observation = decoded
            for estimator in list(self._estimators):
                estimator.learn(model, observation)
            learned += 1
        if self._last_id is None:
            self._last_id = "0-0"  # an empty stream: read everything from now on
        return learned

    def _background_round(self) -> None:
        try:
            self.sync_now()
        except Exception as exc:
            if not self._failing:
                self._failing = True
                logger.warning("sharing the token estimator's calibration failed (%s); retrying", type(exc).__name__)
            return
        if self._failing:
            self._failing = False
            logger.info("sharing the token estimator's calibration again")

    def __repr__(self) -> str:
        return f"CalibrationFeed(key={self.key!r})"


_START_LOCK = threading.Lock()


def _loop(ref: weakref.ref[CalibrationFeed]) -> None:
    """The feed's thread: a round every ``interval`` seconds while the feed lives."""
    while True:
        feed = ref()
        if feed is None:
            return
        wake, interval = feed._wake, feed._interval or 1.0
        feed._background_round()
        del feed  # hold no reference while waiting: an abandoned feed ends its thread
        wake.wait(interval)


def _after_fork_in_child() -> None:
    for feed in list(_FEEDS):
        feed._reset_process()
        for estimator in list(feed._estimators):
            # The parent's feed thread may have held it at the fork: a child must not inherit
            # a lock that no thread of its own will ever release.
            estimator._reset_lock_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
