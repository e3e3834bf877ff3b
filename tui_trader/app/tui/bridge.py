"""App layer: folds core events into what the dashboard shows, so a burst costs one repaint.

The bridge holds a LATEST-policy subscription: ticks collapse to the newest per symbol; other events
(state changes, orders, warnings, errors) are kept in order for the event log. The app drains it
from a timer at `ui.refresh_hz`. Pure Python, no Textual: testable without a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from tui_trader.domain.events import (
    BookTick,
    BreakerChanged,
    CandleClosed,
    CandlesClosed,
    CoreStateChanged,
    Event,
    FeedStateChanged,
    ManualActionRequired,
    MarkPriceTick,
    TradeTick,
    TradingStateChanged,
    event_to_dict,
)
from tui_trader.domain.time_format import utc_second
from tui_trader.engine.bus import EventBus, Policy

_QUIET = (TradeTick, MarkPriceTick, BookTick, CandleClosed, CandlesClosed)


@dataclass
class HeaderState:
    mode: str = "paper"
    core: str = "starting"
    feeds: dict[str, str] = field(default_factory=dict)
    trading: str = "ACTIVE"
    last_price: dict[str, float] = field(default_factory=dict)
    data_time_ms: int = 0
    price_source: dict[str, str] = field(default_factory=dict)  # symbol -> "stream" | "rest"
    price_seen_ms: dict[str, int] = field(default_factory=dict)  # symbol -> clock time its last price arrived
    breakers: dict[str, str] = field(default_factory=dict)  # venue -> closed | open | half-open
    alarms: int = 0  # ManualActionRequired seen (the app rings once per new one)

    def price_age_s(self, symbol: str, now_ms: int) -> float | None:
        """Seconds since `symbol`'s last price (trade or fair) reached the console; None before any."""
        seen = self.price_seen_ms.get(symbol)
        return None if seen is None else max(0.0, (now_ms - seen) / 1000)


class Bridge:
    def __init__(self, bus: EventBus, mode: str, now_ms: Callable[[], int] | None = None) -> None:
        self.sub = bus.subscribe_queue("ui", Policy.LATEST, maxsize=5_000)
        self.header = HeaderState(mode=mode)
        self.now_ms = now_ms or (lambda: 0)  # the core's clock: a price's age is measured on it

    def take(self) -> list[str]:
        """Apply pending events to the header state; return new event-log lines."""
        lines: list[str] = []
        for ev in self.sub.drain():
            self._apply(ev)
            if not isinstance(ev, _QUIET):
                lines.append(format_event(ev))
        return lines

    def _apply(self, ev: Event) -> None:
        h = self.header
        if isinstance(ev, TradeTick):
            h.last_price[ev.symbol] = ev.price
            h.data_time_ms = max(h.data_time_ms, ev.ts_ms)
            h.price_source[ev.symbol], h.price_seen_ms[ev.symbol] = "stream", self.now_ms()
        elif isinstance(ev, MarkPriceTick):
            h.price_source[ev.symbol], h.price_seen_ms[ev.symbol] = ev.source, self.now_ms()
            if ev.source != "stream" or ev.symbol not in h.last_price:  # no trades: the fair price is the price
                h.last_price[ev.symbol] = ev.price
        elif isinstance(ev, BreakerChanged):
            h.breakers[ev.venue] = ev.new
        elif isinstance(ev, ManualActionRequired):
            h.alarms += 1
        elif isinstance(ev, FeedStateChanged):
            h.feeds[ev.feed] = ev.state
        elif isinstance(ev, CoreStateChanged):
            h.core = ev.state
            h.mode = ev.mode
        elif isinstance(ev, TradingStateChanged):
            h.trading = ev.state


def format_time(ts_ms: int) -> str:
    return utc_second(ts_ms)


def format_price(price: float) -> str:
    """Plain positional notation (0.00001714, not 1.714e-05), as the exchange shows it."""
    return format(Decimal(repr(price)), "f")


def format_event(ev: Event) -> str:
    """One plain-text log line (no markup: exchange messages may contain '[')."""
    fields = event_to_dict(ev)
    fields.pop("type")
    fields.pop("ts_ms")
    body = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{format_time(ev.ts_ms)} {ev.type:<16} {body}"
