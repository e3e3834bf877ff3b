"""App layer: the event log's model - every event the console publishes, as a line with a kind.

Why a model: the log keeps every event (the tables keep only the latest per key), and the log screen
filters it by kind and searches it again and again; that is plain Python, tested without a terminal.
Market data (trades, fair prices, books, candles) is not logged: it is what the header and the
tables show, thousands of lines a second that would push every warning out of view.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tui_trader.domain import events as ev_types
from tui_trader.domain.events import (
    AccountUpdated,
    BookTick,
    BreakerChanged,
    CandleClosed,
    CandlesClosed,
    EmergencyCloseProgress,
    ErrorRaised,
    Event,
    EventsDropped,
    FeedStateChanged,
    FundingCharged,
    LiquidationWarning,
    LogMessage,
    ManualActionRequired,
    MarkPriceTick,
    OrderFilled,
    OrderUpdated,
    PositionChanged,
    PositionLiquidated,
    StartupChecked,
    TaskFailed,
    TradeTick,
    TradingStateChanged,
    event_to_dict,
)
from tui_trader.domain.models import OrderSide
from tui_trader.domain.number_format import (
    fee_text,
    money_text,
    price_text,
    quantity_text,
)
from tui_trader.domain.time_format import utc_second

MARKET_DATA = (TradeTick, MarkPriceTick, BookTick, CandleClosed, CandlesClosed)

# what a trader filters by; "all" shows everything
KINDS = ("all", "warnings", "errors", "fills", "orders", "positions", "feed", "state")


def logged_types() -> list[type[Event]]:
    """Every event class except market data: what the log subscribes to (each one, not coalesced)."""
    return [c for c in vars(ev_types).values()
            if isinstance(c, type) and issubclass(c, Event) and c is not Event and not issubclass(c, MARKET_DATA)]


def kind_of(ev: Event) -> str:
    if isinstance(ev, (ErrorRaised, TaskFailed, PositionLiquidated)):
        return "errors" if not isinstance(ev, ErrorRaised) or ev.level in ("ERROR", "CRITICAL") else "warnings"
    if isinstance(ev, (LiquidationWarning, ManualActionRequired, EmergencyCloseProgress, EventsDropped)):
        return "warnings"
    if isinstance(ev, LogMessage):
        return "errors" if ev.level in ("ERROR", "CRITICAL") else "warnings" if ev.level == "WARNING" else "state"
    if isinstance(ev, (OrderFilled, FundingCharged)):
        return "fills"
    if isinstance(ev, OrderUpdated):
        return "orders"
    if isinstance(ev, PositionChanged):
        return "positions"
    if isinstance(ev, (FeedStateChanged, BreakerChanged, StartupChecked)):
        return "feed"
    if isinstance(ev, TradingStateChanged) and ev.state != "ACTIVE":
        return "warnings"
    return "state"


@dataclass(frozen=True, slots=True)
class LogEntry:
    ts_ms: int
    kind: str
    text: str  # one plain line (no markup: exchange messages may contain '[')

    def matches(self, kind: str, search: str) -> bool:
        """`search` is matched case-insensitively anywhere in the line."""
        return (kind == "all" or self.kind == kind) and (not search or search.lower() in self.text.lower())


def format_event(ev: Event) -> str:
    """One plain-text log line: orders, fills, positions, the account and funding as a trader reads
    them (prices and money by `number_format`, as on every screen); any other event as its fields."""
    reader = _READERS.get(type(ev))
    if reader is not None:
        body = reader(ev)
    else:
        fields = event_to_dict(ev)
        fields.pop("type")
        fields.pop("ts_ms")
        body = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{utc_second(ev.ts_ms)} {ev.type:<16} {body}"


def _side(side: OrderSide) -> str:
    return side.name.lower().replace("_", " ")  # open short, close long ...


def _owner(tag: str) -> str:
    return f" [{tag}]" if tag else ""


def _order_line(ev: Event) -> str:
    assert isinstance(ev, OrderUpdated)
    o = ev.order
    limit = f" @ {price_text(o.price)}" if o.price is not None else ""
    trigger = f" trigger {price_text(o.trigger_price)}" if o.trigger_price is not None else ""
    text = f"{o.client_id} {o.symbol} {_side(o.side)} {o.type.value} {quantity_text(o.qty_contracts)}{limit}{trigger}"
    text += " reduce-only" if o.reduce_only else ""
    text += f" -> {o.state.value}"
    if o.filled_contracts:
        text += f" {quantity_text(o.filled_contracts)}/{quantity_text(o.qty_contracts)} @ {price_text(o.avg_fill_price)}"
    return text + (f" ({o.reason})" if o.reason else "") + _owner(o.tag)


def _fill_line(ev: Event) -> str:
    assert isinstance(ev, OrderFilled)
    f = ev.fill
    text = (f"{f.client_id} {f.symbol} {_side(f.side)} {quantity_text(f.qty_contracts)} @ {price_text(f.price)} "
            f"fee {fee_text(f.fee)}")
    text += f" ({f.liquidity})"
    return text + (f" P&L {money_text(f.realized_pnl, signed=True)} gross" if f.side.is_close else "")


def _position_line(ev: Event) -> str:
    assert isinstance(ev, PositionChanged)
    p = ev.position
    if p.is_flat:
        text = f"{p.symbol} {p.side.value} flat, P&L {money_text(p.realized_pnl, signed=True)} gross"
    else:
        text = (f"{p.symbol} {p.side.value} {quantity_text(p.contracts)} @ {price_text(p.entry_price)} {p.leverage}x "
                f"liq {price_text(p.liquidation_price)} margin {money_text(p.margin)}")
    return text + (f" ({ev.reason})" if ev.reason else "") + _owner(p.tag)


def _account_line(ev: Event) -> str:
    assert isinstance(ev, AccountUpdated)
    return (f"equity {money_text(ev.equity)} available {money_text(ev.available)} "
            f"uPnL {money_text(ev.unrealized_pnl, signed=True)}{_owner(ev.tag)}")


def _funding_line(ev: Event) -> str:
    assert isinstance(ev, FundingCharged)
    return f"{ev.symbol} rate {ev.rate:.4%} paid {money_text(ev.amount, signed=True)}{_owner(ev.tag)}"


_READERS: dict[type[Event], Callable[[Event], str]] = {
    OrderUpdated: _order_line, OrderFilled: _fill_line, PositionChanged: _position_line,
    AccountUpdated: _account_line, FundingCharged: _funding_line,
}


class EventLog:
    """The newest `max_lines` entries (the store keeps every event for good)."""

    def __init__(self, max_lines: int = 10_000) -> None:
        self.entries: deque[LogEntry] = deque(maxlen=max_lines)
        self.added = 0  # entries ever added: a view that wrote up to n writes only what came since

    def add(self, ev: Event) -> LogEntry:
        entry = LogEntry(ev.ts_ms, kind_of(ev), format_event(ev))
        self.entries.append(entry)
        self.added += 1
        return entry

    def since(self, added: int, at_most: int) -> list[LogEntry]:
        """The entries added after the first `added` (the newest `at_most` of them)."""
        n = min(self.added - added, at_most, len(self.entries))
        return list(self.entries)[-n:] if n > 0 else []
