"""App layer: folds core events into what the dashboard shows, so a burst costs one repaint.

Two subscriptions, drained by the app's repaint timer (`ui.refresh_hz`):
- the header's (LATEST, market data): ticks collapse to the newest per symbol (tables read the cache);
- the event log's (EVERY, all but market data): every event is kept, in order, none coalesced.
An alert (a position entering red, an auto-close, a liquidation, the kill switch, a close the console
cannot send) is also returned, for the bell and a toast. Pure Python, no Textual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tui_trader.app.tui.event_log import MARKET_DATA, EventLog, LogEntry, logged_types
from tui_trader.domain.events import (
    BreakerChanged,
    CoreStateChanged,
    EmergencyCloseProgress,
    Event,
    FeedStateChanged,
    LiquidationWarning,
    ManualActionRequired,
    MarkPriceTick,
    PositionLiquidated,
    TradeTick,
    TradingStateChanged,
)
from tui_trader.domain.number_format import price_text
from tui_trader.engine.bus import EventBus, Policy

RECONNECTING = ("reconnecting", "stalled")


@dataclass
class HeaderState:
    mode: str = "paper"
    core: str = "starting"
    feeds: dict[str, str] = field(default_factory=dict)
    reconnects: dict[str, int] = field(default_factory=dict)  # feed -> times it went reconnecting
    trading: str = "ACTIVE"
    last_price: dict[str, float] = field(default_factory=dict)
    data_time_ms: int = 0
    price_source: dict[str, str] = field(default_factory=dict)  # symbol -> "stream" | "rest"
    price_seen_ms: dict[str, int] = field(default_factory=dict)  # symbol -> clock time its last price arrived
    breakers: dict[str, str] = field(default_factory=dict)  # venue -> closed | open | half-open

    def price_age_s(self, symbol: str, now_ms: int) -> float | None:
        """Seconds since `symbol`'s last price (trade or fair) reached the console; None before any."""
        seen = self.price_seen_ms.get(symbol)
        return None if seen is None else max(0.0, (now_ms - seen) / 1000)


@dataclass(frozen=True)
class Alert:
    message: str  # shown as an error toast, with the bell


def alert_for(ev: Event) -> Alert | None:
    """The events a trader must notice even when looking elsewhere (one rule for bell and toast)."""
    if isinstance(ev, LiquidationWarning):
        if ev.level == "AUTOCLOSE":
            return Alert(f"AUTO-CLOSE {ev.symbol} {ev.side.lower()}: {ev.distance_pct:.1f} % to liquidation")
        if ev.band == "red" and ev.level == "CRITICAL":
            return Alert(f"{ev.symbol} {ev.side.lower()} entered RED: {ev.distance_pct:.1f} % to liquidation")
    elif isinstance(ev, PositionLiquidated):
        return Alert(f"LIQUIDATED {ev.symbol} {ev.side.lower()} at {price_text(ev.price)}")
    elif isinstance(ev, TradingStateChanged) and ev.state == "REDUCING":
        return Alert(f"KILL SWITCH: closing every position ({ev.reason})")
    elif isinstance(ev, EmergencyCloseProgress) and ev.stage == "failed":
        return Alert(f"emergency close {ev.scope} FAILED: {ev.detail}")
    elif isinstance(ev, ManualActionRequired):
        return Alert(ev.action)
    return None


@dataclass
class Update:
    """What one drain brought: new log entries and alerts."""

    entries: list[LogEntry] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


class Bridge:
    def __init__(self, bus: EventBus, mode: str, now_ms: Callable[[], int] | None = None,
                 log_lines: int = 10_000) -> None:
        self.sub = bus.subscribe_queue("ui", Policy.LATEST, maxsize=5_000, types=MARKET_DATA)
        self.log_sub = bus.subscribe_queue("ui-log", Policy.EVERY, maxsize=max(log_lines, 10_000),
                                           types=logged_types())
        self.header = HeaderState(mode=mode)
        self.log = EventLog(log_lines)
        self.now_ms = now_ms or (lambda: 0)  # the core's clock: a price's age is measured on it

    def take(self) -> Update:
        """Apply pending events to the header state; log every non-market event; collect alerts."""
        for ev in self.sub.drain():
            self._apply(ev)
        update = Update()
        for ev in self.log_sub.drain():
            self._apply(ev)
            update.entries.append(self.log.add(ev))
            alert = alert_for(ev)
            if alert is not None:
                update.alerts.append(alert)
        return update

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
        elif isinstance(ev, FeedStateChanged):
            if ev.state in RECONNECTING and h.feeds.get(ev.feed) not in RECONNECTING:
                h.reconnects[ev.feed] = h.reconnects.get(ev.feed, 0) + 1
            h.feeds[ev.feed] = ev.state
        elif isinstance(ev, CoreStateChanged):
            h.core = ev.state
            h.mode = ev.mode
        elif isinstance(ev, TradingStateChanged):
            h.trading = ev.state

