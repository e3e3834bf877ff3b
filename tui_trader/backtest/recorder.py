"""Backtest layer: the trade list and the equity curve of a run, built from the engine's own events.

A trade is one position's life: it opens with the first `OrderFilled` that opens a (symbol, side)
from flat and ends with the `PositionChanged` that reports it flat. A venue may report the position
flat before the order that closed it (MEXC pushes the position, then the order, and stamps each with
its own time): closing fills that come after the flat report still belong to that trade, until they
cover its contracts or a new entry opens the side again. Entry price = quantity-weighted
average of the opening fills, exit price = that of the closing fills (a liquidation's fill is at
the liquidation price); gross P&L = the closing fills' realised P&L (a liquidation realises minus
the isolated margin); fees = all its fills' fees; funding = every `FundingCharged` of its symbol
and tag while it is open (positive = paid); net = gross - fees - funding. `exit_reason` is the
flat report's reason (SL, TP, E1, ZE1, TIME, LIQUIDATION ...). Positions still open at the end
stay in the list with no exit.

Equity curve: a point (data time, equity = cash + unrealised P&L at the mark) at the start of the
data, then at the first candle close of every `every_ms` bucket (UTC-aligned) and at the end.
It is a regular sample, so returns between points are periodic returns (see `metrics.py`), and its
length grows with the covered time / `every_ms`, not with the number of bars.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tui_trader.domain.events import (
    CandleClosed,
    CandlesClosed,
    Event,
    FundingCharged,
    OrderFilled,
    PositionChanged,
)
from tui_trader.domain.models import ZERO, Fill, Position, Side
from tui_trader.engine.bus import EventBus
from tui_trader.store.db import Database
from tui_trader.store.orders import OrderRepository


@dataclass
class BacktestTrade:
    symbol: str
    side: str
    entry_ms: int
    contracts: Decimal = ZERO
    entry_notional: Decimal = ZERO  # sum of qty * price of the opening fills
    exit_qty: Decimal = ZERO
    exit_notional: Decimal = ZERO
    exit_ms: int | None = None
    gross_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    exit_reason: str = ""
    liquidated: bool = False
    leverage: int = 0
    tag: str = ""

    @property
    def entry_price(self) -> Decimal:
        return self.entry_notional / self.contracts if self.contracts else ZERO

    @property
    def exit_price(self) -> Decimal | None:
        return self.exit_notional / self.exit_qty if self.exit_qty else None

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.fees - self.funding

    @property
    def closed(self) -> bool:
        return self.exit_ms is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (money as exact decimal strings)."""
        exit_price = self.exit_price
        return {
            "symbol": self.symbol, "side": self.side, "entry_ms": self.entry_ms, "entry_price": str(self.entry_price),
            "exit_ms": self.exit_ms, "exit_price": None if exit_price is None else str(exit_price),
            "contracts": str(self.contracts), "leverage": self.leverage, "gross_pnl": str(self.gross_pnl),
            "fees": str(self.fees), "funding": str(self.funding), "net_pnl": str(self.net_pnl),
            "exit_reason": self.exit_reason, "liquidated": self.liquidated,
        }  # fmt: skip


class TradeBook:
    """Round trips from fills, position changes and funding (see the module docstring). Fed live by
    the backtest's `Recorder`, or afterwards from what a paper session stored - one definition."""

    def __init__(self) -> None:
        self.trades: list[BacktestTrade] = []
        self._open: dict[tuple[str, str], BacktestTrade] = {}
        self._exiting: dict[tuple[str, str], BacktestTrade] = {}  # reported flat, closing fills still to come
        self._held: dict[tuple[str, str], Position] = {}  # the last open report of each side (it may precede the fill)

    def apply(self, ev: Event) -> None:
        self._on_trading(ev)

    def _on_trading(self, ev: Event) -> None:
        if isinstance(ev, OrderFilled):
            self._on_fill(ev)
        elif isinstance(ev, PositionChanged):
            pos = ev.position
            key = (pos.symbol, pos.side.value)
            trade = self._open.get(key)
            if pos.is_flat:
                self._held.pop(key, None)
                if trade is not None:
                    del self._open[key]
                    trade.exit_ms = ev.ts_ms
                    trade.exit_reason = ev.reason
                    if trade.exit_qty < trade.contracts:
                        self._exiting[key] = trade
            else:
                self._held[key] = pos
                if trade is not None:
                    trade.leverage, trade.tag = pos.leverage, pos.tag
        elif isinstance(ev, FundingCharged):
            for trade in self._open.values():
                if trade.symbol == ev.symbol and (not ev.tag or trade.tag == ev.tag):
                    trade.funding += ev.amount

    def _on_fill(self, ev: OrderFilled) -> None:
        fill = ev.fill
        side: Side = fill.side.position_side
        key = (fill.symbol, side.value)
        if not fill.side.is_close:
            self._exiting.pop(key, None)  # a new position: a late close can no longer be told from its own
            trade = self._open.get(key)
            if trade is None:
                trade = self._open[key] = BacktestTrade(fill.symbol, side.value, fill.ts_ms)
                self.trades.append(trade)
                if (held := self._held.get(key)) is not None:  # reported open before its fill
                    trade.leverage, trade.tag = held.leverage, held.tag
            trade.contracts += fill.qty_contracts
            trade.entry_notional += fill.qty_contracts * fill.price
        elif (trade := self._exiting.get(key) or self._open.get(key)) is not None:
            trade.exit_qty += fill.qty_contracts
            trade.exit_notional += fill.qty_contracts * fill.price
            trade.gross_pnl += fill.realized_pnl
            trade.liquidated = trade.liquidated or fill.liquidity == "liquidation"
            if trade.closed and trade.exit_qty >= trade.contracts:
                del self._exiting[key]
        else:
            return
        trade.fees += fill.fee


