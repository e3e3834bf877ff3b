"""App layer: a backtest's equity and drawdown plot - two stacked textual-plot charts on one UTC time axis.

Equity (USDT) above, the fall from the running peak (%, zero or below) under it, both from the
run's sampled equity curve, so the deepest point drawn is the run's `max_drawdown_pct`. The series
and the time ticks are pure functions, tested without a terminal. Floats here: a plot is a picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from textual.app import ComposeResult
from textual.containers import Vertical
from textual_plot import AxisFormatter, HiResMode, PlotWidget

HOUR_S = 3600
DAY_S = 24 * HOUR_S
TICK_STEPS_S = (HOUR_S, 2 * HOUR_S, 3 * HOUR_S, 6 * HOUR_S, 12 * HOUR_S, DAY_S, 2 * DAY_S, 7 * DAY_S, 14 * DAY_S,
                30 * DAY_S, 91 * DAY_S, 365 * DAY_S)


def drawdown_pct(values: Sequence[Decimal | float]) -> list[float]:
    """Per point: (equity / running peak - 1) x 100, so 0 at a new high and negative under it."""
    out, peak = [], -math.inf
    for value in values:
        v = float(value)
        peak = max(peak, v)
        out.append((v / peak - 1) * 100 if peak > 0 else 0.0)
    return out


def time_step_s(span_s: float, max_ticks: int = 8) -> int:
    """The shortest whole step (an hour ... a year) that puts at most `max_ticks` ticks on `span_s`."""
    return next((step for step in TICK_STEPS_S if span_s / step <= max(1, max_ticks - 1)), TICK_STEPS_S[-1])


def time_label(ts_s: float, step_s: int) -> str:
    """`12-02` on day steps, `12-02 06:00` on hour steps (UTC)."""
    dt = datetime.fromtimestamp(ts_s, UTC)
    return dt.strftime("%m-%d" if step_s >= DAY_S else "%m-%d %H:%M")


class UtcTimeAxis(AxisFormatter):
    """X ticks on whole UTC hours/days for an axis in epoch seconds."""

    def __init__(self) -> None:
        self.step_s = DAY_S

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        self.step_s = time_step_s(max_ - min_, max_ticks)
        first = math.ceil(min_ / self.step_s) * self.step_s
        return [float(t) for t in range(first, int(max_) + 1, self.step_s)]

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        return [time_label(t, self.step_s) for t in ticks]


class EquityPlot(Vertical):
    """`show(curve)` draws a run's equity curve, `(epoch ms, equity)` points, and its drawdown."""

    DEFAULT_CSS = """
    EquityPlot { height: 1fr; }
    EquityPlot #equity-chart { height: 2fr; }
    EquityPlot #drawdown-chart { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.times_s: list[float] = []
        self.equity: list[float] = []
        self.drawdown: list[float] = []

    def compose(self) -> ComposeResult:
        yield PlotWidget(id="equity-chart")
        yield PlotWidget(id="drawdown-chart")

    def show(self, curve: Sequence[tuple[int, Decimal]]) -> None:
        self.times_s = [ts / 1000 for ts, _ in curve]
        self.equity = [float(e) for _, e in curve]
        self.drawdown = drawdown_pct(self.equity)
        theme = self.app.current_theme
        for chart_id, values, label, colour in (("#equity-chart", self.equity, "equity USDT", theme.success),
                                                ("#drawdown-chart", self.drawdown, "drawdown %", theme.error)):
            chart = self.query_one(chart_id, PlotWidget)
            chart.clear()
            chart.set_x_formatter(UtcTimeAxis())
            chart.set_ylabel(label)
            if len(values) >= 2:
                chart.plot(self.times_s, values, line_style=colour or "white", hires_mode=HiResMode.BRAILLE)
                low, high = min(values), max(values)
                pad = (high - low) * 0.05 or 1.0  # the extremes inside the frame: a line on the axis is hidden
                chart.set_ylimits(low - pad, high + pad)
