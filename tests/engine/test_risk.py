"""Risk guard: entry limits with reasons, kill switch ACTIVE -> REDUCING -> HALTED on loss / drawdown,
persistence across a restart, explicit reset, and the whole path on the paper venue."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.conftest import settle
from tests.engine.harness import SYM, Stack
from tui_trader.domain.config import RiskConfig
from tui_trader.domain.errors import RiskRejected
from tui_trader.domain.events import AccountUpdated, OrderUpdated, TradingStateChanged
from tui_trader.domain.intents import OpenPosition
from tui_trader.domain.models import Account, ClientOrderId, OrderState, Side
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock
from tui_trader.engine.emergency import EmergencyClose
from tui_trader.engine.risk import STATE_KEY, RiskGuard, TradingState
from tui_trader.store.memory import MemoryStore

T0 = 1_700_000_000_000  # 2023-11-14 22:13 UTC


def entry(lev=3, size=10.0, cid="e-1"):
    return OpenPosition(0, "strat:X", SYM, Side.SHORT, ClientOrderId(cid), size, lev)


def account(cash="10000", margin="0"):
    return Account("USDT", D(cash), D(margin))


def guard(store=None, **cfg):
    bus, clock = EventBus(), SimClock(T0)
    events, trips = [], []
    bus.subscribe(events.append, [TradingStateChanged])
    g = RiskGuard(bus, clock, RiskConfig(**cfg), store, on_trip=trips.append)
    return g, events, trips


def states(events):
    return [e.state for e in events]


@pytest.mark.parametrize("intent, open_positions, pending, acct, reason", [
    (entry(lev=21), 0, 0, account(), "max_leverage 20"),
    (entry(), 2, 1, account(), "max_open_positions is 3"),
    (entry(size=12.0), 0, 0, account(), "max_position_pct 10"),
    (entry(size=10.0), 0, 0, account(cash="10000", margin="-5000"), "max_position_pct 10"),  # available > equity
])
async def test_entry_limits_refuse_with_the_limit_named(intent, open_positions, pending, acct, reason):
    g, _, _ = guard()
    with pytest.raises(RiskRejected, match=reason):
        g.check_open(intent, acct, open_positions, pending)


async def test_entry_within_limits_passes():
    g, _, _ = guard()
    g.check_open(entry(lev=20, size=10.0), account(), 2, 0)  # 10 % of 10 000 = 10 % of equity: allowed


async def test_daily_loss_trips_the_switch_and_refuses_entries_with_the_reason():
    g, events, trips = guard(daily_loss_limit_pct=5, max_drawdown_pct=50)
    g.observe_equity(D(10000))
    g.observe_equity(D("9600"))
    assert g.state is TradingState.ACTIVE
    g.observe_equity(D("9499"))
    assert states(events) == ["REDUCING", "HALTED"]  # nothing open (no cache): flat at once
    assert "daily loss 5.01 %" in events[0].reason and trips == [events[0].reason]
    with pytest.raises(RiskRejected, match="HALTED"):
        g.check_open(entry(), account(), 0, 0)


async def test_loss_is_counted_from_the_start_of_the_utc_day():
    g, events, _ = guard(daily_loss_limit_pct=5, max_drawdown_pct=50)
    g.observe_equity(D(10000))
    g.observe_equity(D(9600))
    g.clock.advance(3 * 3600)  # past 00:00 UTC: today starts at 9 600
    g.observe_equity(D(9600))
    g.observe_equity(D(9200))  # 4.2 % today, 8 % since yesterday
    assert events == []
    g.observe_equity(D(9100))
    assert states(events)[0] == "REDUCING"


async def test_drawdown_from_peak_trips():
    g, events, trips = guard(daily_loss_limit_pct=50, max_drawdown_pct=15)
    for eq in (10000, 12000, 10300):
        g.observe_equity(D(eq))
    assert events == []
    g.observe_equity(D(10190))  # 15.08 % below 12 000
    assert states(events) == ["REDUCING", "HALTED"] and "drawdown" in trips[0]


async def test_state_survives_a_restart_and_only_reset_rearms():
    store = MemoryStore()
    g, _, _ = guard(store, max_drawdown_pct=10, daily_loss_limit_pct=50)
    await g.start()
    g.observe_equity(D(10000))
    g.observe_equity(D(8900))
    await g.flush()
    assert store.state[STATE_KEY]["state"] == "HALTED"

    g2, events2, trips2 = guard(store, max_drawdown_pct=10, daily_loss_limit_pct=50)
    await g2.start()
    assert g2.state is TradingState.HALTED and states(events2) == ["HALTED"] and "drawdown" in events2[0].reason
    with pytest.raises(RiskRejected):
        g2.check_open(entry(), account(), 0, 0)
    g2.observe_equity(D(8900))
    g2.reset("user pressed reset")
    assert g2.state is TradingState.ACTIVE and events2[-1].reason == "user pressed reset"
    g2.observe_equity(D(8850))  # the peak restarted at 8 900: not a breach
    assert g2.state is TradingState.ACTIVE
    await g2.flush()

    g3, events3, _ = guard(store, max_drawdown_pct=10, daily_loss_limit_pct=50)
    await g3.start()
    assert g3.state is TradingState.ACTIVE and states(events3) == ["ACTIVE"]
    assert trips2 == []


async def test_restart_while_reducing_finishes_the_close_all():
    store = MemoryStore()
    await store.put_state(STATE_KEY, {"state": "REDUCING", "reason": "daily loss", "peak_equity": "10000",
                                      "day_start_ms": 0, "day_start_equity": "10000"})
    g, events, trips = guard(store)
    await g.start()
    assert trips == ["daily loss"] and g.state is TradingState.REDUCING  # HALTED once the close-all ends flat
    g.confirm_flat()
    assert states(events) == ["REDUCING", "HALTED"]


async def test_kill_switch_on_paper_closes_the_position_refuses_entries_then_halts():
    store = MemoryStore()
    async with Stack(balance="10000") as s:
        g = RiskGuard(s.bus, s.clock, RiskConfig(daily_loss_limit_pct=2, max_drawdown_pct=50), store, cache=s.cache)
        s.execution.risk = g
        em = EmergencyClose(s.bus, s.clock, s.execution, s.venue, s.cache, risk=g)
        g.on_trip = em.request_close_all
        await g.start()
        await s.tick(2.0)
        s.execution.submit(entry())  # 10 % margin x 3 short = 1 500 contracts at 2.0
        await s.execution.idle()
        await s.tick(2.0)
        assert s.cache.position(SYM, Side.SHORT) is not None
        await s.tick(2.08)  # -4 % x 3 000 notional = -120 USDT = 1.2 %: not yet
        s.clock.advance(1.0)  # equity is marked to market once a second
        assert g.state is TradingState.ACTIVE
        await s.tick(2.16)  # -240 USDT = 2.4 % of the day's 10 000
        s.clock.advance(1.0)
        await settle()
        assert g.state is TradingState.REDUCING
        s.execution.submit(entry(cid="e-2"))
        await s.execution.idle()
        [refused] = [e.order for e in s.of(OrderUpdated) if e.order.client_id == "e-2"]
        assert refused.state is OrderState.REJECTED and "REDUCING" in refused.reason
        for _ in range(3):
            await s.tick(2.16)
            await settle()
        assert s.cache.position(SYM, Side.SHORT) is None
        assert [e.state for e in s.of(TradingStateChanged)] == ["ACTIVE", "REDUCING", "HALTED"]
        closes = [e.order for e in s.of(OrderUpdated) if e.order.side.is_close]
        assert closes and all(o.reduce_only for o in closes)
        await g.flush()
        assert store.state[STATE_KEY]["state"] == "HALTED"
        assert any(isinstance(e, AccountUpdated) for e in s.events)


def _strategy_guard(store=None):
    from tui_trader.engine.cache import Cache

    bus, clock, cache = EventBus(), SimClock(T0), Cache()
    g = RiskGuard(bus, clock, RiskConfig(daily_loss_limit_pct=50, max_drawdown_pct=90), store, cache=cache)
    return g, bus, cache


def _closing_fill(bus, cache, tag, cid, pnl, fee="1"):
    from tui_trader.domain.events import OrderFilled
    from tui_trader.domain.models import Fill, Order, OrderSide, OrderType

    cache.apply_order(Order(ClientOrderId(cid), SYM, OrderSide.CLOSE_SHORT, OrderType.MARKET, D(10), tag=tag))
    bus.publish(OrderFilled(T0, Fill(f"f-{cid}", ClientOrderId(cid), SYM, OrderSide.CLOSE_SHORT, D(10), D(2),
                                     D(fee), T0, realized_pnl=D(pnl))))


def _limited(tag="strat:X_USDT", cid="e-9", limit=2.0):
    return OpenPosition(0, tag, SYM, Side.SHORT, ClientOrderId(cid), 5.0, 3, daily_loss_limit_pct=limit)


async def test_a_strategys_daily_loss_limit_refuses_its_entries_only_until_the_next_utc_day():
    g, bus, cache = _strategy_guard()
    g.observe_equity(D(10000))
    g.check_open(_limited(), account(), 0, 0)  # nothing lost yet
    _closing_fill(bus, cache, "strat:X_USDT", "x-1", "-150", fee="2")  # -152 net = 1.52 % of the day's 10 000
    g.check_open(_limited(), account(), 0, 0)
    _closing_fill(bus, cache, "strat:Z_USDT", "x-2", "-47", fee="1")  # its other symbol: -200 net = 2.00 %
    with pytest.raises(RiskRejected, match=r"strat lost 2.00 % .* daily_loss_limit_pct is 2 %"):
        g.check_open(_limited(), account(), 0, 0)
    g.check_open(_limited(tag="other:X_USDT"), account(), 0, 0)  # another strategy goes on
    g.check_open(_limited(limit=None), account(), 0, 0)  # an entry without a strategy limit too
    assert g.state is TradingState.ACTIVE  # a strategy's limit is not the account's kill switch
    g.clock.advance(2 * 3600)  # past 00:00 UTC: a new day
    g.check_open(_limited(), account(), 0, 0)


async def test_a_winning_trade_offsets_the_days_losses_and_the_count_survives_a_restart():
    store = MemoryStore()
    g, bus, cache = _strategy_guard(store)
    g.observe_equity(D(10000))
    _closing_fill(bus, cache, "strat:X_USDT", "x-1", "-300", fee="0")
    _closing_fill(bus, cache, "strat:X_USDT", "x-2", "120", fee="0")  # -180: 1.8 %
    g.check_open(_limited(), account(), 0, 0)
    _closing_fill(bus, cache, "strat:X_USDT", "x-3", "-20", fee="0")
    await g.flush()
    g2, _, _ = _strategy_guard(store)
    await g2.start()
    with pytest.raises(RiskRejected, match="daily_loss_limit_pct"):
        g2.check_open(_limited(), account(), 0, 0)


async def test_a_strategys_open_loss_counts_towards_its_daily_limit():
    from tui_trader.domain.models import Position

    g, bus, cache = _strategy_guard()
    g.observe_equity(D(10000))
    _closing_fill(bus, cache, "strat:X_USDT", "x-1", "-100", fee="0")  # 1 % realised
    short = Position("Z_USDT", Side.SHORT, D(1000), D(1), D(2), 3, tag="strat:Z_USDT")
    cache.apply_position(short)
    cache.mark["Z_USDT"] = (2.05, T0)  # -0.05 x 1 000 coins = -50: 1.5 % in all
    g.check_open(_limited(), account(), 1, 0)
    cache.mark["Z_USDT"] = (2.1, T0)  # -100 open: 2 %
    with pytest.raises(RiskRejected, match="strat lost 2.00 %"):
        g.check_open(_limited(), account(), 1, 0)
