"""App layer: `ConsoleFacade` - the one typed way the dashboard, the CLI and signal handlers reach the core.

Why: the shell reached into `core.components[...]` with `getattr`, so every screen re-learnt which
component did what and a renamed attribute failed only at a key press. The facade offers the
commands a person can give (close one position, close all, reset the kill switch, move a stop-loss) -
each returns at once, its progress arrives as events - and `snapshot()`, a plain-data picture of the console for
view models that are tested without a terminal. Commands that cannot run in this mode raise
`NotAvailable` with the reason, never an AttributeError.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import TYPE_CHECKING

from tui_trader.domain.errors import TraderError
from tui_trader.domain.events import ErrorRaised, LogMessage
from tui_trader.domain.liquidation import Band, band_for, distance_pct
from tui_trader.domain.models import Position, Side
from tui_trader.domain.money import is_on_unit, to_decimal
from tui_trader.engine.core import TraderCore

if TYPE_CHECKING:
    from tui_trader.app.backtests_facade import BacktestsFacade
    from tui_trader.app.sessions_facade import SessionsFacade

log = logging.getLogger(__name__)

STOP_LOSS_FIELD = "stop_loss"  # the widget id a refused stop-loss highlights


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
    daily_pnl: Decimal | None = None  # equity now minus at 00:00 UTC (the risk guard's day)
    yellow_pct: float = 20.0
    red_pct: float = 10.0
    autoclose_pct: float | None = 10.0  # None: auto-close off
    stale_after_s: float = 3.0  # the watchdog's: a stream price older than this is stale


def check_stop_loss(value: Decimal, side: Side, price: Decimal | None, price_unit: Decimal | None) -> None:
    """Refuse a stop-loss that would trigger at once or that the venue would reject.

    A short's stop sits above the current price, a long's below; the price is a multiple of the
    instrument's price unit (skipped while the unit is unknown) and above 0.

    Raises:
        FieldInvalid: on the `stop_loss` field, saying which rule the value breaks.
    """
    if not value.is_finite():
        raise FieldInvalid(STOP_LOSS_FIELD, f"not a price: {value}")
    if value <= 0:
        raise FieldInvalid(STOP_LOSS_FIELD, "a stop-loss must be above 0")
    if price_unit is not None and not is_on_unit(value, price_unit):
        raise FieldInvalid(STOP_LOSS_FIELD, f"must be a multiple of {price_unit:f} (the price unit)")
    if price is None:
        raise FieldInvalid(STOP_LOSS_FIELD, "no price yet: the side of the stop cannot be checked")
    if side is Side.SHORT and value <= price:
        raise FieldInvalid(STOP_LOSS_FIELD, f"a short's stop-loss must be above the current price {price:f}")
    if side is Side.LONG and value >= price:
        raise FieldInvalid(STOP_LOSS_FIELD, f"a long's stop-loss must be below the current price {price:f}")


@dataclass(frozen=True)
class StopLossRules:
    """What a new stop-loss of one position must respect (a dialog checks each keystroke with it)."""

    symbol: str
    side: Side
    price: Decimal | None  # fair price, else last trade, when the rules were read (None: no price yet)
    price_unit: Decimal
    stop_loss: Decimal | None  # the position's current stop-loss and take-profit
    take_profit: Decimal | None

    def parse(self, text: str, price: Decimal | None = None) -> Decimal:
        """`text` as a stop-loss, checked against `price` (default: the one read with the rules).

        Raises:
            FieldInvalid: on the `stop_loss` field - not a number, <= 0, off the price unit, wrong side.
        """
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            raise FieldInvalid(STOP_LOSS_FIELD, f"not a price: {text.strip()!r}") from None
        check_stop_loss(value, self.side, self.price if price is None else price, self.price_unit)
        return value


class ConsoleFacade:
    def __init__(self, core: TraderCore) -> None:
        self._core = core
        self._stack = core.components.get("stack")
        self._price_units: dict[str, Decimal] = {}  # symbol -> the venue's price unit, read once
        # (symbol, side) -> (the position it was set on, the stop-loss a person set): a new position
        # on the same symbol and side does not inherit it
        self._stop_losses: dict[tuple[str, Side], tuple[tuple[object, int], Decimal | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until done

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

    # --- stop-loss ------------------------------------------------------------------------

    def current_price(self, symbol: str) -> Decimal | None:
        """The fair price, else the last trade: what a stop-loss is checked against (None before any)."""
        price = self._require("cache").fair_price(symbol)
        return to_decimal(price) if price is not None else None

    async def stop_loss_rules(self, symbol: str, side: Side) -> StopLossRules:
        """The current price, the instrument's price unit and the position's stop-loss / take-profit.

        Raises:
            NotAvailable: no such position (or no trading stack).
            VenueError: the venue could not say what the instrument is (read once per symbol).
        """
        position = self._open_position(symbol, side)
        unit = await self._price_unit(symbol)
        stop_loss, take_profit = self._targets(position)
        return StopLossRules(symbol, side, self.current_price(symbol), unit, stop_loss, take_profit)

    def set_stop_loss(self, symbol: str, side: Side, stop_loss: Decimal | None) -> asyncio.Task[None]:
        """Move the position's stop-loss (None removes it), keeping its take-profit; returns at once.

        Checked now against the current price (and the price unit once `stop_loss_rules` has read it);
        the venue call runs as a task: a failure ends the task with the error and is published as
        `ErrorRaised`; once it succeeded, `snapshot()` shows the new stop-loss.

        Raises:
            FieldInvalid: the value breaks a rule of `check_stop_loss`.
            NotAvailable: no such position (or no trading stack).
        """
        position = self._open_position(symbol, side)
        if stop_loss is not None:
            check_stop_loss(stop_loss, side, self.current_price(symbol), self._price_units.get(symbol))
        venue = self._require("venue")
        _, take_profit = self._targets(position)
        task = asyncio.get_running_loop().create_task(self._send_stop_loss(venue, position, stop_loss, take_profit),
                                                      name=f"stop-loss:{symbol}:{side.value}")
        self._tasks.add(task)
        task.add_done_callback(self._stop_loss_sent)
        return task

    async def _send_stop_loss(self, venue, position: Position, stop_loss: Decimal | None,
                              take_profit: Decimal | None) -> None:
        if stop_loss is not None:  # the side was checked at the request; the unit may only be known now
            unit = await self._price_unit(position.symbol)
            if not is_on_unit(stop_loss, unit):
                raise FieldInvalid(STOP_LOSS_FIELD, f"must be a multiple of {unit:f} (the price unit)")
        await venue.set_stop_loss(position.symbol, position.side, stop_loss, take_profit)
        self._stop_losses[(position.symbol, position.side)] = (_identity(position), stop_loss)
        shown = "removed" if stop_loss is None else f"set to {stop_loss:f}"
        self._core.bus.publish(LogMessage(self._core.clock.now_ms(), "INFO", "stop-loss",
                                          f"{position.symbol} {position.side.value.lower()} stop-loss {shown}"))

    def _stop_loss_sent(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.warning("%s failed: %r", task.get_name(), exc)
        self._core.bus.publish(ErrorRaised(self._core.clock.now_ms(), "stop-loss", f"{task.get_name()}: {exc}"))

    def _open_position(self, symbol: str, side: Side) -> Position:
        position = self._require("cache").position(symbol, side)
        if position is None:
            raise NotAvailable(f"no {side.value} position on {symbol}")
        return position

    async def _price_unit(self, symbol: str) -> Decimal:
        unit = self._price_units.get(symbol)
        if unit is None:
            unit = self._price_units[symbol] = (await self._require("venue").instrument(symbol)).price_unit
        return unit

    def _targets(self, p: Position) -> tuple[Decimal | None, Decimal | None]:
        """(stop-loss, take-profit): the stop a person set on this very position, else the entry orders'
        (from the cache's index of them: no scan of the session's orders at each repaint)."""
        assert self._stack is not None  # (a position was found, so there is a stack)
        sl, tp = self._stack.cache.entry_targets(p.symbol, p.side, p.tag)
        user = self._stop_losses.get((p.symbol, p.side))
        if user is not None and user[0] == _identity(p):
            sl = user[1]
        return sl, tp

    # --- state ----------------------------------------------------------------------------

    def snapshot(self) -> ConsoleSnapshot:
        """`now_ms` is the trading clock's (a replay's data time in paper): what time-in-trade counts on."""
        now = self._stack.clock.now_ms() if self._stack is not None else self._core.clock.now_ms()
        if self._stack is None:
            return ConsoleSnapshot(self.mode, "-", now)
        cache, risk, watchdog = self._stack.cache, self._stack.risk, self._stack.watchdog
        cfg = watchdog.cfg if watchdog is not None else None
        views = [self._view(p, now)
                 for p in sorted(cache.positions.values(), key=lambda p: (p.symbol, p.side.value))]
        account = cache.account
        # marked to market at this very moment (the account is reported only at fills and funding)
        marked = risk.marked_equity() if risk is not None else None
        equity = marked if marked is not None else account.equity if account is not None else None
        return ConsoleSnapshot(
            self.mode, risk.state.value if risk is not None else "-", now, views,
            equity=equity,
            daily_pnl=(equity - risk.day_start_equity
                       if risk is not None and equity is not None and risk.day_start_equity is not None else None),
            yellow_pct=cfg.yellow_band_pct if cfg else 20.0, red_pct=cfg.red_band_pct if cfg else 10.0,
            autoclose_pct=(cfg.autoclose_distance_pct if cfg.autoclose_enabled else None) if cfg else None,
            stale_after_s=cfg.stale_after_s if cfg else 3.0,
        )

    def _view(self, p: Position, now_ms: int) -> PositionView:
        assert self._stack is not None  # (snapshot() returns before here without a stack)
        cache, watchdog = self._stack.cache, self._stack.watchdog
        w = watchdog.watches.get((p.symbol, p.side)) if watchdog is not None else None
        fair, last = cache.mark.get(p.symbol), cache.last.get(p.symbol)
        price = cache.fair_price(p.symbol)
        exchange = float(p.liquidation_price) if p.liquidation_price else None
        liq = w.liq if w is not None and w.liq is not None else exchange
        dist = distance_pct(p.side, price, liq) if price is not None and liq else None
        cfg = watchdog.cfg if watchdog is not None else None
        band = band_for(dist, cfg.yellow_band_pct, cfg.red_band_pct) if dist is not None and cfg else None
        upnl = float(p.pnl_at(to_decimal(price))) if price is not None else None
        roe = upnl / float(p.margin) * 100 if upnl is not None and p.margin > 0 else None
        sl, tp = self._targets(p)
        stage = "unwatched" if w is None else "closing" if w.closing else "close failed" if w.failed else "watching"
        return PositionView(p.symbol, p.side, p.contracts, p.qty_coins, p.entry_price,
                            fair[0] if fair else None, last[0] if last else None, p.leverage, liq,
                            w.venue_liq if w is not None else exchange,
                            dist, band, upnl, roe, sl, tp, p.opened_ms, stage, p.tag)


def _identity(p: Position) -> tuple[object, int]:
    """Which position this is: a new one on the same symbol and side has another id or opening time."""
    return (p.position_id, p.opened_ms)
