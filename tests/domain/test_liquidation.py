"""Liquidation maths: the worked examples of the reference, to the cent, plus properties."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain.liquidation import (
    Band,
    LiqForm,
    autoclose_trigger_price,
    band_edge_price,
    band_edge_price_fast,
    band_for,
    buffered_liquidation_price,
    buffered_liquidation_price_fast,
    distance_pct,
    distance_pct_exact,
    liquidation_price,
    liquidation_price_for_leverage,
    maintenance_margin_rate,
    margin_ratio_pct,
    runway_used,
)
from tui_trader.domain.models import Instrument, Side
from tui_trader.domain.money import cents

S, L = Side.SHORT, Side.LONG
M04 = D("0.004")


@pytest.mark.parametrize(
    "side, entry, lev, mmr, fee, form, expected",
    [
        # §6.1 BTC short 10x
        (S, "60000", 10, M04, "0", LiqForm.MARK, "65737.05"),
        (S, "60000", 10, M04, "0", LiqForm.ENTRY, "65760.00"),
        (S, "60000", 10, M04, "0.0006", LiqForm.MARK, "65697.79"),
        # §6.2 BTC short 100x
        (S, "60000", 100, M04, "0", LiqForm.MARK, "60358.57"),
        (S, "60000", 100, M04, "0", LiqForm.ENTRY, "60360.00"),
        (S, "60000", 100, M04, "0.0006", LiqForm.MARK, "60322.52"),
        # §6.4 BTC long 10x
        (L, "60000", 10, M04, "0", LiqForm.MARK, "54216.87"),
        (L, "60000", 10, M04, "0", LiqForm.ENTRY, "54240.00"),
    ],
)
def test_reference_examples_to_the_cent(side, entry, lev, mmr, fee, form, expected):
    liq = liquidation_price_for_leverage(side, D(entry), lev, mmr, D(fee), form)
    assert cents(liq) == D(expected)


def test_added_margin_moves_liquidation_away():
    # §6.1: change_margin ADD 100 USDT -> M = 6 100 for 1 BTC
    liq = liquidation_price(S, D(60000), D(1), D(6100), M04, D(0), LiqForm.MARK)
    assert cents(liq) == D("65836.65")


def test_default_pump_short_example():
    # §6.3: E 1.07, 3x, m 1 %, f 0.06 % -> 1.4117 (mark form)
    liq = liquidation_price_for_leverage(S, D("1.07"), 3, D("0.01"), D("0.0006"), LiqForm.MARK)
    assert liq.quantize(D("0.0001")) == D("1.4117")


def test_eth_open_positions_example_matches_exchange():
    # §6.4: holdVol 1 x 0.01 ETH, E 1217.3, im 0.1290338, m 0.5 %, f 0.06 % -> both forms round to 1211.2
    for form in (LiqForm.MARK, LiqForm.ENTRY):
        liq = liquidation_price(L, D("1217.3"), D("0.01"), D("0.1290338"), D("0.005"), D("0.0006"), form)
        assert liq.quantize(D("0.1")) == D("1211.2")


def test_conservative_form_is_nearer_to_price():
    short = liquidation_price_for_leverage(S, D(60000), 10, M04, form=LiqForm.CONSERVATIVE)
    long = liquidation_price_for_leverage(L, D(60000), 10, M04, form=LiqForm.CONSERVATIVE)
    assert cents(short) == D("65737.05")  # mark form is lower for a short
    assert cents(long) == D("54240.00")  # entry form is higher for a long


def test_one_x_short_is_liquidatable_one_x_long_is_not():
    assert liquidation_price_for_leverage(L, D(100), 1, M04, form=LiqForm.MARK) is None
    short = liquidation_price_for_leverage(S, D(100), 1, M04, form=LiqForm.MARK)
    assert short is not None and D(199) < short < D(200)


def test_distance_runway_margin_ratio_section_1():
    liq = D("65737.05")
    assert distance_pct_exact(S, D(63000), liq).quantize(D("0.01")) == D("4.34")
    assert runway_used(D(60000), D(63000), liq).quantize(D("0.001")) == D("0.523")
    ratio = margin_ratio_pct(D(63000) * M04, D(0), D(6000), D(-3000))
    assert ratio.quantize(D("0.1")) == D("8.4")


def test_distance_sign_convention():
    assert distance_pct(S, 100.0, 110.0) == pytest.approx(10.0)
    assert distance_pct(L, 100.0, 90.0) == pytest.approx(10.0)
    assert distance_pct(S, 111.0, 110.0) < 0  # through the liquidation price
    assert distance_pct(L, 89.0, 90.0) < 0
    assert distance_pct(L, 100.0, None) == float("inf")


@pytest.mark.parametrize(
    "lev, short_d, long_d",
    [(1, "99.2", "100"), (2, "49.4", "49.8"), (3, "32.8", "33.1"), (5, "19.5", "19.7"), (10, "9.56", "9.64"), (20, "4.58", "4.62"), (50, "1.59", "1.61"), (100, "0.60", "0.60")],
)
def test_distance_at_entry_table(lev, short_d, long_d):
    e = D(60000)
    s = distance_pct_exact(S, e, liquidation_price_for_leverage(S, e, lev, M04, form=LiqForm.MARK))
    q = D(short_d).as_tuple().exponent
    assert s.quantize(D(1).scaleb(q)) == D(short_d)
    liq_long = liquidation_price_for_leverage(L, e, lev, M04, form=LiqForm.MARK)
    if liq_long is None:
        assert long_d == "100"
    else:
        got = distance_pct_exact(L, e, liq_long)
        assert got.quantize(D(1).scaleb(D(long_d).as_tuple().exponent)) == D(long_d)


def test_buffer_and_autoclose_triggers():
    # §7: buffered 10x short, b = 0.05 -> 65 450.20
    assert cents(buffered_liquidation_price(S, D(60000), D("65737.05"), D("0.05"))) == D("65450.20")
    # §7 pump short: runway trigger 1.3263, distance trigger 1.3132 -> the distance one fires first
    liq, e = D("1.4117"), D("1.07")
    t = autoclose_trigger_price(S, e, liq, D("7.5"), D("0.25"))
    assert t.quantize(D("0.0001")) == D("1.3132")
    runway_only = autoclose_trigger_price(S, e, liq, D("0.0001"), D("0.25"))
    assert runway_only.quantize(D("0.0001")) == D("1.3263")
    # §8: 10x short auto-close (7.5 %, b 0.25) at 61 150.75 (from the unrounded liquidation price)
    liq10 = liquidation_price_for_leverage(S, D(60000), 10, M04, form=LiqForm.MARK)
    assert cents(autoclose_trigger_price(S, D(60000), liq10, D("7.5"), D("0.25"))) == D("61150.75")


def test_maintenance_margin_tiers():
    btc = Instrument("BTC_USDT", contract_size=D("0.0001"), maintenance_margin_rate=D("0.004"),
                     risk_base_vol=D(150000), risk_incr_vol=D(150000), risk_incr_mmr=D("0.004"), risk_level_limit=5)
    assert maintenance_margin_rate(btc, D(150000)) == D("0.004")
    assert maintenance_margin_rate(btc, D(200000)) == D("0.008")  # doc example: level 2
    assert maintenance_margin_rate(btc, D(10**9)) == D("0.020")  # capped at level 5


@pytest.mark.parametrize(
    "d, band", [(25, Band.GREEN), (20.01, Band.GREEN), (20, Band.YELLOW), (10, Band.YELLOW), (9.99, Band.RED), (0.01, Band.RED), (0, Band.LIQUIDATED), (-3, Band.LIQUIDATED)]
)
def test_band_edges(d, band):
    assert band_for(d) is band


@settings(max_examples=200, deadline=None)
@given(lev=st.integers(1, 199), entry=st.decimals("0.0001", "100000", places=4), mmr=st.decimals("0.001", "0.05", places=4))
def test_short_liquidation_moves_closer_with_leverage(lev, entry, mmr):
    a = liquidation_price_for_leverage(S, entry, lev, mmr)
    b = liquidation_price_for_leverage(S, entry, lev + 1, mmr)
    assert a is not None and b is not None and b < a
    # and the real liquidation is always nearer than the naive E(1 + 1/L)
    assert a < entry * (1 + D(1) / D(lev))


@settings(max_examples=300, deadline=None)
@given(short=st.booleans(), liq=st.decimals(min_value="0.0001", max_value="1000000", places=4),
       distance=st.decimals(min_value="0", max_value="99.99", places=2))
def test_the_watchdogs_float_band_edge_is_the_decimal_one(short, liq, distance):
    """Issue 19: the watchdog's hot-path float formulas come from domain/liquidation.py and agree with
    the Decimal ones (relative error below 1e-9)."""
    side = Side.SHORT if short else Side.LONG
    exact = band_edge_price(side, liq, distance)
    fast = band_edge_price_fast(short, float(liq), float(distance))
    assert abs(fast - float(exact)) <= 1e-9 * float(exact)  # 1 - d/100 loses digits near 100 % (longs)
    assert abs(distance_pct(side, fast, float(liq)) - float(distance)) < 1e-6  # and inverts distance_pct


@settings(max_examples=300, deadline=None)
@given(short=st.booleans(), price=st.decimals(min_value="0.0001", max_value="1000000", places=4),
       ratio=st.decimals(min_value="0.01", max_value="3", places=4))
def test_the_watchdogs_float_distance_is_the_decimal_one(short, price, ratio):
    """The distance the watchdog compares on every tick (float) against the Decimal one reports use."""
    side = Side.SHORT if short else Side.LONG
    liq = price * ratio
    exact = distance_pct_exact(side, price, liq)
    fast = distance_pct(side, float(price), float(liq))
    assert abs(fast - float(exact)) <= 1e-9 * max(1.0, abs(float(exact)))


@settings(max_examples=300, deadline=None)
@given(short=st.booleans(), entry=st.decimals(min_value="0.0001", max_value="1000000", places=4),
       gap=st.decimals(min_value="0.001", max_value="0.99", places=3),
       buffer=st.decimals(min_value="0", max_value="0.5", places=3))
def test_the_watchdogs_float_runway_trigger_is_the_decimal_one(short, entry, gap, buffer):
    """The runway trigger (liquidation moved toward entry by the buffer) in float against Decimal."""
    side = Side.SHORT if short else Side.LONG
    liq = entry * (1 + gap) if short else entry * (1 - gap)
    exact = buffered_liquidation_price(side, entry, liq, buffer)
    fast = buffered_liquidation_price_fast(short, float(entry), float(liq), float(buffer))
    assert abs(fast - float(exact)) <= 1e-9 * float(exact)
