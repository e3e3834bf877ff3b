"""Idempotent order create (mexc.md 5.4): ambiguous failures end with exactly one order at the fake."""

from __future__ import annotations

import pytest

from tui_trader.domain.errors import AmbiguousOrderState
from tui_trader.venues.mexc import errors as E
from tui_trader.venues.mexc.web_utils import dumps

OID = "ext-0001"


def body(oid: str = OID) -> str:
    return dumps({"symbol": "BTC_USDT", "vol": 2, "side": 3, "type": 5, "openType": 1, "leverage": 3, "externalOid": oid})


async def test_plain_success_returns_id_string(fake, client):
    oid = await client.create_order("BTC_USDT", OID, body())
    assert oid == str(fake.orders[0]["orderId"]) and fake.calls["create"] == 1 and fake.calls["external"] == 0


async def test_timeout_after_accept_is_adopted_not_resent(fake, client, sleeps):
    fake.fault("create", "hang_after")  # the exchange stores the order, the answer never comes
    result = await client.create_order("BTC_USDT", OID, body())
    assert len(fake.orders_with(OID)) == 1 and fake.calls["create"] == 1
    assert fake.calls["external"] == 1 and sleeps.delays == [1.0]  # waited ~1 s, then looked it up
    assert isinstance(result, dict) and str(result["orderId"]) == str(fake.orders[0]["orderId"])


async def test_connection_dropped_after_accept_is_adopted(fake, client):
    fake.fault("create", "drop_after")
    await client.create_order("BTC_USDT", OID, body())
    assert len(fake.orders_with(OID)) == 1 and fake.calls["create"] == 1


@pytest.mark.parametrize("kind", ["hang", "drop", "http500", "nonjson", "html"])
async def test_not_accepted_is_looked_up_then_resent_same_body(fake, client, kind):
    fake.fault("create", kind)
    oid = await client.create_order("BTC_USDT", OID, body())
    assert len(fake.orders_with(OID)) == 1 and fake.calls["create"] == 2 and fake.calls["external"] == 1
    assert fake.orders[0]["raw"] == body() and oid == str(fake.orders[0]["orderId"])


async def test_repeated_request_603_is_looked_up(fake, client):
    fake.fault("create", "code", code=603)
    await client.create_order("BTC_USDT", OID, body())
    assert fake.calls["external"] == 1 and len(fake.orders_with(OID)) == 1


async def test_lookup_not_found_as_2040_also_resends(fake, client):
    fake.lookup_not_found = "2040"
    fake.fault("create", "http500")
    await client.create_order("BTC_USDT", OID, body())
    assert len(fake.orders_with(OID)) == 1


async def test_gives_up_ambiguous_after_two_resends(fake, client):
    fake.fault("create", "http500", times=3)
    with pytest.raises(AmbiguousOrderState):
        await client.create_order("BTC_USDT", OID, body())
    assert fake.calls["create"] == 3 and fake.calls["external"] == 3 and fake.orders == []


async def test_failed_lookup_never_resends_blind(fake, client):
    fake.fault("create", "http500")
    fake.fault("external", "http500", times=3)
    with pytest.raises(AmbiguousOrderState):
        await client.create_order("BTC_USDT", OID, body())
    assert fake.calls["create"] == 1


async def test_rate_limited_create_waits_and_resends_without_lookup(fake, client, sleeps):
    fake.fault("create", "code", code=510)
    await client.create_order("BTC_USDT", OID, body())
    assert fake.calls["external"] == 0 and fake.calls["create"] == 2 and sleeps.delays == [1.0]
    assert len(fake.orders_with(OID)) == 1


@pytest.mark.parametrize(("code", "cls"), [(2005, E.InsufficientBalance), (1002, E.ContractNotAllowed), (600, E.ParameterError)])
async def test_business_answers_raise_without_resend(fake, client, code, cls):
    fake.fault("create", "code", code=code)
    with pytest.raises(cls):
        await client.create_order("BTC_USDT", OID, body())
    assert fake.calls["create"] == 1 and fake.calls["external"] == 0
