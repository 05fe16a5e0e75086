"""``ClientOwner``: how an adapter model's core client is built, copied, pickled and closed."""

from __future__ import annotations

import copy
import pickle
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr

from cerebras_paygo._adapters import ClientOwner
from cerebras_paygo._client import CerebrasClient
from cerebras_paygo._payment import PaymentPolicy


class Reporter:
    def __init__(self) -> None:
        self.outages: list[object] = []

    def report(self, info: object) -> None:
        self.outages.append(info)


class Owner(ClientOwner, BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    api_key: str | None = None
    tier: Literal["paygo", "free"] | None = None
    payment_policy: PaymentPolicy | None = None
    client: CerebrasClient | None = None

    _client: CerebrasClient | None = PrivateAttr(default=None)

    def _build_client(self) -> CerebrasClient:
        return CerebrasClient(api_key=self.api_key, tier=self.tier, payment_policy=self.payment_policy)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CEREBRAS_API_KEY", "CEREBRAS_TIER"):
        monkeypatch.delenv(name, raising=False)


def test_built_once_lazily_unless_it_has_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    owner = Owner(api_key="csk-a")
    assert owner._client is None
    assert owner.cerebras_client is owner.cerebras_client
    keyless = Owner()
    assert keyless.cerebras_client.settings.api_key is None
    assert keyless._client is None, "a client without a key is not kept"
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-later")
    assert keyless.cerebras_client.settings.api_key is not None
    assert keyless.cerebras_client is keyless.cerebras_client


def test_copies_build_their_own_client_and_share_the_given_one() -> None:
    owner = Owner(api_key="csk-a")
    built = owner.cerebras_client
    for copied in (copy.copy(owner), copy.deepcopy(owner), owner.model_copy(), owner.model_copy(deep=True)):
        assert copied._client is None and copied.cerebras_client is not built
    assert owner.model_copy(update={"tier": "free"}).cerebras_client.settings.tier == "free"
    shared = CerebrasClient(api_key="csk-shared")
    with_client = Owner(client=shared)
    assert copy.deepcopy(with_client).cerebras_client is shared
    assert with_client.model_copy(deep=True).client is shared


def test_a_deep_copy_shares_the_payment_policy_and_its_hook() -> None:
    reporter = Reporter()
    policy = PaymentPolicy(on_payment_required=reporter.report)
    copied = copy.deepcopy(Owner(api_key="csk-a", payment_policy=policy))
    assert copied.payment_policy is policy
    assert copied.cerebras_client.payment_policy.on_payment_required is not None
    copied.cerebras_client.payment_policy.on_payment_required({"outage": 1})
    assert reporter.outages == [{"outage": 1}], "the hook reports to the caller's object, not to a copy"


def test_a_pickle_leaves_the_built_client_out() -> None:
    owner = Owner(api_key="csk-a")
    built = owner.cerebras_client
    pickled = pickle.dumps(owner)
    assert b"csk-a" not in pickled  # no secret in a pickle: the key is read from the env again
    revived = pickle.loads(pickled)
    assert revived._client is None and revived.api_key is None
    assert revived.cerebras_client is not built


async def test_close_closes_only_a_built_client(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []
    monkeypatch.setattr(CerebrasClient, "close", lambda self: closed.append("sync"))

    async def aclose(self: CerebrasClient) -> None:
        closed.append("async")

    monkeypatch.setattr(CerebrasClient, "aclose", aclose)
    shared = Owner(client=CerebrasClient(api_key="csk-shared"))
    shared.close()
    await shared.aclose()
    assert closed == []
    owner = Owner(api_key="csk-a")
    owner.close()
    assert closed == [], "nothing built, nothing to close"
    _ = owner.cerebras_client
    owner.close()
    await owner.aclose()
    assert closed == ["sync", "async"]


def test_resolved_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    # "auto" (the default) has not heard from the server: PayGo's window until it has.
    assert Owner()._resolved_tier() == "paygo"
    client = CerebrasClient(api_key="k")
    assert Owner(client=client)._resolved_tier() == "paygo"
    client.key_tier.learn("free")
    assert Owner(client=client)._resolved_tier() == "free"
    monkeypatch.setenv("CEREBRAS_TIER", "FREE")
    assert Owner()._resolved_tier() == "free"
    assert Owner(tier="paygo")._resolved_tier() == "paygo"
    assert Owner(tier="paygo", client=CerebrasClient(api_key="k", tier="free"))._resolved_tier() == "free"
