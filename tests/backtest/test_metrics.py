"""Every metric recomputed independently from the stored trade list and equity curve (floats, by hand)."""

from __future__ import annotations

import math
from decimal import Decimal as D

import pytest

YEAR_S = 365 * 86_400


def test_stored_run_has_every_field(real_run):
    record, result = real_run
    assert record["status"] == "finished" and record["strategy"] == "pump_short" and record["symbols"] == ["NXT_BTC"]
    assert record["date_from_ms"] == 1_512_172_800_000 and record["date_to_ms"] <= 1_512_604_800_000
    assert len(record["trades"]) >= 3 and len(record["equity"]) >= 400
    assert record["params"]["equity_every_ms"] == 900_000 and record["params"]["bars"] == result.bars


def test_every_metric_matches_an_independent_recomputation(real_run):
    record, _ = real_run
    m, every_s = record["metrics"], record["params"]["equity_every_ms"] / 1000
    times = [p[0] / 1000 for p in record["equity"]]
    eq = [float(p[1]) for p in record["equity"]]
    closed = [t for t in record["trades"] if t["exit_ms"] is not None]
    net = [float(t["net_pnl"]) for t in closed]

    years = (times[-1] - times[0]) / YEAR_S
    cagr = ((eq[-1] / eq[0]) ** (1 / years) - 1) * 100
    rets = [eq[i] / eq[i - 1] - 1 for i in range(1, len(eq))]
    mean = sum(rets) / len(rets)
    sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
    down = math.sqrt(sum(min(r, 0) ** 2 for r in rets) / len(rets))
    k = math.sqrt(YEAR_S / every_s)
    peak, peak_t, dd, under_since, longest = eq[0], times[0], 0.0, None, 0.0
    for t, e in zip(times, eq):
        if e >= peak:
            if under_since is not None:
                longest = max(longest, t - peak_t)
            peak, peak_t, under_since = e, t, None
        else:
            under_since = under_since or t
            dd = max(dd, 1 - e / peak)
    if under_since is not None:
        longest = max(longest, times[-1] - peak_t)
    held = sum(min(t["exit_ms"] or record["equity"][-1][0], record["equity"][-1][0]) - t["entry_ms"] for t in record["trades"]) / 1000

    expected = {
        "total_return_pct": (eq[-1] / eq[0] - 1) * 100, "cagr_pct": cagr, "sharpe": mean / sd * k, "sortino": mean / down * k,
        "calmar": cagr / (dd * 100), "max_drawdown_pct": dd * 100, "max_drawdown_duration_s": longest,
        "trades": len(closed), "win_rate_pct": 100 * sum(n > 0 for n in net) / len(net),
        "profit_factor": sum(n for n in net if n > 0) / -sum(n for n in net if n < 0), "expectancy": sum(net) / len(net),
        "avg_trade_duration_s": sum(t["exit_ms"] - t["entry_ms"] for t in closed) / 1000 / len(closed),
        "exposure_pct": 100 * held / (times[-1] - times[0]),  # these trades never overlap (one symbol)
        "liquidations": sum(t["liquidated"] for t in closed),
        "fees_paid": sum(float(t["fees"]) for t in record["trades"]),
        "funding_paid": sum(float(t["funding"]) for t in record["trades"]),
        "net_pnl": eq[-1] - eq[0],
    }  # fmt: skip
    assert set(expected) <= set(m)
    for name, value in expected.items():
        assert float(m[name]) == pytest.approx(value, rel=1e-9, abs=1e-9), name


def test_money_reconciles_exactly(real_run):
    record, result = real_run
    m = record["metrics"]
    assert not result.metrics["open_trades"]  # flat at the end: equity = cash
    assert D(m["net_pnl"]) == sum(D(t["net_pnl"]) for t in record["trades"])
    assert D(m["end_equity"]) == D(m["start_equity"]) + D(m["net_pnl"])
