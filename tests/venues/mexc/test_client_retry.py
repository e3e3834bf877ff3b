"""Retry policy (client.py): counts, exact delays via the injected sleep, only Retryable retried, close lane."""

from __future__ import annotations

import pytest

from tui_trader.domain.config import RetryConfig
from tui_trader.venues.mexc import errors as E
from tui_trader.venues.mexc.client import MexcClient


async def test_retries_retryable_with_exponential_delays_then_succeeds(fake, client, sleeps):
    fake.fault("positions", "http500", times=2)
    assert await client.call(client.rest.open_positions, "positions") == []
    assert fake.calls["positions"] == 3
    assert sleeps.delays == [1.0, 2.0]  # 1 s initial, x2, jitter 0 in this fixture


async def test_gives_up_after_attempts_and_reraises_last_error(fake, client, sleeps):
    fake.fault("positions", "nonjson", times=5)
    with pytest.raises(E.BadResponse):
        await client.call(client.rest.open_positions, "positions")
    assert fake.calls["positions"] == 3 and sleeps.delays == [1.0, 2.0]


async def test_rate_limit_waits_at_least_retry_after(fake, rest, clock, sleeps, breaker_config):
    cfg = RetryConfig(attempts=3, initial_s=0.1, multiplier=2, jitter_s=0)
    client = MexcClient(rest, cfg, breaker_config, clock, sleep=sleeps)
    fake.fault("assets", "code", code=510, times=1)
    await client.call(rest.assets, "assets")
    assert sleeps.delays == [1.0]  # 0.1 s would be the plain back-off; 510 demands >= 1 s


async def test_jitter_is_bounded_and_seeded(fake, rest, clock, sleeps, breaker_config):
    import random

    cfg = RetryConfig(attempts=3, initial_s=1, multiplier=2, jitter_s=0.5, max_s=30)
    client = MexcClient(rest, cfg, breaker_config, clock, sleep=sleeps, rng=random.Random(1))
    fake.fault("assets", "http500", times=2)
    await client.call(rest.assets, "assets")
    assert 1.0 <= sleeps.delays[0] <= 1.5 and 2.0 <= sleeps.delays[1] <= 2.5
    assert sleeps.delays[0] != 1.0


@pytest.mark.parametrize("code", [401, 602, 600, 1002, 2005, 2009])
async def test_permanent_errors_are_not_retried(fake, client, sleeps, code):
    fake.fault("assets", "code", code=code)
    with pytest.raises(E.Permanent):
        await client.call(client.rest.assets, "assets")
    assert fake.calls["assets"] == 1 and sleeps.delays == []


async def test_call_timeout_counts_as_retryable_timeout(fake, rest, clock, sleeps):
    from tui_trader.domain.config import BreakerConfig

    client = MexcClient(rest, RetryConfig(attempts=2, jitter_s=0), BreakerConfig(call_timeout_s=0.5), clock, sleep=sleeps)
    fake.fault("assets", "hang")
    assert (await client.call(rest.assets, "assets"))[0]["currency"] == "USDT"
    assert fake.calls["assets"] == 2 and sleeps.delays == [1.0]


async def test_clock_skew_resyncs_then_retry_succeeds(fake, client, sleeps):
    fake.server_offset_ms = 60_000  # the server clock jumps a minute ahead
    await client.call(client.rest.assets, "assets")
    assert fake.calls["assets"] == 2 and fake.calls["ping"] == 2  # start + resync after 513


async def test_close_lane_retries_fast_and_caps_waits_at_1s(fake, client, sleeps):
    fake.fault("positions", "code", code=510, times=2)
    await client.call(client.rest.open_positions, "positions", close_lane=True)
    assert sleeps.delays == [1.0, 1.0]
    sleeps.delays.clear()
    fake.fault("positions", "http500", times=2)
    await client.call(client.rest.open_positions, "positions", close_lane=True)
    assert sleeps.delays == [0.25, 0.5] and max(sleeps.delays) <= 1.0
