"""App layer: what the dashboard shows, as plain strings - pure Python, tested without a terminal.

The screens only lay these out and colour them by `band`; every number a trader reads is formatted
here, once. The liquidation-distance bar is text first: its length is the distance (full at
`BAR_FULL_PCT` or more), ticks mark the yellow and red band edges (`|`) and the auto-close
threshold (`!`), and the band is written beside it (`RED 4.1 %`), so it reads the same in a
monochrome terminal as in colour.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_trader.app.facade import ConsoleSnapshot, PositionView
from tui_trader.domain.liquidation import Band
from tui_trader.domain.number_format import money_text, price_text, quantity_text
from tui_trader.domain.time_format import duration_text

BAR_FULL_PCT = 50.0  # a bar is full at this distance from liquidation or more
FILLED, EMPTY, EDGE_TICK, CLOSE_TICK = "█", "·", "|", "!"


@dataclass(frozen=True)
class LiqBar:
    cells: str  # exactly `width` characters
    label: str  # "RED 4.1 %", "n/a" without a liquidation price
    band: Band | None


def liquidation_bar(distance: float | None, band: Band | None, width: int = 20, yellow: float = 20.0,
                    red: float = 10.0, autoclose: float | None = 10.0) -> LiqBar:
    """The bar for one position (see the module docstring)."""
    if distance is None or band is None:
        return LiqBar(" " * width, "n/a", None)
    filled = max(0, min(width, round(min(distance, BAR_FULL_PCT) / BAR_FULL_PCT * width)))
    cells = [FILLED] * filled + [EMPTY] * (width - filled)
    for pct, tick in ((yellow, EDGE_TICK), (red, EDGE_TICK), (autoclose, CLOSE_TICK)):
        if pct is not None and 0 < pct < BAR_FULL_PCT:
            cells[min(width - 1, int(pct / BAR_FULL_PCT * width))] = tick
    label = "LIQUIDATED" if band is Band.LIQUIDATED else f"{band.value.upper()} {distance:.1f} %"
    return LiqBar("".join(cells), label, band)


@dataclass(frozen=True)
class PositionRow:
    key: str  # "BTC_USDT:SHORT" - the row's id, what a close is asked for
    cells: tuple[str, ...]
    bar: LiqBar


# most needed first, so a narrow terminal cuts the least needed: the bar third, then the P&L, then the
# prices (120 columns show up to "last"; the P&L used to sit past 150, cut on a 120-column terminal)
BAR_COLUMN = "to liquidation"
COLUMNS = ("symbol", "side", BAR_COLUMN, "uPnL", "ROE", "liq. price", "fair", "entry", "last", "lev", "contracts",
           "coins", "SL / TP", "in trade", "watchdog")


def position_rows(snap: ConsoleSnapshot, bar_width: int = 16) -> list[PositionRow]:
    return [_row(p, snap, bar_width) for p in snap.positions]


def _row(p: PositionView, snap: ConsoleSnapshot, bar_width: int) -> PositionRow:
    liq = price_text(p.liquidation)  # (a computed price: cut to the significant digits every price shows)
    exch, used = p.exchange_liquidation, p.liquidation
    if exch is not None and used is not None and abs(exch - used) > 1e-9 * max(1.0, abs(used)):
        liq = f"{liq} (exch {price_text(p.exchange_liquidation)})"  # formula and exchange differ: both shown
    upnl = "-" if p.upnl is None else money_text(p.upnl, signed=True)
    roe = "-" if p.roe_pct is None else f"{p.roe_pct:+.1f} %"
    sltp = f"{price_text(p.stop_loss)} / {price_text(p.take_profit)}"
    held = duration_text(max(0, snap.now_ms - p.opened_ms) / 1000) if p.opened_ms else "-"
    bar = liquidation_bar(p.distance_pct, p.band, bar_width, snap.yellow_pct, snap.red_pct, snap.autoclose_pct)
    values = {"symbol": p.symbol, "side": p.side.value, BAR_COLUMN: f"{bar.cells} {bar.label}", "uPnL": upnl,
              "ROE": roe, "liq. price": liq, "fair": price_text(p.fair), "entry": price_text(p.entry),
              "last": price_text(p.last), "lev": f"{p.leverage}x", "contracts": quantity_text(p.contracts),
              "coins": quantity_text(p.coins), "SL / TP": sltp, "in trade": held, "watchdog": p.stage}
    return PositionRow(f"{p.symbol}:{p.side.value}", tuple(values[c] for c in COLUMNS), bar)
