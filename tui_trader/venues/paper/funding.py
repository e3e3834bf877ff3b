"""Venues layer: funding settlements for the paper venue - a recorded rate series or a constant.

Settlement times are multiples of the interval since the epoch (00:00, 08:00, 16:00 UTC for 8 h).
With a series, the rate applied at a settlement is the series entry recorded for it (within 60 s:
exchange timestamps carry a few ms of jitter); a settlement the series does not cover uses the
constant rate. Funding is per symbol: `by_symbol` series apply to their own symbol only; `series`
(one series for a one-symbol run, or a paper session's) to any symbol without its own.
"""

from __future__ import annotations

import bisect
from decimal import Decimal
from pathlib import Path

from tui_trader.domain.errors import DataError
from tui_trader.venues.candle_files import open_text, symbol_in_filename


class FundingSchedule:
    def __init__(self, constant_rate: Decimal, interval_h: int = 8, series: list[tuple[int, Decimal]] | None = None,
                 by_symbol: dict[str, list[tuple[int, Decimal]]] | None = None) -> None:
        self.constant_rate = constant_rate
        self.interval_ms = interval_h * 3_600_000
        self.series = sorted(series or [])
        self._times = [t for t, _ in self.series]
        self._by_symbol = {sym: _indexed(rows) for sym, rows in (by_symbol or {}).items()}
        self.tolerance_ms = 60_000

    def next_after(self, ts_ms: int) -> int:
        """First settlement time strictly after `ts_ms`."""
        return (ts_ms // self.interval_ms + 1) * self.interval_ms

    def rate_at(self, settle_ms: int, symbol: str | None = None) -> Decimal:
        series, times = self._by_symbol.get(symbol, (self.series, self._times))  # (a symbol of its own, else the shared one)
        if series:
            i = bisect.bisect_right(times, settle_ms + self.tolerance_ms) - 1
            if i >= 0 and abs(times[i] - settle_ms) <= self.tolerance_ms:
                return series[i][1]
        return self.constant_rate


def _indexed(rows: list[tuple[int, Decimal]]) -> tuple[list[tuple[int, Decimal]], list[int]]:
    rows = sorted(rows)
    return rows, [t for t, _ in rows]


def read_funding_csv(path: Path | str) -> list[tuple[int, Decimal]]:
    """`timestamp_ms,funding_rate` rows (shared data format); opened like candle files (`open_text`)."""
    path = Path(path)
    out: list[tuple[int, Decimal]] = []
    with open_text(path) as fh:
        header = fh.readline().strip()
        if header != "timestamp_ms,funding_rate":
            raise DataError(f"{path}:1: header is {header!r}; expected 'timestamp_ms,funding_rate'")
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            try:
                ts, rate = line.strip().split(",")
                out.append((int(ts), Decimal(rate)))
            except (ValueError, ArithmeticError):
                raise DataError(f"{path}:{lineno}: expected 'timestamp_ms,funding_rate', got {line.strip()!r}") from None
    return out


def funding_series(files: list[Path], symbols: list[str]) -> dict[str, list[tuple[int, Decimal]]]:
    """Each funding file's series, by the symbol its name carries (`xrp-usdt-perp_funding_8h_...`
    -> XRP_USDT_PERP). A file whose name carries no symbol serves a one-symbol run; one that names
    a symbol the run does not trade, or that a multi-symbol run cannot place, is an error - one
    symbol's rates must not be charged on another."""
    out: dict[str, list[tuple[int, Decimal]]] = {}
    for path in files:
        symbol = symbol_in_filename(path)
        if symbol is None and len(files) == 1 and len(symbols) == 1:
            symbol = symbols[0]
        elif symbol is None:
            raise DataError(f"{path}: its name names no symbol; with several symbols or funding files, name each funding"
                            f" file after its symbol (e.g. XRP-USDT_funding.csv; the run trades {', '.join(symbols)})")
        elif symbol not in symbols:
            raise DataError(f"{path}: its name says {symbol}, which the run does not trade ({', '.join(symbols)})")
        if symbol in out:
            raise DataError(f"{path}: a second funding file for {symbol}")
        out[symbol] = read_funding_csv(path)
    return out
