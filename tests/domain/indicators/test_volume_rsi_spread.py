"""Volume surge (trade and candle variants), RSI, spread, P&L and momentum reversal vs. naive."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.domain.indicators import naive
from tui_trader.domain.indicators.position import momentum_reversal, next_peak, unrealized_pnl_pct
from tui_trader.domain.indicators.rsi import Rsi
from tui_trader.domain.indicators.series import EventLog, Kind
from tui_trader.domain.indicators.spread import Spread
from tui_trader.domain.indicators.volume_surge import CandleVolumeSurge, VolumeSurge
from tui_trader.domain.models import Side

T0 = 1_700_000_000_000


def _check_volume(trades: list[tuple[int, float]], evals: list[int]) -> int:
    log = EventLog(Kind.POINT)
    surge = VolumeSurge(log)
    i = defined = 0
    for now in evals:
        while i < len(trades) and trades[i][0] <= now:
            log.add(*trades[i])
            i += 1
        log.advance(now)
        got, want = surge.value(now), naive.volume_surge(trades[:i], now)
        assert naive.close_enough(got, want), (now, got, want)
        defined += got is not None
    return defined


def test_volume_surge_worked_example():
    # baseline: 1 200 contracts per 30 s bucket (40 c/s); last 30 s: 5 400 (180 c/s) -> 4.5
    trades = [(T0 + k * 30_000, 1200.0) for k in range(1, 21)] + [(T0 + 20 * 30_000 + 15_000, 5400.0)]
    now = T0 + 21 * 30_000
    log = EventLog(Kind.POINT)
    surge = VolumeSurge(log)
    for t, v in trades:
        log.add(t, v)
    log.advance(now)
    assert surge.value(now) == pytest.approx(4.5)
    assert naive.volume_surge(trades, now) == pytest.approx(4.5)


def test_dead_market_cannot_surge():
    log = EventLog(Kind.POINT)
    surge = VolumeSurge(log)
    log.add(T0, 0.0)
    log.advance(T0 + 700_000)
    assert surge.value(T0 + 700_000) is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40_000), st.integers(0, 4000), st.booleans()), min_size=1, max_size=150))
def test_volume_surge_matches_naive_on_random_streams(items):
    t = T0
    trades, evals = [], []
    for dt, qty, extra in items:
        t += dt
        trades.append((t, qty * 0.25))  # quarter-contract steps: exact in binary
        evals.append(t)
        if extra:
            evals.append(t + 17_000)
    _check_volume(trades, sorted(set(evals)))


def test_volume_surge_matches_naive_on_real_data():
    for name, limit in (("binance_XRP-ETH_aggtrades_20191011-20191013.csv", 6000), ("bittrex_NXT-BTC_1m_20171130-20171210.csv", 1500)):
        rows = naive.read_rows(name, limit=limit)
        if "amount" in rows[0]:
            trades = [(int(r["timestamp_ms"]), float(r["amount"])) for r in rows]
        else:
            trades = [(t, v) for t, _, v in naive.replay_ticks(rows)]
        evals = sorted({t for t, _ in trades} | {t + 7_000 for t, _ in trades[::5]})
        assert _check_volume(trades, evals) > 500


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 500), min_size=1, max_size=60), st.integers(1, 12))
def test_candle_volume_surge_matches_naive(vols, n):
    surge = CandleVolumeSurge(n)
    seen = []
    for v in vols:
        surge.on_candle(60, float(v))
        seen.append(float(v))
        assert naive.close_enough(surge.value(0), naive.candle_volume_surge(seen, n))
    surge.on_candle(300, 1e9)  # another timeframe is ignored
    assert naive.close_enough(surge.value(0), naive.candle_volume_surge(seen, n))


def test_rsi_step_example_and_flat_market():
    rsi = Rsi(period=14)
    wilder = rsi._wilder  # seeded: strategy.md §2.6 step
    wilder._gain, wilder._loss, wilder._seed, wilder._last = 0.60, 0.20, None, 1.0
    rsi.on_candle(60, 1.9)
    assert rsi.value(0) == pytest.approx(76.99, abs=0.01)
    flat = Rsi(period=3)
    for _ in range(5):
        flat.on_candle(60, 1.0)
    assert flat.value(0) == 50.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.5, 2.0, allow_nan=False), min_size=1, max_size=80), st.integers(2, 20))
def test_rsi_matches_naive_on_random_closes(closes, period):
    rsi = Rsi(period=period)
    for k, c in enumerate(closes):
        rsi.on_candle(60, c)
        assert naive.close_enough(rsi.value(0), naive.rsi(closes[: k + 1], period))


def test_rsi_matches_naive_on_real_closes():
    name = "ftx_BTC-PERP_1m_20211231-20220201.csv"
    closes = [float(r["close"]) for r in naive.read_rows(name, limit=600)]
    rsi = Rsi()
    for k, c in enumerate(closes):
        rsi.on_candle(60, c)
        if k % 25 == 0 or k == len(closes) - 1:
            assert naive.close_enough(rsi.value(0), naive.rsi(closes[: k + 1]))
    assert rsi.value(0) is not None


def test_spread_example_staleness_and_bad_books():
    sp = Spread(max_age_s=5)
    assert sp.value(T0) is None
    sp.on_book(T0, 1.0790, 1.0812)
    assert sp.value(T0 + 5_000) == pytest.approx(0.204, abs=0.0005)
    assert sp.value(T0 + 5_001) is None  # older than max_age_s
    for bid, ask in ((1.0, 1.0), (1.1, 1.0), (0.0, 1.0), (math.nan, 1.0)):
        sp.on_book(T0, bid, ask)
        assert sp.value(T0) is None


def test_unrealized_pnl_examples_and_undefined_without_position():
    assert unrealized_pnl_pct(Side.SHORT, 1.07, 0.85) == pytest.approx(20.56, abs=0.005)
    assert unrealized_pnl_pct(Side.SHORT, 1.07, 1.1235) == pytest.approx(-5.0)
    assert unrealized_pnl_pct(Side.LONG, 1.07, 1.1235) == pytest.approx(5.0)
    assert unrealized_pnl_pct(Side.SHORT, None, 1.0) is None


def test_momentum_reversal_examples():
    assert momentum_reversal(0.20, 0.80) == pytest.approx(-75)
    assert momentum_reversal(-0.40, 0.80) == pytest.approx(-150)
    assert momentum_reversal(0.2, 0.01) is None  # peak below min_peak
    assert momentum_reversal(0.2, None) is None  # no signal


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-2, 2, allow_nan=False)), min_size=1, max_size=50))
def test_running_peak_matches_naive_max(velocities):
    peak = None
    for k, v in enumerate(velocities):
        peak = next_peak(peak, v)
        seen = [x for x in velocities[: k + 1] if x is not None]
        assert peak == (max(seen) if seen else None)
        want = None if v is None or not seen or max(seen) < 0.05 else (v - max(seen)) / max(seen) * 100
        assert naive.close_enough(momentum_reversal(v, peak), want)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8_000), st.floats(0.0, 3.0), st.floats(0.0, 0.1), st.booleans()), min_size=1, max_size=40))
def test_spread_matches_naive_on_random_books(items):
    sp, t, book = Spread(max_age_s=5), T0, None
    for dt, bid, width, new_book in items:
        t += dt
        if new_book:
            sp.on_book(t, bid, bid + width)
            book = (t, bid, bid + width)
        assert naive.close_enough(sp.value(t + dt // 2), naive.spread(book, t + dt // 2))


def test_spread_on_replayed_books_of_real_data():
    name = "bittrex_NXT-BTC_1m_20171130-20171210.csv"
    sp = Spread()
    for t, price, _ in naive.replay_ticks(naive.read_rows(name, limit=500)):
        book = (t, price * 0.9995, price * 1.0005)
        sp.on_book(*book)
        for now in (t, t + 5_000, t + 6_000):
            assert naive.close_enough(sp.value(now), naive.spread(book, now))


@settings(max_examples=50, deadline=None)
@given(st.sampled_from([Side.LONG, Side.SHORT]), st.one_of(st.none(), st.floats(0.001, 1e5)), st.floats(0.001, 1e5))
def test_unrealized_pnl_matches_naive(side, entry, price):
    assert naive.close_enough(unrealized_pnl_pct(side, entry, price), naive.pnl(side.sign, entry, price))


def test_candle_volume_surge_on_real_candles():
    name = "bittrex_BCC-BTC_1m_20171104-20171118.csv"
    surge, vols = CandleVolumeSurge(10), []
    for row in naive.read_rows(name, limit=3000):
        vols.append(float(row["volume"]))
        surge.on_candle(60, vols[-1])
        assert naive.close_enough(surge.value(0), naive.candle_volume_surge(vols, 10))
    assert surge.value(0) is not None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 4000)), min_size=1, max_size=60))
def test_volume_surge_read_every_second_between_trades_is_the_uncached_value_bit_for_bit(items):
    items = [(15, 100)] * 45 + items  # (11 minutes of history first: the values are defined)
    log = EventLog(Kind.POINT)
    surge, fresh = VolumeSurge(log), VolumeSurge(log)  # `fresh` forgets its cache before each read
    t, hits = T0, 0
    for gap_s, qty in items:
        t += gap_s * 1000
        log.add(t, qty * 0.25)
        for now in range(t, t + gap_s * 1000, 1000):  # every second until the next trade
            log.advance(now)
            cached = surge._seen_version == log.version
            fresh._seen_version = -1
            got, want = surge.value(now), fresh.value(now)
            assert got == want or (got is None and want is None), (now, got, want)
            hits += cached and got is not None
    assert hits > 0  # the cache was read where nothing moved - and gave the same bits
