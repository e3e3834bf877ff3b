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
    assert len(fake.orders_with(OID)) == 1 and fake.calls["create"] == 2 and fake.calls["external"] == 2
    assert fake.orders[0]["raw"] == body() and oid == str(fake.orders[0]["orderId"])


async def test_repeated_request_603_is_looked_up(fake, client):
    fake.fault("create", "code", code=603)
    await client.create_order("BTC_USDT", OID, body())
    assert fake.calls["external"] == 2 and len(fake.orders_with(OID)) == 1


async def test_entry_is_resent_only_after_its_recv_window_and_a_second_lookup(fake, client, sleeps):
    fake.fault("create", "http500")
    await client.create_order("BTC_USDT", OID, body())
    # 1 s, the first lookup (not found), then the rest of the 10 s recv window + 2 s margin, the second lookup
    assert sleeps.delays == [1.0, 12.0] and fake.calls["external"] == 2 and fake.calls["create"] == 2


async def test_a_create_processed_late_is_adopted_by_the_second_lookup_not_doubled(fake, client):
    """The exchange holds the request: the first lookup says "not found", then the request is processed."""
    fake.fault("create", "http500")
    original_sleep = client.sleep
    delays: list[float] = []

    async def late_processing(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 2:  # between the two lookups: the held request lands at the exchange
            fake.orders.append({"orderId": 42, "symbol": "BTC_USDT", "externalOid": OID, "vol": 2, "side": 3,
                                "orderType": 5, "openType": 1, "leverage": 3, "price": 0, "state": 3, "dealVol": 2,
                                "positionId": 0, "createTime": fake.now_ms(), "updateTime": fake.now_ms()})
        await original_sleep(seconds)

    client.sleep = late_processing
    result = await client.create_order("BTC_USDT", OID, body())
    assert isinstance(result, dict) and str(result["orderId"]) == "42"
    assert len(fake.orders_with(OID)) == 1 and fake.calls["create"] == 1  # adopted, never re-sent


async def test_a_close_not_found_by_one_lookup_is_never_sent_again_under_its_id(fake, client, sleeps):
    """The close lane waits for no second lookup (10 s next to a liquidation), but the request may still be
    processed: it is not re-sent under its externalOid (MEXC would keep two orders under one id, booked as one);
    the caller's next leg goes under a new id."""
    fake.fault("create", "http500")
    with pytest.raises(AmbiguousOrderState):
        await client.create_order("BTC_USDT", OID, body(), close_lane=True)
    assert sleeps.delays == [1.0] and fake.calls["external"] == 1 and fake.calls["create"] == 1


async def test_lookup_not_found_as_2040_also_resends(fake, client):
    fake.lookup_not_found = "2040"
    fake.fault("create", "http500")
    await client.create_order("BTC_USDT", OID, body())
    assert len(fake.orders_with(OID)) == 1


async def test_gives_up_ambiguous_after_two_resends(fake, client):
    fake.fault("create", "http500", times=3)
    with pytest.raises(AmbiguousOrderState):
        await client.create_order("BTC_USDT", OID, body())
    assert fake.calls["create"] == 3 and fake.calls["external"] == 6 and fake.orders == []


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
