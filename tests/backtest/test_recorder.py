"""The recorder counts bars and samples equity the same from `CandleClosed` and `CandlesClosed`; its trade
book keeps a round trip whole whichever of the close fill and the flat position report comes first."""

from __future__ import annotations

from decimal import Decimal

from tui_trader.backtest.recorder import Recorder, TradeBook
from tui_trader.domain.events import (
    CandleClosed,
    CandlesClosed,
    OrderFilled,
    PositionChanged,
)
from tui_trader.domain.models import ClientOrderId, Fill, OrderSide, Position, Side
from tui_trader.engine.bus import EventBus

T0 = 1_700_000_040_000  # not on an hour: the first sample is the first close
HOUR = 3_600_000


def _recorder() -> tuple[EventBus, Recorder, list[Decimal]]:
    bus, equity = EventBus(), [Decimal(1000)]
    return bus, Recorder(bus, lambda: equity[0], HOUR), equity


def test_a_batch_of_closes_records_what_the_closes_one_by_one_would():
    candles = [(T0 + i * 60_000, 1.0, 1.0, 1.0, 1.0, 1.0) for i in range(200)]  # 3 h 20 min: hourly samples inside
    bus_a, one, eq_a = _recorder()
    bus_b, many, eq_b = _recorder()
    eq_a[0] = eq_b[0] = Decimal("1012.5")
    for c in candles:
        bus_a.publish(CandleClosed(c[0] + 60_000, "X", c[0], 60, *c[1:]))
    bus_b.publish(CandlesClosed(candles[120][0] + 60_000, "X", 60, tuple(candles[:121])))
    bus_b.publish(CandlesClosed(candles[-1][0] + 60_000, "X", 60, tuple(candles[121:])))
    one.finish()
    many.finish()
    assert one.bars == many.bars == 200
    assert (one.first_open_ms, one.last_close_ms) == (many.first_open_ms, many.last_close_ms) == (T0, T0 + 200 * 60_000)
    assert one.curve == many.curve
    assert [ts % HOUR for ts, _ in one.curve[2:-1]] == [0, 0, 0]  # the first close at or after each hour
    assert one.curve[0] == (T0, Decimal(1000)) and one.curve[1][1] == Decimal("1012.5")


def _fill(n: int, side: OrderSide, qty: str, price: str, ts: int, pnl: str = "0") -> OrderFilled:
    fill = Fill(f"f{n}", ClientOrderId(f"c{n}"), "BTC_USDT", side, Decimal(qty), Decimal(price), Decimal("0.01"), ts,
                realized_pnl=Decimal(pnl))
    return OrderFilled(ts, fill)


def _flat(ts: int) -> PositionChanged:
    return PositionChanged(ts, Position("BTC_USDT", Side.SHORT, Decimal(0), Decimal(1), Decimal(0), 3), "push")


def _held(ts: int, contracts: str, leverage: int, tag: str) -> PositionChanged:
    pos = Position("BTC_USDT", Side.SHORT, Decimal(contracts), Decimal(1), Decimal(63600), leverage, tag=tag)
    return PositionChanged(ts, pos, "push")


def test_a_close_fill_reported_after_the_flat_position_still_belongs_to_its_trade():
    # MEXC pushes the position (flat) before the order that closed it, each with its own time
    book = TradeBook()
    for ev in (_fill(1, OrderSide.OPEN_SHORT, "47", "63600", T0), _flat(T0 + 5_000),
               _fill(2, OrderSide.CLOSE_SHORT, "40", "61000", T0 + 5_001, "10.4"),
               _fill(3, OrderSide.CLOSE_SHORT, "7", "61000", T0 + 5_002, "1.82")):
        book.apply(ev)
    [trade] = book.trades
    assert trade.closed and trade.exit_ms == T0 + 5_000 and trade.exit_reason == "push"
    assert trade.exit_qty == 47 and trade.exit_price == Decimal(61000)
    assert trade.gross_pnl == Decimal("12.22") and trade.fees == Decimal("0.03")


def test_a_new_entry_ends_the_wait_for_a_close_that_never_came():
    book = TradeBook()
    for ev in (_fill(1, OrderSide.OPEN_SHORT, "10", "100", T0), _flat(T0 + 1_000),  # closed with no fill seen
               _fill(2, OrderSide.OPEN_SHORT, "5", "90", T0 + 2_000),
               _fill(3, OrderSide.CLOSE_SHORT, "5", "80", T0 + 3_000, "0.5"), _flat(T0 + 3_000)):
        book.apply(ev)
    first, second = book.trades
    assert first.exit_qty == 0 and first.gross_pnl == 0
    assert second.closed and second.exit_qty == 5 and second.gross_pnl == Decimal("0.5")


def test_a_position_reported_open_before_its_entry_fill_gives_the_trade_its_leverage_and_owner():
    book = TradeBook()
    for ev in (_held(T0, "47", 7, "pump"), _fill(1, OrderSide.OPEN_SHORT, "47", "63600", T0 + 1), _flat(T0 + 5_000),
               _fill(2, OrderSide.CLOSE_SHORT, "47", "61000", T0 + 5_001, "12.22")):
        book.apply(ev)
    [trade] = book.trades
    assert (trade.leverage, trade.tag, trade.gross_pnl) == (7, "pump", Decimal("12.22"))
