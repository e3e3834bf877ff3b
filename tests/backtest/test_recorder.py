"""The recorder counts bars and samples equity the same from `CandleClosed` and `CandlesClosed`."""

from __future__ import annotations

from decimal import Decimal

from tui_trader.backtest.recorder import Recorder
from tui_trader.domain.events import CandleClosed, CandlesClosed
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
