"""App layer: the two-line status header every screen shows.

Line 1 - what is at stake: PAPER / LIVE / LIVE MONITOR-ONLY, trading state (ACTIVE / REDUCING / HALTED),
equity, daily P&L, the UTC clock. Line 2 - can the console be trusted right now: each feed's state and
reconnects, each breaker, each symbol's last price with its age when it is old or came over REST, and
the data time of a replay. `header_text` is plain Rich text, tested without a terminal.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui_trader.app.facade import ConsoleSnapshot
from tui_trader.app.tui.bridge import HeaderState
from tui_trader.domain.number_format import money_text, price_text
from tui_trader.domain.time_format import utc_second

GOOD_FEED = ("connected", "replaying", "resynced", "finished")


def _mode_badge(mode: str) -> tuple[str, str]:
    label = mode.upper()
    return f" {label} ", "bold black on green" if mode == "paper" else "bold white on red"


def header_text(h: HeaderState, snap: ConsoleSnapshot, now_ms: int, wall_ms: int) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(*_mode_badge(snap.mode if snap.mode != "-" else h.mode))
    trading = snap.trading if snap.trading != "-" else h.trading
    text.append("  trading ")
    text.append(trading, style="bold green" if trading == "ACTIVE" else "bold white on red")
    if snap.equity is not None:
        text.append(f"  equity {money_text(snap.equity)}")
    if snap.daily_pnl is not None:
        text.append("  today ")
        text.append(money_text(snap.daily_pnl, signed=True), style="green" if snap.daily_pnl >= 0 else "red")
    text.append(f"  {utc_second(wall_ms)} UTC", style="bold")
    if h.core != "running":
        text.append(f"  core {h.core}", style="yellow")
    text.append("\n")
    for feed, state in h.feeds.items():
        text.append(f"feed {feed} ")
        text.append(state.upper() if state == "failed" else state,
                    style="green" if state in GOOD_FEED else "bold white on red" if state == "failed" else "yellow")
        if h.reconnects.get(feed):
            text.append(f" ({h.reconnects[feed]} reconnects)", style="yellow")
        text.append("  ")
    for venue, state in h.breakers.items():
        text.append(f"{venue} breaker ")
        text.append(state, style="green" if state == "closed" else "bold red" if state == "open" else "yellow")
        text.append("  ")
    for symbol, price in h.last_price.items():
        text.append(f"{symbol} {price_text(price)}")
        age, source = h.price_age_s(symbol, now_ms), h.price_source.get(symbol, "stream")
        if age is not None and (source != "stream" or age >= snap.stale_after_s):  # the watchdog's own limit
            text.append(f" ({source} {age:.1f} s)", style="bold yellow")
        text.append("  ")
    if h.data_time_ms and h.mode == "paper":
        text.append(f"data {utc_second(h.data_time_ms)}", style="dim")
    return text


class StatusHeader(Static):
    def show(self, h: HeaderState, snap: ConsoleSnapshot, now_ms: int, wall_ms: int) -> None:
        self.update(header_text(h, snap, now_ms, wall_ms))
