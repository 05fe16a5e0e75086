"""Prepaid balances: debit per completion, 402 at zero, auto-recharge with a delay, 402 windows.

A request is admitted while the balance is above zero and then debited in full, so concurrent or
large requests can leave a small negative balance, as on the real API. Free-tier orgs are never
billed and never get 402. Not thread-safe: the state's lock guards it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cerebras_paygo.emulator.config import AutoRecharge, OrgConfig

__all__ = ["Account", "Ledger"]


@dataclass
class Account:
    name: str
    tier: str
    balance: float
    auto_recharge: AutoRecharge | None
    spent_usd: float = 0.0
    recharge_due: float | None = None
    forced_until: float | None = None
    recharges: int = 0

    @property
    def billed(self) -> bool:
        return self.tier != "free"

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "tier": self.tier,
            "balance_usd": self.balance,
            "spent_usd": self.spent_usd,
            "recharges": self.recharges,
            "recharge_pending_s": None if self.recharge_due is None else max(0.0, self.recharge_due - now),
            "payment_required_s": (
                None if self.forced_until is None or self.forced_until <= now else self.forced_until - now
            ),
        }


class Ledger:
    def __init__(self, orgs: Iterable[OrgConfig]) -> None:
        self.accounts: dict[str, Account] = {}
        self.configure(orgs, keep=False)

    def configure(self, orgs: Iterable[OrgConfig], *, keep: bool = True) -> None:
        """Adopt a new org list; with ``keep``, orgs whose config did not change keep their balance."""
        old = self.accounts
        self.accounts = {}
        for org in orgs:
            previous = old.get(org.name) if keep else None
            if previous is not None and previous.tier == org.tier and previous.auto_recharge == org.auto_recharge:
                self.accounts[org.name] = previous
                continue
            self.accounts[org.name] = Account(org.name, org.tier, org.balance_usd, org.auto_recharge)

    def _settle(self, account: Account, now: float) -> None:
        if account.recharge_due is not None and now >= account.recharge_due:
            assert account.auto_recharge is not None
            account.balance += account.auto_recharge.amount_usd
            account.recharge_due = None
            account.forced_until = None
            account.recharges += 1
        if account.forced_until is not None and now >= account.forced_until:
            account.forced_until = None

    def _maybe_recharge(self, account: Account, now: float) -> None:
        recharge = account.auto_recharge
        if recharge is None or account.recharge_due is not None:
            return
        if account.balance <= recharge.threshold_usd or account.forced_until is not None:
            account.recharge_due = now + recharge.delay_s
            self._settle(account, now)

    def can_spend(self, org: str, now: float) -> bool:
        """False means 402: a billed org whose balance is zero or less (or inside a 402 window)."""
        account = self.accounts[org]
        if not account.billed:
            return True
        self._settle(account, now)
        if account.forced_until is not None:
            return False
        return account.balance > 0

    def debit(self, org: str, usd: float, now: float) -> None:
        account = self.accounts[org]
        if not account.billed:
            return
        self._settle(account, now)
        account.balance -= usd
        account.spent_usd += usd
        self._maybe_recharge(account, now)

    def set_balance(self, org: str, usd: float, now: float) -> Account:
        """Set (``usd``) the balance; ends a 402 window of the org."""
        account = self.accounts[org]
        account.balance = usd
        account.forced_until = None
        self._maybe_recharge(account, now)
        return account

    def force_zero(self, orgs: Iterable[str] | None, seconds: float, now: float) -> None:
        """Open a 402 window; an org with auto-recharge gets a recharge triggered (ending the window)."""
        names = list(orgs) if orgs is not None else [a.name for a in self.accounts.values() if a.billed]
        for name in names:
            account = self.accounts.get(name)
            if account is None or not account.billed:
                continue
            account.forced_until = now + seconds if math.isfinite(seconds) else math.inf
            self._maybe_recharge(account, now)

    def snapshot(self, now: float) -> dict[str, dict[str, Any]]:
        for account in self.accounts.values():
            self._settle(account, now)
        return {name: account.as_dict(now) for name, account in self.accounts.items()}
