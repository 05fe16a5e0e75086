"""Billing: per-token debit, 402 at zero, negative balance, free tier, auto-recharge timing, 402 windows."""

from __future__ import annotations

import math

import httpx
import pytest

from cerebras_paygo.emulator.config import AutoRecharge, OrgConfig
from tests.emulator._helpers import GLM, MODEL, assert_rate_headers, chat

PAYMENT_REQUIRED = {
    "message": "Payment required to access this resource. Visit your billing tab.",
    "type": "payment_required_error",
    "param": "quota",
    "code": "payment_required",
}


@pytest.fixture
def client(emulator):
    emulator.freeze_time()
    with emulator.client() as client:
        yield client


def test_each_completion_is_debited_at_the_published_prices(emulator, client):
    start = emulator.balance()
    usage = chat(client, "Tell me about rivers", model=GLM).json()["usage"]
    # zai-glm-4.7: $2.25 in / $2.75 out per million tokens (cerebras-api.md section 6).
    expected = (usage["prompt_tokens"] * 2.25 + usage["completion_tokens"] * 2.75) / 1_000_000
    assert emulator.balance() == pytest.approx(start - expected)
    stats = emulator.stats()
    assert stats["models"][GLM]["cost_usd"] == pytest.approx(expected)
    assert stats["orgs"][emulator.paygo_org]["spent_usd"] == pytest.approx(expected)


def test_zero_balance_is_402_with_headers(emulator, client):
    emulator.set_balance(emulator.paygo_org, 0.0)
    response = chat(client)
    assert response.status_code == 402
    assert response.json() == PAYMENT_REQUIRED
    assert_rate_headers(response)
    assert emulator.stats()["payment_required"] == 1
    emulator.set_balance(emulator.paygo_org, 5.0)
    assert chat(client).status_code == 200


def test_admitted_request_is_debited_in_full_leaving_a_negative_balance(emulator, client):
    emulator.set_balance(emulator.paygo_org, 1e-7)
    assert chat(client, "Tell me about rivers", max_completion_tokens=100).status_code == 200
    assert emulator.balance() < 0
    assert chat(client).status_code == 402


def test_free_tier_is_never_billed_nor_402(emulator):
    with emulator.client(free=True) as free:
        for _ in range(3):
            assert chat(free, max_completion_tokens=50).status_code == 200
    org = emulator.stats()["orgs"][emulator.free_org]
    assert org["spent_usd"] == 0.0
    assert org["balance_usd"] == 0.0


def test_custom_402_body(emulator, client):
    emulator.configure(payment_required_body={"detail": "no credit"})
    emulator.set_balance(emulator.paygo_org, 0)
    assert chat(client).json() == {"detail": "no credit"}


def test_auto_recharge_lands_after_its_delay(emulator, client):
    org = emulator.paygo_org
    emulator.configure(
        orgs=[
            OrgConfig(
                name=org,
                tier="paygo",
                balance_usd=1e-6,
                auto_recharge=AutoRecharge(threshold_usd=0.0, amount_usd=10.0, delay_s=30.0),
            ),
            OrgConfig(name=emulator.free_org, tier="free"),
        ]
    )
    assert chat(client, "Tell me about rivers").status_code == 200  # debited below zero: recharge triggered
    assert emulator.balance() < 0
    assert emulator.stats()["orgs"][org]["recharge_pending_s"] == pytest.approx(30.0)
    assert chat(client).status_code == 402
    emulator.advance(29.9)
    assert chat(client).status_code == 402
    emulator.advance(0.2)
    assert chat(client).status_code == 200
    stats = emulator.stats()["orgs"][org]
    assert stats["recharges"] == 1
    assert 9.99 < stats["balance_usd"] < 10.0


def test_auto_recharge_without_delay_keeps_requests_flowing(emulator, client):
    org = emulator.paygo_org
    emulator.configure(
        orgs=[
            OrgConfig(
                name=org,
                tier="paygo",
                balance_usd=0.001,
                auto_recharge=AutoRecharge(threshold_usd=0.0005, amount_usd=1),
            )
        ],
        keys={emulator.api_key: org},
    )
    for _ in range(5):
        assert chat(client, "Tell me about rivers", model=GLM).status_code == 200
    assert emulator.stats()["orgs"][org]["recharges"] == 1
    assert 0.99 < emulator.balance() < 1.001


def test_402_window_for_a_fixed_time(emulator, client):
    emulator.set_faults(payment_required_s=10)
    assert chat(client).status_code == 402
    with emulator.client(free=True) as free:
        assert chat(free, max_completion_tokens=50).status_code == 200  # free orgs are not in the window
    emulator.advance(10)
    assert chat(client).status_code == 200
    assert emulator.balance() > 99  # the balance itself was not touched


def test_402_window_until_recharge(emulator, client):
    org = emulator.paygo_org
    emulator.configure(
        orgs=[
            OrgConfig(name=org, balance_usd=50, auto_recharge=AutoRecharge(threshold_usd=1, amount_usd=25, delay_s=5)),
            OrgConfig(name=emulator.free_org, tier="free"),
        ]
    )
    emulator.set_faults(payment_required_s=math.inf)
    assert chat(client).status_code == 402
    emulator.advance(4)
    assert chat(client).status_code == 402
    emulator.advance(1)
    assert chat(client).status_code == 200
    assert emulator.balance() > 74


def test_402_window_ends_when_the_balance_is_set_over_http(emulator, client):
    emulator.set_faults(payment_required_s=math.inf)
    assert chat(client).status_code == 402
    response = httpx.post(f"{emulator.root_url}/_emulator/orgs/{emulator.paygo_org}/balance", json={"balance_usd": 3})
    assert response.status_code == 200
    assert response.json()["balance_usd"] == 3
    assert chat(client).status_code == 200
    missing = httpx.post(f"{emulator.root_url}/_emulator/orgs/nobody/balance", json={"balance_usd": 3})
    assert missing.status_code == 404


def test_402_before_rate_limits_and_after_validation(emulator, client):
    emulator.set_balance(emulator.paygo_org, 0)
    assert chat(client, min_p=1).status_code == 400
    assert chat(client, model="llama3.1-8b").status_code == 404
    assert chat(client, model=MODEL).status_code == 402
