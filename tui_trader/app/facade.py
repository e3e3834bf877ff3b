"""App layer: `ConsoleFacade` - the one typed way the dashboard, the CLI and signal handlers reach the core.

Why: the shell reached into `core.components[...]` with `getattr`, so every screen re-learnt which
component did what and a renamed attribute failed only at a key press. The facade offers the
commands a person can give (close one position, close all, reset the kill switch) - each returns at
once, its progress arrives as events - and `snapshot()`, a plain-data picture of the console for
view models that are tested without a terminal. Commands that cannot run in this mode raise
`NotAvailable` with the reason, never an AttributeError.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING

from tui_trader.domain.errors import TraderError
from tui_trader.domain.liquidation import Band, band_for, distance_pct
from tui_trader.domain.models import Position, Side
from tui_trader.engine.core import TraderCore

if TYPE_CHECKING:
    from tui_trader.app.backtests_facade import BacktestsFacade
    from tui_trader.app.sessions_facade import SessionsFacade


class NotAvailable(TraderError):
    """A command this console cannot run now (no trading stack, still closing, nothing to reset)."""


class FieldInvalid(TraderError):
    """A value a person typed is wrong: the form highlights `field` (a widget id) with the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PositionView:
    """One position as a person reads it (plain data; formatting is the view model's)."""

    symbol: str
    side: Side
    contracts: Decimal
    coins: Decimal
    entry: Decimal
    fair: float | None
    last: float | None
    leverage: int
    liquidation: float | None  # the one the watchdog uses
    exchange_liquidation: float | None  # the exchange's own, when it reports one
    distance_pct: float | None  # from the fair price (the last trade when no fair price)
    band: Band | None
    upnl: float | None
    roe_pct: float | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    opened_ms: int
    stage: str  # watching | closing | close failed | unwatched
    tag: str


@dataclass(frozen=True)
class ConsoleSnapshot:
    mode: str
    trading: str  # ACTIVE | REDUCING | HALTED
    now_ms: int
    positions: list[PositionView] = field(default_factory=list)
    equity: Decimal | None = None
    yellow_pct: float = 20.0
    red_pct: float = 10.0
    autoclose_pct: float | None = 10.0  # None: auto-close off


class ConsoleFacade:
    def __init__(self, core: TraderCore) -> None:
        self._core = core
        self._stack = core.components.get("stack")

    @property
    def mode(self) -> str:
        return self._core.mode

    def _require(self, part: str):  # the stack's parts, typed where they are used
        found = getattr(self._stack, part, None) if self._stack is not None else None
        if found is None:
            raise NotAvailable(f"no {part} in this mode")
        return found

    # --- paper sessions and backtests (each its own facade, in its own module) ----------------

    @cached_property
    def sessions(self) -> SessionsFacade:
        from tui_trader.app.sessions_facade import SessionsFacade

        return SessionsFacade(self._core)

    @cached_property
    def backtests(self) -> BacktestsFacade:
        from tui_trader.app.backtests_facade import BacktestsFacade

        return BacktestsFacade(self._core)

    # --- commands (return at once; progress arrives as events) ------------------------------

    def close_position(self, symbol: str, side: Side, reason: str = "KEY") -> asyncio.Task[bool]:
        """Reduce-only close of one position (entries elsewhere go on); the task says True once flat."""
        if self._require("cache").position(symbol, side) is None:
            raise NotAvailable(f"no {side.value} position on {symbol}")
        return self._require("emergency").request_close_one(symbol, side, reason)

    def close_all(self, reason: str = "KEY") -> asyncio.Task[bool]:
        """The kill switch: entries blocked, every position closed reduce-only, trading HALTED until reset."""
        return self._require("emergency").request_close_all(reason)

    def reset_kill_switch(self, who: str = "dashboard") -> None:
        risk = self._require("risk")
        state = risk.state.value
        if state == "ACTIVE":
            raise NotAvailable("trading is already ACTIVE: nothing to reset")
        if state == "REDUCING":
            raise NotAvailable("still closing positions (REDUCING): reset once HALTED")
        risk.reset(f"reset by user ({who})")

    # --- state ----------------------------------------------------------------------------

    def snapshot(self) -> ConsoleSnapshot:
        now = self._core.clock.now_ms()
        if self._stack is None:
            return ConsoleSnapshot(self.mode, "-", now)
        cache, risk, watchdog = self._stack.cache, self._stack.risk, self._stack.watchdog
        cfg = watchdog.cfg if watchdog is not None else None
        views = [self._view(p, now) for p in sorted(cache.positions.values(), key=lambda p: (p.symbol, p.side.value))]
        account = cache.account
        return ConsoleSnapshot(
            self.mode, risk.state.value if risk is not None else "-", now, views,
            equity=account.equity if account is not None else None,
            yellow_pct=cfg.yellow_band_pct if cfg else 20.0, red_pct=cfg.red_band_pct if cfg else 10.0,
            autoclose_pct=(cfg.autoclose_distance_pct if cfg.autoclose_enabled else None) if cfg else None,
        )

    def _view(self, p: Position, now_ms: int) -> PositionView:
        assert self._stack is not None  # (snapshot() returns before here without a stack)
        cache, watchdog = self._stack.cache, self._stack.watchdog
        w = watchdog.watches.get((p.symbol, p.side)) if watchdog is not None else None
        fair, last = cache.mark.get(p.symbol), cache.last.get(p.symbol)
        price = fair[0] if fair is not None else last[0] if last is not None else None
        exchange = float(p.liquidation_price) if p.liquidation_price else None
        liq = w.liq if w is not None and w.liq is not None else exchange
        dist = distance_pct(p.side, price, liq) if price is not None and liq else None
        cfg = watchdog.cfg if watchdog is not None else None
        band = band_for(dist, cfg.yellow_band_pct, cfg.red_band_pct) if dist is not None and cfg else None
        upnl = p.side.sign * (price - float(p.entry_price)) * float(p.qty_coins) if price is not None else None
        roe = upnl / float(p.margin) * 100 if upnl is not None and p.margin > 0 else None
        entry = [o for o in cache.orders.values()
                 if o.symbol == p.symbol and not o.reduce_only and o.tag == p.tag and o.side.position_side is p.side]
        sl = next((o.stop_loss_price for o in reversed(entry) if o.stop_loss_price), None)
        tp = next((o.take_profit_price for o in reversed(entry) if o.take_profit_price), None)
        stage = "unwatched" if w is None else "closing" if w.closing else "close failed" if w.failed else "watching"
        return PositionView(p.symbol, p.side, p.contracts, p.qty_coins, p.entry_price,
                            fair[0] if fair else None, last[0] if last else None, p.leverage, liq,
                            w.venue_liq if w is not None else exchange,
                            dist, band, upnl, roe, sl, tp, p.opened_ms, stage, p.tag)
