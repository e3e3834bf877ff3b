"""Bar-mode candle indicators (domain/indicators/bars.py): incremental == batch numpy, bit for bit.

Each reference below is written from the definition in bars.py's docstring, over whole arrays:
windows by `sliding_window_view`, extremes by numpy's min/max, changes by `np.diff`, ratios and
RSI by vectorised float operations. Sums are the exact sum rounded once, so the batch takes
`math.fsum` over each numpy window (numpy's own `sum` is pairwise: close, but not the definition).
The two recurrences (EMA, Wilder's averages) cannot be vectorised without changing their
rounding; the batch runs them as a plain loop over the numpy arrays. Every comparison is
bit for bit (`float.hex`), None where the indicator is undefined.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain.indicators.bars import (
    ChangeFromHigh,
    ChangeFromLow,
    Ema,
    RollingMax,
    RollingMean,
    RollingMin,
    RollingSum,
    Rsi,
    Sma,
    VolumeSurge,
)
from tui_trader.venues.candle_files import read_candles
from tui_trader.venues.replay import bundled_data_path

if TYPE_CHECKING:
    from numpy import ndarray

np = pytest.importorskip("numpy")
swv = np.lib.stride_tricks.sliding_window_view

BCC = "bittrex_BCC-BTC_1m_20171104-20171118.csv.gz"
Ref = list[float | None]

# OHLCV-like values: >= 0, with zeros, repeats (a small pool) and wide magnitudes
_pool = st.lists(st.floats(0.0, 1e9, allow_subnormal=False), min_size=1, max_size=6)
_values = st.one_of(st.just(0.0), st.floats(0.0, 1e9, allow_subnormal=False), st.floats(1e-6, 2.0))


@st.composite
def series(draw: st.DrawFn, max_size: int = 160) -> list[float]:
    pool = draw(_pool)
    items = st.one_of(_values, st.sampled_from(pool))
    return draw(st.lists(items, min_size=0, max_size=max_size))


def _hex(v: float | None) -> str | None:
    return None if v is None else float(v).hex()


def _run(make: Callable[[], object], xs: Sequence[float]) -> Ref:
    ind = make()
    out: Ref = []
    for x in xs:
        ind.update(x)  # type: ignore[attr-defined]
        out.append(ind.value)  # type: ignore[attr-defined]
    return out


def _assert_same(got: Ref, want: Ref) -> None:
    assert len(got) == len(want)
    for t, (g, w) in enumerate(zip(got, want)):
        assert _hex(g) == _hex(w), (t, g, w)


# ---- batch references, from the definitions ----


def _windowed(x: ndarray, n: int, k: int, reduce: Callable[[ndarray], ndarray]) -> Ref:
    """reduce over x[t-k-n+1 .. t-k] at every t; None for t < n+k-1."""
    out: Ref = [None] * len(x)
    if len(x) >= n + k:
        vals = reduce(swv(x[: len(x) - k], n))
        for j, v in enumerate(vals):
            out[j + n - 1 + k] = float(v)
    return out


def _fsums(windows: ndarray) -> ndarray:
    return np.array([math.fsum(w) for w in windows], dtype=float)


def batch_min(x: ndarray, n: int, k: int) -> Ref:
    return _windowed(x, n, k, lambda w: w.min(axis=1))


def batch_max(x: ndarray, n: int, k: int) -> Ref:
    return _windowed(x, n, k, lambda w: w.max(axis=1))


def batch_sum(x: ndarray, n: int, k: int) -> Ref:
    return _windowed(x, n, k, _fsums)


def batch_mean(x: ndarray, n: int, k: int) -> Ref:
    return _windowed(x, n, k, lambda w: _fsums(w) / n)


def batch_ema(x: ndarray, n: int) -> Ref:
    out: Ref = [None] * len(x)
    if len(x) >= n:
        alpha = 2.0 / (n + 1)
        ema = math.fsum(x[:n]) / n
        out[n - 1] = ema
        for t in range(n, len(x)):
            ema = (x[t] - ema) * alpha + ema
            out[t] = float(ema)
    return out


def batch_rsi(x: ndarray, n: int) -> Ref:
    out: Ref = [None] * len(x)
    if len(x) < n + 1:
        return out
    d = np.diff(x)
    gains, losses = np.maximum(d, 0.0), np.maximum(-d, 0.0)
    g, lo = np.empty(len(d) - n + 1), np.empty(len(d) - n + 1)
    g[0], lo[0] = math.fsum(gains[:n]) / n, math.fsum(losses[:n]) / n
    for i in range(1, len(g)):
        g[i] = (g[i - 1] * (n - 1) + gains[n - 1 + i]) / n
        lo[i] = (lo[i - 1] * (n - 1) + losses[n - 1 + i]) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = np.where(lo == 0, np.where(g == 0, 50.0, 100.0), 100.0 - 100.0 / (1.0 + g / lo))
    out[n:] = [float(v) for v in rsi]
    return out


def _ratio_rule(num: ndarray, den: ndarray, num_positive: ndarray, minus_one: bool) -> Ref:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # (huge / tiny: inf, as the rule says)
        r = num / den - 1.0 if minus_one else num / den
    return [(math.inf if p else None) if dz else float(v) for v, dz, p in zip(r, den == 0, num_positive)]


def batch_change(x: ndarray, n: int, high: bool) -> Ref:
    out: Ref = [None] * len(x)
    if len(x) > n:
        w = swv(x[:-1], n)
        ext = w.max(axis=1) if high else w.min(axis=1)
        out[n:] = _ratio_rule(x[n:], ext, x[n:] > 0, minus_one=True)
    return out


def batch_surge(x: ndarray, a: int, b: int) -> Ref:
    out: Ref = [None] * len(x)
    if len(x) >= a + b:
        recent_sum = _fsums(swv(x, a))[b:]  # windows ending at t = a+b-1 ..
        base = _fsums(swv(x[: len(x) - a], b)) / b
        out[a + b - 1 :] = _ratio_rule(recent_sum / a, base, recent_sum > 0, minus_one=False)
    return out


# ---- property tests: random series ----

_window = st.integers(1, 20)
_offset = st.integers(0, 5)


@settings(max_examples=60, deadline=None)
@given(series(), _window, _offset)
def test_rolling_min_max_bit_for_bit(xs, n, k):
    x = np.array(xs, dtype=float)
    _assert_same(_run(lambda: RollingMin(n, k), xs), batch_min(x, n, k))
    _assert_same(_run(lambda: RollingMax(n, k), xs), batch_max(x, n, k))


@settings(max_examples=60, deadline=None)
@given(series(), _window, _offset)
def test_rolling_sum_mean_sma_bit_for_bit(xs, n, k):
    x = np.array(xs, dtype=float)
    _assert_same(_run(lambda: RollingSum(n, k), xs), batch_sum(x, n, k))
    _assert_same(_run(lambda: RollingMean(n, k), xs), batch_mean(x, n, k))
    _assert_same(_run(lambda: Sma(n), xs), batch_mean(x, n, 0))


@settings(max_examples=60, deadline=None)
@given(series(), _window)
def test_ema_bit_for_bit(xs, n):
    _assert_same(_run(lambda: Ema(n), xs), batch_ema(np.array(xs, dtype=float), n))


@settings(max_examples=60, deadline=None)
@given(series(), _window)
def test_rsi_bit_for_bit(xs, n):
    _assert_same(_run(lambda: Rsi(n), xs), batch_rsi(np.array(xs, dtype=float), n))


@settings(max_examples=60, deadline=None)
@given(series(), _window)
def test_change_from_low_and_high_bit_for_bit(xs, n):
    x = np.array(xs, dtype=float)
    _assert_same(_run(lambda: ChangeFromLow(n), xs), batch_change(x, n, high=False))
    _assert_same(_run(lambda: ChangeFromHigh(n), xs), batch_change(x, n, high=True))


@settings(max_examples=60, deadline=None)
@given(series(), st.integers(1, 8), st.integers(1, 20))
def test_volume_surge_bit_for_bit(xs, a, b):
    _assert_same(_run(lambda: VolumeSurge(a, b), xs), batch_surge(np.array(xs, dtype=float), a, b))


def test_exact_sum_survives_cancellation():
    # a naive running sum would keep 1e16's rounding residue after it leaves the window
    xs = [1e16, 1.0, 1.0, 1.0, 1.0]
    assert _run(lambda: RollingSum(2), xs) == [None, 1e16, 2.0, 2.0, 2.0]


def test_zero_denominators():
    zeros = [0.0] * 65
    surge = _run(lambda: VolumeSurge(5, 60), zeros + [2.0])
    assert surge[64] is None and surge[65] == math.inf  # 0/0 undefined; x/0 with x > 0 met
    pump = _run(lambda: ChangeFromLow(3), [0.0, 0.0, 0.0, 0.0, 1.0])
    assert pump == [None, None, None, None, math.inf]
    assert _run(lambda: Rsi(2), [1.0, 1.0, 1.0, 2.0]) == [None, None, 50.0, 100.0]  # flat: neutral, as rsi.Rsi


# ---- the bundled BCC/BTC file ----


@cache
def _bcc() -> tuple[list[float], list[float]]:
    candles = list(read_candles(bundled_data_path(BCC)))
    return [c.close for c in candles], [c.volume for c in candles]


DATA = Path(__file__).resolve().parents[1] / "data"
REAL_FILES = [bundled_data_path(BCC), bundled_data_path("bittrex_NXT-BTC_1m_20171130-20171210.csv.gz"),
              *sorted(p for p in DATA.glob("*_1m_*.csv.gz") if "BCC" not in p.name), *sorted(DATA.glob("*_5m_*.csv.gz"))]


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name.split("_1")[0])
def test_every_indicator_bit_for_bit_on_the_real_files(path):
    """Every candle file the repository ships (the package's two, the tests' slices), every field."""
    candles = list(read_candles(path))
    assert len(candles) > 1_000
    for xs in ([c.open for c in candles], [c.high for c in candles], [c.low for c in candles],
               [c.close for c in candles], [c.volume for c in candles]):
        x = np.array(xs, dtype=float)
        _assert_same(_run(lambda: RollingMin(60, 1), xs), batch_min(x, 60, 1))
        _assert_same(_run(lambda: RollingMax(30, 2), xs), batch_max(x, 30, 2))
        _assert_same(_run(lambda: RollingSum(60, 5), xs), batch_sum(x, 60, 5))
        _assert_same(_run(lambda: RollingMean(5, 0), xs), batch_mean(x, 5, 0))
        _assert_same(_run(lambda: Sma(20), xs), batch_mean(x, 20, 0))
        _assert_same(_run(lambda: Ema(20), xs), batch_ema(x, 20))
        _assert_same(_run(lambda: Rsi(14), xs), batch_rsi(x, 14))
        _assert_same(_run(lambda: ChangeFromLow(60), xs), batch_change(x, 60, high=False))
        _assert_same(_run(lambda: ChangeFromHigh(60), xs), batch_change(x, 60, high=True))
        _assert_same(_run(lambda: VolumeSurge(5, 60), xs), batch_surge(x, 5, 60))


def test_bcc_bench_signal_equals_batch_signal_at_every_bar():
    """signal[t] = t >= 64 and pump_pct >= 0.07 and vol_surge >= 3.0 (bench_strategy.md)."""
    closes, volumes = _bcc()
    pump, surge = ChangeFromLow(60), VolumeSurge(5, 60)
    got = []
    for t, (c, v) in enumerate(zip(closes, volumes)):
        pump.update(c)
        surge.update(v)
        p, s = pump.value, surge.value
        got.append(t >= 64 and p is not None and p >= 0.07 and s is not None and s >= 3.0)

    close, volume = np.array(closes), np.array(volumes)
    n = len(close)
    want = np.zeros(n, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        pump_pct = close[64:] / swv(close[:-1], 60).min(axis=1)[4:] - 1.0
        recent_sum = _fsums(swv(volume, 5))[60:]
        base_sum = _fsums(swv(volume[:-5], 60))
        vol_surge = np.where(base_sum == 0, np.where(recent_sum > 0, np.inf, 0.0), (recent_sum / 5) / (base_sum / 60))
    want[64:] = (pump_pct >= 0.07) & (vol_surge >= 3.0)
    assert want.sum() > 0  # the file does have signals: the comparison can fail
    assert got == want.tolist()
