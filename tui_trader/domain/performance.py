"""Domain layer: round trips from fills, and the performance figures of a paper session.

A trade (round trip) starts with the first fill that opens a position from flat and ends with the
fill that brings it back to flat (liquidations included). Its gross P&L is the sum of the closing
fills' realised P&L, its fees those of all its fills; net = gross - fees - funding charged while it
was open (funding is attributed by symbol and time).

Win rate = trades with net P&L > 0 / trades. Drawdown and Sharpe use the backtester's definitions
(`tui_trader/backtest/metrics.py`), filled in by the caller, so a session and a backtest of the
same trades report the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tui_trader.domain.models import ZERO, Fill, Trade


def trades_from_fills(fills: list[Fill], funding: list[tuple[int, str, Decimal]] = ()) -> list[Trade]:
    """Round trips in fill order; `funding` = (ts_ms, symbol, amount paid) charges."""
    open_: dict[tuple[str, str], dict] = {}
    trades: list[Trade] = []
    for f in sorted(fills, key=lambda x: x.ts_ms):
        side = f.side.position_side
        key = (f.symbol, side.value)
        cur = open_.get(key)
        if not f.side.is_close:
            if cur is None:
                cur = open_[key] = dict(qty=ZERO, entry_qty=ZERO, cost=ZERO, fees=ZERO, gross=ZERO, opened=f.ts_ms,
                                        exit_cost=ZERO, exit_qty=ZERO)
            cur["qty"] += f.qty_contracts
            cur["entry_qty"] += f.qty_contracts
            cur["cost"] += f.qty_contracts * f.price
            cur["fees"] += f.fee
            continue
        if cur is None:
            continue  # a close without a known open (e.g. fills of another session): ignore
        cur["qty"] -= f.qty_contracts
        cur["fees"] += f.fee
        cur["gross"] += f.realized_pnl
        cur["exit_cost"] += f.qty_contracts * f.price
        cur["exit_qty"] += f.qty_contracts
        if cur["qty"] <= 0:
            del open_[key]
            paid = sum((amt for ts, sym, amt in funding if sym == f.symbol and cur["opened"] <= ts <= f.ts_ms), ZERO)
            trades.append(Trade(
                symbol=f.symbol, side=side, contracts=cur["entry_qty"], entry_price=cur["cost"] / cur["entry_qty"],
                exit_price=cur["exit_cost"] / cur["exit_qty"], opened_ms=cur["opened"], closed_ms=f.ts_ms,
                gross_pnl=cur["gross"], fees=cur["fees"], funding=paid, reason=f.liquidity,
            ))
    return trades


@dataclass
class Performance:
    starting_balance: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    funding: Decimal
    trades: list[Trade] = field(default_factory=list)
    equity_curve: list[tuple[int, float]] = field(default_factory=list)
    max_drawdown_pct: float = 0.0  # computed by the caller with `backtest.metrics` (one definition)
    sharpe: float | None = None

    @property
    def trade_count(self) -> int:
        return len(self.trades)

    @property
    def win_rate_pct(self) -> float:
        return 100.0 * sum(1 for t in self.trades if t.net_pnl > 0) / len(self.trades) if self.trades else 0.0

    @property
    def reconciles(self) -> bool:
        """starting balance + realised - fees - funding + unrealised == equity, to the cent."""
        expected = self.starting_balance + self.realized_pnl - self.fees - self.funding + self.unrealized_pnl
        return abs(expected - self.equity) < Decimal("0.005")
