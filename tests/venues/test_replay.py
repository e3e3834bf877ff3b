"""Replay feed and candle files: documented tick order, pacing on the injected clock, clear data errors."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from tests.conftest import settle
from tui_trader.domain.errors import DataError
from tui_trader.domain.events import BookTick, CandleClosed, FeedStateChanged, MarkPriceTick, PositionChanged, TradeTick
from tui_trader.domain.models import Position, Side
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock
from tui_trader.venues.candle_files import Candle, read_candles, symbol_from_filename
from tui_trader.venues.replay import ReplayFeed, bundled_data_path, candle_ticks


CSV = """timestamp_ms,open,high,low,close,volume
60000,10,12,9,11,40
120000,11,11.5,8,9,80
"""


def write_csv(tmp_path, text=CSV, name="bittrex_ABC-BTC_1m_x.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_tick_order_rising_and_falling():
    assert candle_ticks(Candle(0, 10, 12, 9, 11, 0)) == (10, 9, 12, 11)  # up candle: low first
    assert candle_ticks(Candle(0, 11, 11.5, 8, 9, 0)) == (11, 11.5, 8, 9)  # down candle: high first
    assert candle_ticks(Candle(0, 10, 12, 9, 11, 0), 1) == (11,)


def test_symbol_from_filename():
    assert symbol_from_filename(Path("bittrex_NXT-BTC_1m_20171130.csv.gz")) == "NXT_BTC"
    assert symbol_from_filename(Path("ftx_BTC-PERP_1m.csv")) == "BTC_PERP"
    assert symbol_from_filename(Path("xrp-usdt-perp_5m_20211115-20211121.csv")) == "XRP_USDT_PERP"
    # MEXC's own BASE_QUOTE names (kline JSON saved per month): a date is not a pair
    assert symbol_from_filename(Path("mexc_BTC_USDT_2024-01.json")) == "BTC_USDT"
    assert symbol_from_filename(Path("eth_usdt_2024-02-01.csv.gz")) == "ETH_USDT"
    assert symbol_from_filename(Path("BTC_USDT.json")) == "BTC_USDT"
    assert symbol_from_filename(Path("mexc_ETH_BTC_1m.csv")) == "ETH_BTC"
    assert symbol_from_filename(Path("my-data.csv")) == "MY_DATA"
    assert symbol_from_filename(Path("prices_2024-01.csv")) == "PRICES_2024-01"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("time,open,high,low,close\n1,1,1,1,1\n", ":1: header is"),
        ("timestamp_ms,open,high,low,close,volume\n1,1,1,1\n", ":2: expected 6 fields, got 4"),
        ("timestamp_ms,open,high,low,close,volume\n1,1,abc,1,1,1\n", ":2: field 'high' = 'abc' is not a number"),
        ("timestamp_ms,open,high,low,close,volume\nx,1,1,1,1,1\n", ":2: field 'timestamp_ms' = 'x' is not an integer"),
        ("timestamp_ms,open,high,low,close,volume\n1,1,1,1,1,1\n1,1,1,1,1,1\n", ":3: timestamp 1 is not after"),
        ("timestamp_ms,open,high,low,close,volume\n1,5,4,3,5,1\n", ":2: inconsistent candle"),
        ("timestamp_ms,open,high,low,close,volume\n1,1,1,1,nan,1\n", ":2: field 'close' = 'nan' must be a finite"),
        ("timestamp_ms,open,high,low,close,volume\n1,1,1,1,1,-2\n", ":2: field 'volume' = '-2' must be a finite"),
        ("timestamp_ms,open,high,low,close,volume\n1,1,inf,1,1,1\n", ":2: field 'high' = 'inf' must be a finite"),
        ("timestamp_ms,open,high,low,close\n1,1,1,1,1\n\n2,1,2,1,1\n3,1,1,x,1\n", ":5: field 'low' = 'x' is not a number"),
    ],
)
def test_bad_csv_names_file_line_and_field(tmp_path, text, fragment):
    p = write_csv(tmp_path, text)
    with pytest.raises(DataError) as err:
        list(read_candles(p))
    assert str(p) in str(err.value) and fragment in str(err.value)


def test_csv_accepts_crlf_blank_lines_and_no_volume_column(tmp_path):
    p = write_csv(tmp_path, "timestamp_ms,open,high,low,close\r\n60000,1,2,0.5,1.5\r\n\r\n120000, 1.5 ,2,1,2\r\n")
    assert list(read_candles(p)) == [Candle(60_000, 1.0, 2.0, 0.5, 1.5, 0.0), Candle(120_000, 1.5, 2.0, 1.0, 2.0, 0.0)]


def test_mexc_kline_json_and_gzip(tmp_path):
    doc = {"success": True, "code": 0, "data": {"time": [60, 120], "open": [1, 2], "high": [2, 3], "low": [0.5, 1.5], "close": [2, 2.5], "vol": [10, 20]}}
    p = tmp_path / "k.json"
    p.write_text(json.dumps(doc))
    assert [c.ts_ms for c in read_candles(p)] == [60_000, 120_000]
    gz = tmp_path / "c.csv.gz"
    gz.write_bytes(gzip.compress(CSV.encode()))
    assert len(list(read_candles(gz))) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("<html>502</html>")
    with pytest.raises(DataError, match="not valid JSON"):
        list(read_candles(bad))
    refused = tmp_path / "refused.json"  # what the API answers for an unknown contract, saved as if klines
    refused.write_text(json.dumps({"success": False, "code": 1001, "message": "contract not exist"}))
    with pytest.raises(DataError, match=r"refused.json: an error reply from MEXC \(code 1001: contract not exist\), not klines"):
        list(read_candles(refused))
    for field, value in (("high", 0.1), ("low", float("nan")), ("vol", -1)):  # checked as a CSV row is
        broken = json.loads(json.dumps(doc))
        broken["data"][field][1] = value
        p.write_text(json.dumps(broken))
        with pytest.raises(DataError, match=r"k.json: bar 1 \(time 120\) is not a candle"):
            list(read_candles(p))


def test_bundled_sample_is_real_data_and_small():
    path = bundled_data_path()
    assert path.stat().st_size < 2_000_000
    candles = list(read_candles(path))
    assert len(candles) == 14_323  # every row of the source file
    digest = hashlib.sha256()
    for c in candles:
        digest.update(repr(tuple(c)).encode())
    # the candles of the original recording bittrex_NXT-BTC_1m_20171130-20171210.csv, hashed once: checked on every clone
    assert digest.hexdigest() == "0c79ae659fa68119a533bfceb120d2738f49a6c207044efdf78a17a9c7a25547"


async def test_replay_publishes_live_event_types_in_order(tmp_path):
    bus, clock = EventBus(), SimClock(0)
    events = []
    bus.subscribe(events.append)
    feed = ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, spread_bps=20)
    await feed.run()
    trades = [e for e in events if isinstance(e, TradeTick)]
    assert [(e.ts_ms, e.price) for e in trades] == [
        (60_000, 10), (75_000, 9), (90_000, 12), (105_000, 11),
        (120_000, 11), (135_000, 11.5), (150_000, 8), (165_000, 9),
    ]
    assert all(e.symbol == "ABC_BTC" for e in trades)
    assert trades[0].qty == pytest.approx(10.0)  # volume split over 4 ticks
    marks = [e for e in events if isinstance(e, MarkPriceTick)]
    books = [e for e in events if isinstance(e, BookTick)]
    assert len(marks) == len(books) == 8
    assert books[0].bid == pytest.approx(10 * (1 - 0.001)) and books[0].ask == pytest.approx(10 * 1.001)
    candles = [e for e in events if isinstance(e, CandleClosed)]
    assert [(c.ts_ms, c.close) for c in candles] == [(120_000, 11), (180_000, 9)]
    states = [e.state for e in events if isinstance(e, FeedStateChanged)]
    assert states == ["replaying", "finished"]
    assert feed.cursor_ms == 120_000


async def test_replay_paces_on_the_clock_at_the_given_speed(tmp_path):
    bus, clock = EventBus(), SimClock(1_000_000)
    trades = []
    bus.subscribe(trades.append, [TradeTick])
    feed = ReplayFeed(bus, clock, write_csv(tmp_path), speed=60)  # one 15 s step = 0.25 s
    task = asyncio.create_task(feed.run())
    await settle()
    assert len(trades) == 1
    clock.advance(0.24)
    await settle()
    assert len(trades) == 1
    clock.advance(0.01)
    await settle()
    assert len(trades) == 2
    clock.advance(10)
    await settle(50)
    assert len(trades) == 8
    await task


async def test_replay_resumes_after_cursor(tmp_path):
    bus, clock = EventBus(), SimClock(0)
    trades = []
    bus.subscribe(trades.append, [TradeTick])
    await ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, start_after_ms=60_000).run()
    assert trades[0].ts_ms == 120_000 and len(trades) == 4


async def test_replay_moves_the_data_clock_before_each_tick(tmp_path):
    bus, pacer, data = EventBus(), SimClock(0), SimClock(0)
    seen = []
    bus.subscribe(lambda e: seen.append((e.ts_ms, data.now_ms())), [TradeTick, CandleClosed])
    fired = []
    data.call_later(100, lambda: fired.append(data.now_ms()))  # due at 100 000 ms data time
    await ReplayFeed(bus, pacer, write_csv(tmp_path), speed=0, data_clock=data).run()
    assert all(ts == now for ts, now in seen)
    assert fired == [100_000]


def test_extremes_are_pessimistic_for_the_open_position():
    up, down = Candle(0, 10, 12, 9, 11, 0), Candle(0, 11, 11.5, 8, 9, 0)
    for candle in (up, down):
        assert candle_ticks(candle, 4, Side.SHORT)[1:3] == (candle.high, candle.low)  # short: high first
        assert candle_ticks(candle, 4, Side.LONG)[1:3] == (candle.low, candle.high)  # long: low first
    assert candle_ticks(up, 3, Side.SHORT) == (10, 12, 11)


def _flat_or_short(symbol, side, contracts):
    return PositionChanged(0, Position(symbol, side, D(contracts), D(1), D(10), 3))


async def test_replay_reads_the_position_side_from_the_bus_when_the_first_extreme_is_due(tmp_path):
    bus, clock = EventBus(), SimClock(0)
    trades = []

    def on_trade(ev):
        trades.append(ev.price)
        if ev.ts_ms == 60_000:  # a short opens on the first candle's open tick
            bus.publish(_flat_or_short("ABC_BTC", Side.SHORT, 1))
        if ev.ts_ms == 105_000:  # flat again at its close
            bus.publish(_flat_or_short("ABC_BTC", Side.SHORT, 0))

    bus.subscribe(on_trade, [TradeTick])
    await ReplayFeed(bus, clock, write_csv(tmp_path), speed=0).run()
    # rising first candle replayed high (12) before low (9) for the short; the second, flat, conventionally
    assert trades == [10, 12, 9, 11, 11, 11.5, 8, 9]


async def test_replay_position_side_callback_overrides_the_bus(tmp_path):
    bus, clock = EventBus(), SimClock(0)
    trades = []
    bus.subscribe(lambda e: trades.append(e.price), [TradeTick])
    await ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, position_side=lambda s: Side.LONG).run()
    assert trades == [10, 9, 12, 11, 11, 8, 11.5, 9]  # long: low first in both candles


async def test_replay_merges_several_files_in_time_order(tmp_path):
    a = write_csv(tmp_path, name="x_AAA-USDT_1m.csv")
    b = write_csv(tmp_path, "timestamp_ms,open,high,low,close,volume\n90000,5,6,4,5.5,8\n", name="x_BBB-USDT_1m.csv")
    bus, clock, data = EventBus(), SimClock(0), SimClock(0)
    seen = []
    bus.subscribe(lambda e: seen.append((e.ts_ms, e.symbol, type(e).__name__)), [TradeTick, CandleClosed])
    feed = ReplayFeed(bus, clock, sources=[(a, None), (b, None)], speed=0, data_clock=data, until_ms=120_001)
    await feed.run()
    times = [t for t, _, _ in seen]
    assert times == sorted(times) and data.now_ms() == 180_000
    assert [s for _, s, _ in seen].count("BBB_USDT") == 5 and feed.candles_published == 3
    assert (120_000, "AAA_USDT", "CandleClosed") in seen
    assert seen.index((120_000, "AAA_USDT", "CandleClosed")) < seen.index((120_000, "AAA_USDT", "TradeTick"))


async def test_replay_until_stops_before_the_first_candle_at_or_after_it(tmp_path):
    bus, clock = EventBus(), SimClock(0)
    trades = []
    bus.subscribe(trades.append, [TradeTick])
    await ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, until_ms=120_000).run()
    assert [t.ts_ms for t in trades] == [60_000, 75_000, 90_000, 105_000]
