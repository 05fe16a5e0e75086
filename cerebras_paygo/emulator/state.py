"""``EmulatorState``: everything one emulator run remembers, behind one lock.

The app's handlers and the test thread (fixtures, ``EmulatorServer.state``) both use it, so every
method takes ``lock``; the handlers never hold it across an ``await``.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from cerebras_paygo.emulator.billing import Ledger
from cerebras_paygo.emulator.cache import PromptCache
from cerebras_paygo.emulator.clock import Clock, ControllableClock
from cerebras_paygo.emulator.config import EmulatorConfig, OrgConfig
from cerebras_paygo.emulator.facts import Facts, ModelFacts, ServerLimits, default_facts
from cerebras_paygo.emulator.faults import FaultState
from cerebras_paygo.emulator.limits import BucketSet, RateLimiter, resolve_limits
from cerebras_paygo.emulator.stats import Stats

__all__ = ["EmulatorState"]


class EmulatorState:
    """Config, model facts, buckets, balances, faults, prompt cache and stats of one run.

    Args:
        config: the run's configuration (default: ``EmulatorConfig()``); ``reset()`` returns to it.
        clock: seconds as a float (default: a ``ControllableClock`` over ``time.monotonic``).
        facts: model facts to use instead of the packaged ones (plus ``config.catalog_path``).
    """

    def __init__(
        self, config: EmulatorConfig | None = None, *, clock: Clock | None = None, facts: Facts | None = None
    ) -> None:
        self.lock = threading.RLock()
        self.clock: Clock = clock if clock is not None else ControllableClock()
        self._fixed_facts = facts
        self.initial_config = config if config is not None else EmulatorConfig()
        self._install(self.initial_config)

    # --- lifecycle -------------------------------------------------------------------------

    def _load_facts(self, config: EmulatorConfig) -> Facts:
        if self._fixed_facts is not None:
            return self._fixed_facts
        return Facts.load(config.catalog_path) if config.catalog_path else default_facts()

    def _install(self, config: EmulatorConfig) -> None:
        self.config = config
        self.facts = self._load_facts(config)
        self.limiter = RateLimiter()
        self.ledger = Ledger(config.orgs)
        self.faults = FaultState(config.faults, config.seed)
        self.counters = Stats()
        self.cache = PromptCache()
        self.in_flight = 0
        self.fingerprint = "fp_" + hashlib.sha256(f"emulator:{config.seed}".encode()).hexdigest()[:20]
        self._open_payment_window()

    def _open_payment_window(self) -> None:
        faults = self.config.faults
        if faults.payment_required_s is not None:
            self.ledger.force_zero(faults.payment_required_orgs, faults.payment_required_s, self.clock())

    def reset(self, config: EmulatorConfig | None = None) -> None:
        """Back to the initial config (or to ``config``): buckets full, balances and stats fresh."""
        with self.lock:
            self._install(config if config is not None else self.initial_config)

    def update_config(self, **changes: Any) -> EmulatorConfig:
        """Change config fields mid-run, keeping what still applies.

        Buckets keep their usage under new limits, orgs whose settings did not change keep their
        balance, new ``faults`` restart the fault counters (and open a 402 window if it has one).
        """
        with self.lock:
            old = self.config
            new = old.updated(**changes)
            self.config = new
            now = self.clock()
            if new.catalog_path != old.catalog_path:
                self.facts = self._load_facts(new)
            if new.orgs != old.orgs:
                self.ledger.configure(new.orgs, keep=True)
            self.limiter.reapply(
                ((key, self._limits(key[0], key[1])) for key in self.limiter.sets if self.org(key[0]) is not None),
                now,
            )
            if new.faults != old.faults or new.seed != old.seed:
                self.faults = FaultState(new.faults, new.seed)
                self._open_payment_window()
            return new

    def set_faults(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the current faults (counters restart); returns the live faults."""
        with self.lock:
            merged = {**self.config.faults.model_dump(), **fields}
            self.config = self.config.updated(faults=merged)
            self.faults = FaultState(self.config.faults, self.config.seed)
            self._open_payment_window()
            return self.faults.snapshot()

    def set_balance(self, org: str, balance_usd: float) -> dict[str, Any]:
        with self.lock:
            if org not in self.ledger.accounts:
                raise KeyError(org)
            now = self.clock()
            return self.ledger.set_balance(org, balance_usd, now).as_dict(now)

    def advance(self, seconds: float) -> None:
        """Move the clock ahead (needs a clock with ``advance``, as the default one has)."""
        advance = getattr(self.clock, "advance", None)
        if advance is None:
            raise TypeError("this emulator's clock cannot be advanced")
        advance(seconds)

    # --- lookups ---------------------------------------------------------------------------

    def org(self, name: str) -> OrgConfig | None:
        return self.config.org(name)

    def org_for_key(self, key: str | None) -> OrgConfig | None:
        if not key:
            return None
        name = self.config.keys.get(key)
        return self.config.org(name) if name is not None else None

    def model_spec(self, model: object) -> ModelFacts | None:
        """The facts of a model the API serves today; ``None`` for unknown or retired ids."""
        spec = self.facts.get(model) if isinstance(model, str) else None
        return None if spec is None or spec.is_retired(self.config.today) else spec

    def served_models(self) -> list[ModelFacts]:
        return self.facts.served(self.config.today)

    def _limits(self, org: str, model: str) -> ServerLimits:
        config = self.org(org)
        tier = config.tier if config is not None else "paygo"
        spec = self.facts.get(model)
        base = spec.rate_limits(tier) if spec is not None else ServerLimits()
        return resolve_limits(base, self.config.limits, org=org, tier=tier, model=model)

    def limits_for(self, org: str, model: str) -> ServerLimits:
        with self.lock:
            return self._limits(org, model)

    def buckets(self, org: str, model: str, now: float) -> BucketSet:
        """The buckets of (org, model); the caller holds ``lock``."""
        return self.limiter.get(org, model, self._limits(org, model), now)

    def rate_headers(self, org: str | None, model: str | None) -> dict[str, str]:
        """The six ``x-ratelimit-*`` headers for (org, model), or nominal ones when either is unknown."""
        with self.lock:
            now = self.clock()
            if model is None or self.model_spec(model) is None:
                served = self.served_models()
                model = served[0].id if served else None
            if org is not None and model is not None:
                return self.buckets(org, model, now).headers(now)
            limits = self._limits(org or "", model) if model else ServerLimits()
            return BucketSet(limits, now).headers(now)

    # --- observability ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts per status, 429s and 402s, tokens admitted/used/refunded, balances, per-model totals."""
        with self.lock:
            now = self.clock()
            data = self.counters.as_dict()
            data["in_flight"] = self.in_flight
            data["orgs"] = self.ledger.snapshot(now)
            data["balances"] = {name: org["balance_usd"] for name, org in data["orgs"].items()}
            data["buckets"] = {
                f"{org}/{model}": buckets.snapshot(now) for (org, model), buckets in self.limiter.sets.items()
            }
            data["faults"] = self.faults.snapshot()
            return data
