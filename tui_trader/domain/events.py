"""Domain layer: the events the core publishes. Past-tense facts, immutable, cheap to create.

Every event has `ts_ms` (the engine clock's time, ms since the epoch) and a class-level `type`
string used in JSON output and by subscribers. `key` groups events whose latest value replaces
earlier ones (the UI coalesces by it: only the newest tick per symbol matters for a repaint).
Market-data prices are floats: they feed indicators and comparisons; orders and fills (Decimal)
carry the money.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar

from tui_trader.domain.models import Fill, Order, Position


@dataclass(frozen=True, slots=True)
class Event:
    ts_ms: int
    type: ClassVar[str] = "event"

    @property
    def key(self) -> tuple[Any, ...] | None:
        """Coalescing key: events with the same non-None key supersede each other."""
        return None


# --- market data -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TradeTick(Event):
    """A trade (last price). `side` is the taker side: 'buy' or 'sell'. `from_price`: set only on a
    replayed candle's path (the price of the tick before it in the same candle, the market assumed to
    have moved through every price between): a trigger crossed on the way triggers at its own price."""

    symbol: str
    price: float
    qty: float
    side: str = "buy"
    from_price: float | None = None
    type: ClassVar[str] = "trade"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("trade", self.symbol)


@dataclass(frozen=True, slots=True)
class MarkPriceTick(Event):
    """Fair (mark) price: what the exchange liquidates on. `source`: "stream" (the feed) or "rest"
    (read over REST while the stream is silent on the symbol - engine/price_fallback.py)."""

    symbol: str
    price: float
    source: str = "stream"
    type: ClassVar[str] = "mark_price"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("mark_price", self.symbol)


@dataclass(frozen=True, slots=True)
class BookTick(Event):
    """Top of book."""

    symbol: str
    bid: float
    ask: float
    type: ClassVar[str] = "book"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("book", self.symbol)


@dataclass(frozen=True, slots=True)
class CandleClosed(Event):
    """A closed candle; `ts_ms` is its close time, `open_ms` its open time."""

    symbol: str
    open_ms: int
    interval_s: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    type: ClassVar[str] = "candle"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("candle", self.symbol)


@dataclass(frozen=True, slots=True)
class CandlesClosed(Event):
    """Several consecutive closed candles of one symbol in one event, in place of their
    `CandleClosed` events: a backtest replay sends a stretch this way when nothing else could
    happen inside it (see `venues/replay.py`). `candles` are `(open_ms, open, high, low, close,
    volume)` tuples in time order; `ts_ms` is the last one's close time."""

    symbol: str
    interval_s: int
    candles: tuple[tuple[int, float, float, float, float, float], ...]
    type: ClassVar[str] = "candles"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("candle", self.symbol)


@dataclass(frozen=True, slots=True)
class FundingRateUpdated(Event):
    symbol: str
    rate: float
    next_settle_ms: int = 0
    type: ClassVar[str] = "funding_rate"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("funding_rate", self.symbol)


@dataclass(frozen=True, slots=True)
class BreakerChanged(Event):
    """The entry circuit breaker of a venue moved: closed -> open -> half-open -> closed (closes bypass it)."""

    venue: str
    old: str
    new: str
    type: ClassVar[str] = "breaker"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("breaker", self.venue)


@dataclass(frozen=True, slots=True)
class StartupChecked(Event):
    """One live start-up check (exchange, clock, keys, balance, contracts, orders): ok | failed |
    monitor-only, with what was found (venues/mexc/startup.py)."""

    check: str
    status: str
    detail: str = ""
    type: ClassVar[str] = "startup_check"


@dataclass(frozen=True, slots=True)
class FeedStateChanged(Event):
    """Market-data feed health: connected, stalled, reconnecting, resynced, replaying, finished, stopped."""

    feed: str
    state: str
    detail: str = ""
    type: ClassVar[str] = "feed_state"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("feed_state", self.feed)


# --- orders and positions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderUpdated(Event):
    order: Order
    type: ClassVar[str] = "order"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("order", self.order.client_id)


@dataclass(frozen=True, slots=True)
class OrderFilled(Event):
    fill: Fill
    type: ClassVar[str] = "fill"


