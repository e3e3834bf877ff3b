"""REST (rest.py) against the fake exchange and aioresponses: signing accepted/tampered, endpoints, clock offset."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from aioresponses import aioresponses
from pydantic import SecretStr

from tests.venues.mexc.conftest import T0_MS, CompatResponse
from tui_trader.domain.config import MexcConfig
from tui_trader.engine.clock import SimClock
from tui_trader.venues.mexc import errors as E
from tui_trader.venues.mexc.rest import MexcRest
from tui_trader.venues.mexc.web_utils import dumps


async def test_server_offset_measured_and_applied(fake, mexc_config):
    clock = SimClock(T0_MS)  # local clock far from the server's real time
    rest = MexcRest(mexc_config, clock)
    try:
        with pytest.raises(E.ClockSkew):  # 513 before the offset is known ...
            await rest.assets()
        assert abs(rest.offset_ms - (fake.now_ms() - T0_MS)) < 5_000  # ... and the 513 re-measured it
        assert (await rest.assets())[0]["currency"] == "USDT"
        assert abs(rest.request_time_ms() - fake.now_ms()) < 2_000
    finally:
        await rest.close()


async def test_signed_get_with_params_and_post_accepted(fake, rest):
    fake.positions = [{"positionId": 1, "symbol": "BTC_USDT", "positionType": 2, "holdVol": 5, "state": 1}]
    assert (await rest.open_positions("BTC_USDT"))[0]["holdVol"] == 5
    assert await rest.open_orders("BTC_USDT") == []
    await rest.change_leverage({"symbol": "BTC_USDT", "leverage": 3, "openType": 1, "positionType": 2})
    assert fake.leverage_calls == [{"symbol": "BTC_USDT", "leverage": 3, "openType": 1, "positionType": 2}]
    assert fake.rejected_signatures == 0


async def test_tampered_signature_rejected_with_602(fake, mexc_config, clock):
    bad = mexc_config.model_copy(update={"api_secret": SecretStr("WRONG-SECRET")})
    rest = MexcRest(bad, clock)
    try:
        await rest.sync_time()
        with pytest.raises(E.AuthError) as info:
            await rest.assets()
        assert info.value.code == 602 and "WRONG-SECRET" not in str(info.value)
        assert fake.rejected_signatures == 1
    finally:
        await rest.close()


async def test_body_tampered_after_signing_rejected(fake, rest):
    signed = dumps({"symbol": "BTC_USDT", "vol": 1, "side": 3, "type": 5, "openType": 1, "leverage": 3, "externalOid": "a1"})
    headers = rest.signer.headers(rest.request_time_ms(), signed)
    tampered = signed.replace('"vol":1', '"vol":100')
    async with rest.session().post(f"{fake.url}/api/v1/private/order/create", data=tampered, headers=headers) as resp:
        body = await resp.json()
    assert body["code"] == 602 and fake.orders == []


async def test_public_endpoints_decimal_exact(rest):
    detail = await rest.contract_detail("BTC_USDT")
    assert detail["contractSize"] == Decimal("0.0001") and detail["priceUnit"] == Decimal("0.1")
    assert (await rest.ticker("BTC_USDT"))["fairPrice"] == Decimal("60001.1")
    assert (await rest.fair_price("BTC_USDT"))["fairPrice"] == Decimal("60001.1")
    assert (await rest.index_price("BTC_USDT"))["indexPrice"] == Decimal("60000.9")
    assert (await rest.depth("BTC_USDT", 5))["bids"][0][0] == Decimal("60000.4")
    assert (await rest.klines("BTC_USDT", "Min1", 1700000000, 1700000060))["time"] == [1700000000, 1700000060]
    assert (await rest.funding_rate("BTC_USDT"))["fundingRate"] == Decimal("0.0001")
    with pytest.raises(ValueError):
        await rest.klines("BTC_USDT", "Min2")


async def test_order_endpoints_keep_big_ids_exact(fake, rest):
    body = dumps({"symbol": "BTC_USDT", "vol": 2, "side": 3, "type": 5, "openType": 1, "leverage": 3, "externalOid": "o-1"})
    created = await rest.create_order(body)
    oid = created["orderId"]
    assert int(oid) > 2**53
    assert str((await rest.get_order(oid))["orderId"]) == oid
    assert (await rest.get_order_by_external("BTC_USDT", "o-1"))["externalOid"] == "o-1"
    cancelled = await rest.cancel_orders([oid])
    assert str(cancelled[0]["orderId"]) == oid and fake.orders[0]["state"] == 4


async def test_private_call_without_keys_is_auth_error(fake, clock):
    rest = MexcRest(MexcConfig(rest_base=fake.url), clock)
    try:
        with pytest.raises(E.AuthError):
            await rest.assets()
    finally:
        await rest.close()


async def test_connection_refused_is_network_error(clock):
    rest = MexcRest(MexcConfig(rest_base="http://127.0.0.1:9", request_timeout_s=1), clock)
    try:
        with pytest.raises(E.NetworkError):
            await rest.ticker("BTC_USDT")
    finally:
        await rest.close()


async def test_aioresponses_timeout_and_html(clock):
    cfg = MexcConfig(rest_base="http://mexc.test", api_key=SecretStr("k"), api_secret=SecretStr("s"))
    rest = MexcRest(cfg, clock)
    try:
        with aioresponses() as m:
            m.get(re.compile(r"http://mexc\.test/api/v1/contract/ticker.*"), exception=TimeoutError())
            with pytest.raises(E.RequestTimeout):
                await rest.ticker("BTC_USDT")
            m.get(re.compile(r"http://mexc\.test/api/v1/private/account/assets.*"), status=502,
                  body="<html>bad gateway</html>", content_type="text/html", response_class=CompatResponse)
            with pytest.raises(E.ServerError) as info:
                await rest.assets()
            assert "HTML page" in str(info.value)
            m.get(re.compile(r"http://mexc\.test/api/v1/private/account/assets.*"),
                  payload={"success": False, "code": 1002, "message": "Contract not allow place order!"},
                  response_class=CompatResponse)
            with pytest.raises(E.ContractNotAllowed):
                await rest.assets()
    finally:
        await rest.close()


@pytest.mark.parametrize(("kind", "cls"), [("http500", E.ServerError), ("html", E.ServerError), ("nonjson", E.BadResponse),
                                            ("empty", E.BadResponse), ("drop", E.NetworkError), ("hang", E.RequestTimeout)])
async def test_faults_become_typed_retryable_errors(fake, rest, kind, cls):
    # aiohttp itself re-sends an idempotent GET once when a reused keep-alive socket is dropped
    fake.fault("positions", kind, times=2 if kind == "drop" else 1)
    with pytest.raises(cls):
        await rest.open_positions()
