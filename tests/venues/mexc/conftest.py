"""Fixtures for the MEXC venue tests: the fake exchange, configs pointing at it, recorded sleeps."""

from __future__ import annotations

import random

import aiohttp

import pytest
from pydantic import SecretStr

from tests.venues.mexc.fake_exchange import API_KEY, SECRET, FakeMexc
from tui_trader.domain.config import BreakerConfig, MexcConfig, RetryConfig
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock
from tui_trader.venues.mexc.client import MexcClient
from tui_trader.venues.mexc.rest import MexcRest
from tui_trader.venues.mexc.venue import MexcVenue

T0_MS = 1_700_000_000_000


class SleepRecorder:
    """Injected async sleep: records each requested delay and returns at once (no waiting)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def fake():
    exchange = FakeMexc()
    await exchange.start()
    yield exchange
    await exchange.stop()


@pytest.fixture
async def fx():
    """A fake that fills orders (the fake's own tests, spoken to over plain HTTP / WS)."""
    exchange = FakeMexc(fills=True)
    await exchange.start()
    yield exchange
    await exchange.stop()


@pytest.fixture
async def session():
    """A plain aiohttp client session: the fake's tests talk to it without our client code."""
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def mexc_config(fake: FakeMexc) -> MexcConfig:
    return MexcConfig(
        rest_base=fake.url, ws_url=fake.ws_url, api_key=SecretStr(API_KEY), api_secret=SecretStr(SECRET),
        request_timeout_s=0.4, connect_timeout_s=0.4, ws_ping_interval_s=0.05, ws_stall_timeout_s=0.3,
        ws_reconnect_initial_s=0.01, ws_reconnect_max_s=0.05, poll_interval_s=1.0,
    )


@pytest.fixture
def retry_config() -> RetryConfig:
    return RetryConfig(jitter_s=0.0)


@pytest.fixture
def breaker_config() -> BreakerConfig:
    return BreakerConfig(call_timeout_s=2.0)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0_MS)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
async def rest(mexc_config, clock):
    r = MexcRest(mexc_config, clock)
    await r.sync_time()
    yield r
    await r.close()


@pytest.fixture
def client(rest, retry_config, breaker_config, clock, sleeps) -> MexcClient:
    return MexcClient(rest, retry_config, breaker_config, clock, sleep=sleeps, rng=random.Random(7))


@pytest.fixture
def venue(client, bus) -> MexcVenue:
    return MexcVenue(client, bus=bus, symbols=["BTC_USDT"])


class _NoStreamWriter:
    output_size = 0


class CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without aiohttp 3.14's new `stream_writer` argument;
    pass this as `response_class=` so its mocked responses construct on 3.14."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("stream_writer", _NoStreamWriter())
        super().__init__(*args, **kwargs)


@pytest.fixture
def advance(clock, fake):
    """Move the simulated clock and the fake exchange's clock together (Request-Time stays valid)."""

    def _advance(seconds: float) -> None:
        clock.advance(seconds)
        fake.server_offset_ms += round(seconds * 1000)

    return _advance
