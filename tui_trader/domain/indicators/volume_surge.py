"""Domain layer: `volume_surge_ratio` - traded volume rate now vs. the median rate before (§2.5).

Trade variant (`source = "trades"`): rate(w) = volume traded in `w` / length(w); the baseline
window is cut into buckets of `bucket_s` that slide with `now`, and the ratio is
rate(current) / median(bucket rates). Windows are half-open `(now - a, now - b]`: a trade exactly
on an edge counts in the newer window. Empty buckets are rate 0; a zero median falls back to the
mean, a zero mean is undefined (a dead market cannot surge). Undefined until the first trade is
at least `baseline[0]` seconds old (the longest window is covered).

Cost: every bucket edge is a cursor of one shared `EventLog` (O(1) amortised per edge), and the
median sorts the fixed number of buckets (19 by default): constant in the stream length.

Candle variant (`source = "candles"`, for 1-minute bar backtests): current = volume of the last
closed candle, baseline = median volume of the previous `candles` (default 10) candles, both per
candle interval - the trade variant with `bucket_s` = the candle interval. Updated only when a
candle closes; candles of another interval than the first one seen are ignored.
"""

from __future__ import annotations

import math
from collections import deque
from statistics import median

from tui_trader.domain.indicators.series import SCALE, EventLog
from tui_trader.domain.indicators.twpa import Window, window_ms


def surge_ratio(current_rate: float, bucket_rates: list[float]) -> float | None:
    """current / median(buckets), falling back to the mean; None if that is 0 too."""
    if not bucket_rates:
        return None
    base = median(bucket_rates)
    if base <= 0:
        base = sum(bucket_rates) / len(bucket_rates)
    if base <= 0:
        return None
    return current_rate / base


class VolumeSurge:
    """Trade variant over a volume `EventLog` of kind POINT. Its value reads window sums only, which
    change only when the log does (`EventLog.version`): between those changes it is read from a
    cache - the same value, bit for bit (a step every second between trades reuses it)."""

    _seen_version = -1  # (class defaults: instances restored from older checkpoints have neither)
    _seen_value: float | None = None

    def __init__(self, volumes: EventLog, current: Window = (30, 0), baseline: Window = (600, 30), bucket_s: float = 30) -> None:
        self.volumes = volumes
        ca, cb = window_ms(current)
        ba, bb = window_ms(baseline)
        step = round(bucket_s * 1000)
        if step <= 0 or (ba - bb) % step:
            raise ValueError("the baseline length must be a multiple of bucket_s")
        self._current = (volumes.edge(ca), volumes.edge(cb), (ca - cb) / 1000.0)
        offsets = list(range(bb, ba + 1, step))  # newest edge first
        self._edges = [volumes.edge(off) for off in offsets]
        self._current_ms = (ca, cb)  # window offsets, for `bounds`
        self._offsets_ms = offsets  # bucket edges, newest first: bucket k is (now - offsets[k + 1], now - offsets[k]]
        self._step_ms = step
        self._bucket_s = step / 1000.0
        self._longest_ms = max(ca, ba)
        self.longest_s = self._longest_ms / 1000.0

    def value(self, now_ms: int) -> float | None:
        log = self.volumes
        if log.first_ms is None or now_ms - log.first_ms < self._longest_ms:
            return None
        if log.version == self._seen_version:
            return self._seen_value
        start, end, length = self._current
        current_rate = (log.cumulative(end) - log.cumulative(start)) / SCALE / length  # exact sums, rounded once
        cums = [log.cumulative(e) for e in self._edges]
        rates = [(cums[k] - cums[k + 1]) / SCALE / self._bucket_s for k in range(len(cums) - 1)]
        self._seen_version, self._seen_value = log.version, surge_ratio(current_rate, rates)
        return self._seen_value

    def bounds(self, now_ms: int, horizon_ms: int) -> tuple[float, float] | None:
        """Range over `[now, now + horizon]` with no new trade (any trade voids it: no `trade_band`).

        Each window's volume lies between what every one of its positions over the horizon holds
        (their intersection) and what any holds (their union); the median is monotone in every
        bucket, so it is bounded by the medians of the buckets' bounds. A horizon as long as a bucket
        leaves the base no lower bound: (0, inf), whatever trades come."""
        log, h = self.volumes, horizon_ms
        if h >= self._step_ms:
            return (0.0, math.inf)  # no bucket keeps a trade over the whole horizon: no lower bound on the base
        (ca, cb), length, step_s = self._current_ms, self._current[2], self._bucket_s  # (same arithmetic as `value`)
        cur_hi = log.sum_between(now_ms - ca, now_ms + h - cb) / SCALE / length
        cur_lo = log.sum_between(now_ms + h - ca, now_ms - cb) / SCALE / length
        # every bucket edge at both ends of the horizon: each bucket's volume at least what stays
        # inside it throughout (lows), at most what enters it at some point (highs); h < step
        offsets = self._offsets_ms
        now_cum = log.cums_at([now_ms - off for off in offsets])  # edge positions at `now`
        later_cum = log.cums_at([now_ms + h - off for off in offsets])  # ... at `now + h`
        lows = [(now_cum[k] - later_cum[k + 1]) / SCALE / step_s for k in range(len(offsets) - 1)]
        highs = [(later_cum[k] - now_cum[k + 1]) / SCALE / step_s for k in range(len(offsets) - 1)]
        base_hi = max(median(highs), sum(highs) / len(highs)) if highs else 0.0
        if base_hi <= 0:
            return None  # every bucket empty throughout: undefined
        base_lo = median(lows) if lows else 0.0
        return cur_lo / base_hi, (cur_hi / base_lo if base_lo > 0 else math.inf)


class CandleVolumeSurge:
    """Candle variant: last closed candle's volume / median of the previous `candles` ones."""

    def __init__(self, candles: int = 10) -> None:
        self.candles = candles
        self._volumes: deque[float] = deque(maxlen=candles + 1)
        self._interval_s: int | None = None
        self.longest_s = 60.0 * (candles + 1)  # 1-minute candles (the history a live start loads for it)

    def on_candle(self, interval_s: int, volume: float) -> None:
        if self._interval_s is None:
            self._interval_s = interval_s
        if interval_s == self._interval_s:
            self._volumes.append(volume)

    def value(self, now_ms: int) -> float | None:
        if len(self._volumes) <= self.candles:
            return None
        vols = list(self._volumes)
        return surge_ratio(vols[-1], vols[:-1])
