"""bench/bench_reference.py: the trade list every engine of `bench/compare_engines.py` must reproduce.

The known result of the bench spec (`bench_strategy.md`: the BCC/BTC recording tiled to 1,000,000
bars gives 2,912 trades, 1,872 SL and 1,040 TP) on the full recording the bench reads (the copy the package ships, tui_trader/data;
tests/data holds only its first 3,000 bars, which make no trade), then every rule on hand-built
bars: 70 flat bars at 100 (volume 1), then a pump bar closing at 108 on volume 100 - bar 70
signals (pump 8 % over the 60-bar low, surge 20.8) and the short enters at 108: SL 108.54, TP 105.84.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FULL_BCC = ROOT / "tui_trader" / "data" / "bittrex_BCC-BTC_1m_20171104-20171118.csv.gz"
SLICE_BCC = ROOT / "tests" / "data" / "bittrex_BCC-BTC_1m_20171104-20171118.csv.gz"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_reference", ROOT / "bench" / "bench_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _load()

T0 = 1_600_000_000_000
P = 108.0
SL, TP = P * 1.005, P * 0.98
PUMP = (100.0, P, 100.0, P, 100.0)  # open, high, low, close, volume of bar 70
FLAT = (P, P, P, P, 1.0)


def bars(*tail: tuple[float, ...], warmup_volume: float = 1.0) -> dict[str, np.ndarray]:
    rows = [(100.0, 100.0, 100.0, 100.0, warmup_volume)] * 70 + list(tail)
    table = np.array(rows, dtype=np.float64)
    out: dict[str, np.ndarray] = {name: table[:, k] for k, name in enumerate(ref.FIELDS[1:])}
    out["ts"] = T0 + 60_000 * np.arange(len(rows), dtype=np.int64)
    return out


def fills(*tail: tuple[float, ...], **kw: float) -> list[tuple[int, int, str, float]]:
    return [(f.entry_bar, f.exit_bar, f.reason, f.exit_price) for f in ref.reference_fills(bars(*tail, **kw))]


# ---- the spec's known result ----


def test_bcc_tiled_to_a_million_bars_gives_the_specs_trades():
    trades = ref.reference_trades(ref.tile(ref.load_csv_columns(FULL_BCC), 1_000_000))
    assert len(trades) == 2912
    assert ref.reasons(trades) == {"SL": 1872, "TP": 1040, "time": 0}
    assert ref.fingerprint(trades) == "ded0cb197ca4"  # measured; backtesting.py gives the same list


# ---- data ----


def test_load_csv_columns_reads_the_gzip_slice():
    cols = ref.load_csv_columns(SLICE_BCC)
    assert len(cols["ts"]) == 3000 and cols["ts"].dtype == np.int64
    assert cols["ts"][0] == 1_509_836_520_000
    assert [cols[k][0] for k in ref.FIELDS[1:]] == [0.08329697, 0.08343516, 0.08329697, 0.08343516, 0.8388509]


def test_tile_repeats_the_bars_and_retimes_them_a_minute_apart():
    cols = ref.load_csv_columns(SLICE_BCC)
    tiled = ref.tile(cols, 7_500)
    assert tiled["ts"].dtype == np.int64 and all(tiled[k].dtype == np.float64 for k in ref.FIELDS[1:])
    assert (tiled["ts"] == cols["ts"][0] + 60_000 * np.arange(7_500)).all()
    for k in ref.FIELDS[1:]:
        assert (tiled[k][:3000] == cols[k]).all() and (tiled[k][3000:6000] == cols[k]).all()
        assert (tiled[k][6000:] == cols[k][:1500]).all()


def test_write_tiled_csv_reads_back_bit_for_bit(tmp_path):
    tiled = ref.tile(ref.load_csv_columns(SLICE_BCC), 4_000)
    path = tmp_path / "tiled.csv"
    ref.write_tiled_csv(tiled, path)
    back = ref.load_csv_columns(path)
    for k in ref.FIELDS:
        assert back[k].tobytes() == tiled[k].tobytes()


def test_fingerprint_is_md5_of_entry_exit_pairs():
    trades = [(70, 71, "SL"), (72, 192, "time")]
    assert ref.fingerprint(trades) == hashlib.md5(b"70,71;72,192;").hexdigest()[:12]


# ---- the rules, on hand-built bars ----


def test_the_pump_bar_signals_and_enters_at_its_close():
    sig = ref.signal(bars(PUMP, FLAT))
    assert sig[70] and not sig[:70].any()


def test_stop_wins_when_both_stop_and_target_touch():
    assert fills(PUMP, (P, 109.0, 105.0, 107.0, 1.0)) == [(70, 71, "SL", SL)]


def test_target_exits_at_the_target():
    assert fills(PUMP, (P, P, 105.0, 106.0, 1.0)) == [(70, 71, "TP", TP)]


def test_a_gap_open_beyond_the_stop_exits_at_the_open():
    assert fills(PUMP, (110.0, 111.0, 109.5, 110.0, 1.0)) == [(70, 71, "SL", 110.0)]


def test_a_gap_open_beyond_the_target_exits_at_the_open():
    assert fills(PUMP, (105.0, 105.5, 104.0, 105.0, 1.0)) == [(70, 71, "TP", 105.0)]


def test_no_entry_on_a_bar_that_exited_the_next_bar_may_enter():
    # bar 71 stops out and still signals (pump 8 %, the surge bar in its 5); bar 72 signals too
    tail = [PUMP, (P, 109.0, P, P, 1.0), *[FLAT] * 130]
    assert ref.signal(bars(*tail))[71]
    assert fills(*tail) == [(70, 71, "SL", SL), (72, 192, "time", P)]


def test_time_stop_at_exactly_120_bars_at_the_close():
    assert fills(PUMP, *[FLAT] * 120) == [(70, 190, "time", P)]  # bar 190 = 70 + 120, the last bar


def test_a_position_still_open_at_the_end_is_not_counted():
    assert fills(PUMP, *[FLAT] * 119) == []  # bar 189 is the last: 119 bars held


def test_zero_volume_base_surge_is_met_exactly_when_the_recent_volume_is_positive():
    for x, met in ((2.5, True), (0.0, False)):
        surge = ref.vol_surge(np.array([0.0] * 64 + [x]))
        assert np.isnan(surge[:64]).all()
        assert bool(surge[64] >= 3.0) is met
    # 60 bars of zero volume before: the pump on volume 100 is met; on volume 0 it is not, and the
    # next bar (still 8 % up, volume 1) is
    assert fills(PUMP, *[FLAT] * 120, warmup_volume=0.0) == [(70, 190, "time", P)]
    quiet_pump = (100.0, P, 100.0, P, 0.0)
    assert not ref.signal(bars(quiet_pump, FLAT, warmup_volume=0.0))[70]
    assert fills(quiet_pump, *[FLAT] * 121, warmup_volume=0.0) == [(71, 191, "time", P)]


@pytest.mark.parametrize("t", [63, 64])
def test_no_signal_before_bar_64(t: int) -> None:
    rows = [(100.0, 100.0, 100.0, 100.0, 1.0)] * t + [PUMP]
    cols: dict[str, np.ndarray] = {name: np.array([r[k] for r in rows]) for k, name in enumerate(ref.FIELDS[1:])}
    cols["ts"] = T0 + 60_000 * np.arange(len(rows))
    assert bool(ref.signal(cols)[t]) is (t >= 64)
