"""Circuit breaker (breaker.py / client.py): closed -> open -> half-open -> closed on the injected clock."""

from __future__ import annotations

import pytest

from tui_trader.domain.config import BreakerConfig, RetryConfig
from tui_trader.venues.mexc import errors as E
from tui_trader.venues.mexc.client import MexcClient


@pytest.fixture
def one_shot(rest, clock, sleeps):
    """Client with 1 attempt per call so each failing call is one breaker failure."""
    changes: list[tuple[str, str]] = []
    client = MexcClient(rest, RetryConfig(attempts=1, jitter_s=0), BreakerConfig(fail_max=5, reset_timeout_s=60), clock,
                        sleep=sleeps, on_breaker_change=lambda a, b: changes.append((a, b)))
    client.changes = changes  # type: ignore[attr-defined]
    return client


async def _fail(client, fake, n):
    for _ in range(n):
        fake.fault("positions", "http500")
        with pytest.raises(E.ServerError):
            await client.call(client.rest.open_positions, "positions")


async def test_full_cycle_closed_open_half_open_closed(fake, one_shot, advance):
    await _fail(one_shot, fake, 4)
    assert one_shot.breaker.state == "closed" and one_shot.breaker.fail_counter == 4
    await _fail(one_shot, fake, 1)
    assert one_shot.breaker.state == "open"
    calls = fake.calls["positions"]
    with pytest.raises(E.BreakerOpen) as info:  # open: nothing is sent
        await one_shot.call(one_shot.rest.open_positions, "positions")
    assert fake.calls["positions"] == calls and info.value.retry_after_s == pytest.approx(60)
    advance(59)
    with pytest.raises(E.BreakerOpen):
        await one_shot.call(one_shot.rest.open_positions, "positions")
    advance(1)  # reset timeout over: one trial goes through (half-open), succeeds -> closed
    assert await one_shot.call(one_shot.rest.open_positions, "positions") == []
    assert one_shot.breaker.state == "closed" and one_shot.breaker.fail_counter == 0
    assert one_shot.changes == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]


async def test_failed_trial_reopens(fake, one_shot, advance):
    await _fail(one_shot, fake, 5)
    advance(60)
    await _fail(one_shot, fake, 1)
    assert one_shot.breaker.state == "open"
    assert ("half-open", "open") in one_shot.changes
    with pytest.raises(E.BreakerOpen):
        await one_shot.call(one_shot.rest.open_positions, "positions")


async def test_answers_do_not_count_as_failures(fake, one_shot):
    for _ in range(7):
        fake.fault("positions", "code", code=600)
        with pytest.raises(E.ParameterError):
            await one_shot.call(one_shot.rest.open_positions, "positions")
    assert one_shot.breaker.state == "closed" and one_shot.breaker.fail_counter == 0


async def test_breaker_wraps_the_retries(fake, rest, clock, sleeps):
    """Retries run inside the breaker: one exhausted operation = one breaker failure."""
    client = MexcClient(rest, RetryConfig(attempts=3, jitter_s=0), BreakerConfig(fail_max=2), clock, sleep=sleeps)
    fake.fault("positions", "http500", times=3)
    with pytest.raises(E.ServerError):
        await client.call(rest.open_positions, "positions")
    assert fake.calls["positions"] == 3 and client.breaker.fail_counter == 1


async def test_close_lane_ignores_open_breaker(fake, one_shot):
    await _fail(one_shot, fake, 5)
    assert one_shot.breaker.state == "open"
    assert await one_shot.call(one_shot.rest.open_positions, "positions", close_lane=True) == []
    assert one_shot.breaker.state == "open"  # the close lane neither waits on nor resets it
