"""Venues layer: the intrabar price path - the trade prices a recorded candle is replayed as.

Each candle becomes up to four trade ticks: the open, the two extremes, the close. The order of
the extremes is *pessimistic for the open position* of the candle's symbol (strategy.md §7), so
stops, liquidation and targets are tested the way that hurts: a short sees the high before the
low, a long the low before the high. With no position (or both sides open) the conventional OHLC
order applies: for a rising candle (close >= open) the low before the high, for a falling candle
the high before the low. With 1 tick only the close is sent; 2 sends open and close; 3 adds the
first extreme. Paper replay and backtests both use it (`replay.py`), so both see the same path.
"""

from __future__ import annotations

from tui_trader.domain.events import BookTick, CandleClosed, Event, MarkPriceTick, TradeTick
from tui_trader.domain.models import Side
from tui_trader.venues.candle_files import Candle

Step = tuple[int, int, int, Candle]  # (event ts, tick index or CLOSE_STEP, source index, candle)
CLOSE_STEP = -1  # at one instant every source's candle closes sort before any tick


def candle_ticks(c: Candle, n: int = 4, side: Side | None = None) -> tuple[float, ...]:
    """Trade prices a candle is replayed as (see the module docstring for the order).

    `side` is the open position's side on the candle's symbol: its adverse extreme comes first.
    """
    if side is Side.SHORT:
        first, second = c.high, c.low
    elif side is Side.LONG:
        first, second = c.low, c.high
    elif c.close >= c.open:
        first, second = c.low, c.high
    else:
        first, second = c.high, c.low
    if n >= 4:
        return (c.open, first, second, c.close)
    if n == 3:
        return (c.open, first, c.close)
    if n == 2:
        return (c.open, c.close)
    return (c.close,)


def bar_path(c: Candle, side: Side | None = None) -> tuple[float, float, float]:
    """Bar mode (`ReplayFeed(close_after_bar=True)`): the trades inside a candle - the open, then
    the extremes in the order above; its close is traded after the candle is announced closed,
    so an order a bar-mode strategy sends at the close fills at the close."""
    return candle_ticks(c, 4, side)[:3]  # type: ignore[return-value]


def trade_events(symbol: str, ts_ms: int, price: float, qty: float, candle_open: float,
                 half_spread: float, from_price: float | None = None) -> tuple[BookTick, TradeTick, MarkPriceTick]:
    """A replayed trade as a replay publishes it: the synthetic book around it, the trade (bought when
    at or above the candle's open; `from_price`: the candle's tick before it, see `path_from`), the mark."""
    return (BookTick(ts_ms, symbol, price * (1 - half_spread), price * (1 + half_spread)),
            TradeTick(ts_ms, symbol, price, qty, "buy" if price >= candle_open else "sell", from_price),
            MarkPriceTick(ts_ms, symbol, price))


def path_from(path: tuple[float, ...], k: int) -> float | None:
    """The price a candle's tick `k` moves from: the tick before it in the same candle - the market
    went through every price between them (a stop on the way triggers at its own price, as a trigger
    order on a real market does) - or None for the candle's first tick (a gap from the last candle
    may jump over a trigger: it triggers at the open)."""
    return path[k - 1] if k > 0 else None


def tick_offsets_ms(interval_ms: int, n: int = 4) -> list[int]:
    """When a candle's ticks happen, ms after its open: +0, 1/4, 1/2, 3/4 of the interval (one tick: at 3/4)."""
    return [i * interval_ms // 4 for i in range(4)][:n] if n > 1 else [interval_ms * 3 // 4]


def candle_events(symbol: str, c: Candle, interval_s: int, n: int = 4) -> list[Event]:
    """A closed candle as the market events a replay publishes for it: `n` trade ticks (the path above,
    no position) and its `CandleClosed`. For loading history into indicators the way replayed data
    reaches them, so a strategy warmed up on exchange history sees what a backtest of it would."""
    qty = c.volume / n
    out: list[Event] = [
        TradeTick(c.ts_ms + offset, symbol, price, qty, "buy" if price >= c.open else "sell")
        for offset, price in zip(tick_offsets_ms(interval_s * 1000, n), candle_ticks(c, n))
    ]
    out.append(candle_closed(symbol, c, interval_s))
    return out


def candle_closed(symbol: str, c: Candle, interval_s: int) -> CandleClosed:
    """The `CandleClosed` of candle `c`, stamped at its close time."""
    return CandleClosed(c.ts_ms + interval_s * 1000, symbol, c.ts_ms, interval_s, c.open, c.high, c.low, c.close,
                        c.volume)