async def stored_trades(db: Database, session_id: str, fills: list[Fill] | None = None) -> list[BacktestTrade]:
    """Round trips rebuilt from what a session (or the live console, session '') stored - fills,
    position snapshots, funding - in the order execution reported them (`fills`: already loaded)."""
    events: list[tuple[int, int, Event]] = []
    for f in fills if fills is not None else await OrderRepository(db).load_fills(session_id):
        events.append((f.ts_ms, 0, OrderFilled(f.ts_ms, f)))
    for r in await db.fetchall("SELECT * FROM position_snapshots WHERE session_id = ? ORDER BY id", (session_id,)):
        pos = Position(r["symbol"], Side(r["side"]), Decimal(r["contracts"]), Decimal(1), Decimal(r["entry_price"]),
                       r["leverage"])
        events.append((r["ts_ms"], 1, PositionChanged(r["ts_ms"], pos, r["reason"])))
    for r in await db.fetchall("SELECT * FROM session_funding WHERE session_id = ? ORDER BY ts_ms", (session_id,)):
        events.append((r["ts_ms"], 2, FundingCharged(r["ts_ms"], r["symbol"], 0.0, Decimal(r["amount"]))))
    book = TradeBook()
    for _, _, ev in sorted(events, key=lambda e: (e[0], e[1])):
        book.apply(ev)
    return book.trades


class Recorder(TradeBook):
    """Inline bus subscriber collecting trades and the sampled equity curve."""

    def __init__(self, bus: EventBus, equity: Callable[[], Decimal], every_ms: int) -> None:
        super().__init__()
        self.equity = equity
        self.every_ms = every_ms
        self.curve: list[tuple[int, Decimal]] = []
        self.bars = 0
        self.first_open_ms: int | None = None
        self.last_close_ms: int | None = None
        self._next_sample_ms = 0
        self._start_equity = equity()  # before the first tick: the first point is the starting balance
        bus.subscribe(self._on_candle, [CandleClosed, CandlesClosed], name="backtest.equity")
        bus.subscribe(self._on_trading, [OrderFilled, PositionChanged, FundingCharged], name="backtest.trades")

    def _on_candle(self, ev: Event) -> None:
        if isinstance(ev, CandlesClosed):
            interval_ms = ev.interval_s * 1000
            for candle in ev.candles:
                self._closed(candle[0], candle[0] + interval_ms)
        else:
            assert isinstance(ev, CandleClosed)
            self._closed(ev.open_ms, ev.ts_ms)

    def _closed(self, open_ms: int, close_ms: int) -> None:
        self.bars += 1
        if self.first_open_ms is None:
            self.first_open_ms = open_ms
            self.curve.append((open_ms, self._start_equity))
        self.last_close_ms = close_ms
        if close_ms >= self._next_sample_ms:
            self.curve.append((close_ms, self.equity()))
            self._next_sample_ms = (close_ms // self.every_ms + 1) * self.every_ms

    def skipped(self, open_ms: Sequence[int], interval_ms: int) -> None:
        """Bars the bar replay counted without events (`bar_replay.py`: flat, nothing working, so
        the equity is unchanged): counted, and sampled where a sample falls, as `_closed` would."""
        count = len(open_ms)
        if count == 0:
            return
        if self.first_open_ms is None:
            self._closed(int(open_ms[0]), int(open_ms[0]) + interval_ms)
            open_ms, count = open_ms[1:], count - 1
            if count == 0:
                return
        self.bars += count
        k = 0
        while True:  # the first bar of each sample bucket: a binary search, not a scan
            k = bisect.bisect_left(open_ms, self._next_sample_ms - interval_ms, k)
            if k >= count:
                break
            close = int(open_ms[k]) + interval_ms
            self.curve.append((close, self.equity()))
            self._next_sample_ms = (close // self.every_ms + 1) * self.every_ms
        self.last_close_ms = int(open_ms[-1]) + interval_ms

    def finish(self) -> None:
        """Final equity point at the last candle close (if the last sample is older)."""
        if self.last_close_ms is not None and self.curve[-1][0] < self.last_close_ms:
            self.curve.append((self.last_close_ms, self.equity()))