@dataclass(frozen=True, slots=True)
class PositionChanged(Event):
    """A position opened, changed or went flat (`position.contracts == 0`)."""

    position: Position
    reason: str = ""
    type: ClassVar[str] = "position"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("position", self.position.symbol, self.position.side, self.position.tag)


@dataclass(frozen=True, slots=True)
class AccountUpdated(Event):
    equity: Decimal
    available: Decimal
    cash_balance: Decimal
    unrealized_pnl: Decimal
    tag: str = ""
    type: ClassVar[str] = "account"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("account", self.tag)


@dataclass(frozen=True, slots=True)
class FundingCharged(Event):
    symbol: str
    rate: float
    amount: Decimal  # paid by the account (negative = received)
    tag: str = ""
    type: ClassVar[str] = "funding"


@dataclass(frozen=True, slots=True)
class PositionLiquidated(Event):
    symbol: str
    side: str
    price: Decimal
    margin_lost: Decimal
    tag: str = ""
    type: ClassVar[str] = "liquidated"


# --- risk, watchdog, strategy ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiquidationWarning(Event):
    symbol: str
    side: str
    distance_pct: float
    band: str
    level: str  # WARNING | CRITICAL | AUTOCLOSE | INFO (recovered)
    price: float
    liquidation_price: float
    price_source: str = "mark"  # mark | last (fallback, flagged)
    tag: str = ""
    type: ClassVar[str] = "liquidation_warning"


@dataclass(frozen=True, slots=True)
class ManualActionRequired(Event):
    """The console would close a position but cannot send the order (monitor-only: MEXC takes no API
    orders for the symbol); `action` is what the trader must do on the exchange now. The TUI rings."""

    symbol: str
    side: str
    contracts: float
    distance_pct: float
    action: str
    reason: str = ""
    type: ClassVar[str] = "manual_action"


@dataclass(frozen=True, slots=True)
class TradingStateChanged(Event):
    """Kill-switch state: ACTIVE -> REDUCING -> HALTED, reset only by the user."""

    state: str
    reason: str = ""
    type: ClassVar[str] = "trading_state"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("trading_state",)


@dataclass(frozen=True, slots=True)
class StrategyStateChanged(Event):
    strategy: str
    symbol: str
    state: str
    reason: str = ""
    detail: str = ""  # what the transition saw (S1's and Z1's indicator values, a client id)
    type: ClassVar[str] = "strategy_state"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("strategy_state", self.strategy, self.symbol)


@dataclass(frozen=True, slots=True)
class EmergencyCloseProgress(Event):
    scope: str  # "all" or a symbol
    stage: str  # started | cancelled_orders | closing | done | failed
    open_positions: int
    detail: str = ""
    type: ClassVar[str] = "emergency_close"


# --- core life ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoreStateChanged(Event):
    state: str  # starting | running | stopping | stopped
    mode: str = "paper"
    type: ClassVar[str] = "core_state"

    @property
    def key(self) -> tuple[Any, ...]:
        return ("core_state",)


@dataclass(frozen=True, slots=True)
class TaskFailed(Event):
    """A supervised task raised. `critical` tasks stop the core; others are restarted or dropped."""

    task: str
    error: str
    critical: bool = False
    action: str = ""  # restarting | stopping core | gave up
    type: ClassVar[str] = "task_failed"


@dataclass(frozen=True, slots=True)
class ErrorRaised(Event):
    """An error the user must see (bad input, venue refusal) that did not stop anything."""

    source: str
    message: str
    level: str = "ERROR"
    type: ClassVar[str] = "error"


@dataclass(frozen=True, slots=True)
class LogMessage(Event):
    level: str
    source: str
    message: str
    type: ClassVar[str] = "log"


@dataclass(frozen=True, slots=True)
class EventsDropped(Event):
    """A bounded subscriber queue overflowed; `count` events were dropped for `subscriber`."""

    subscriber: str
    count: int
    type: ClassVar[str] = "events_dropped"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def event_to_dict(event: Event) -> dict[str, Any]:
    """JSON-ready dict: `type`, `ts_ms`, then the fields. Decimals become strings (exact)."""
    out: dict[str, Any] = {"type": event.type, "ts_ms": event.ts_ms}
    for f in dataclasses.fields(event):
        if f.name != "ts_ms":
            out[f.name] = _plain(getattr(event, f.name))
    return out
