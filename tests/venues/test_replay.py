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
from tui_trader.domain.events import BookTick, CandleClosed, CandlesClosed, FeedStateChanged, MarkPriceTick, PositionChanged, TradeTick
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


class _Absorber:
    """Takes trades priced <= `limit` (and every book while `books`), like a quiet strategy runner."""

    def __init__(self, bus: EventBus, limit: float, books: bool = True) -> None:
        self.limit, self.books = limit, books
        self.before_step = None
        self.absorbed: list[tuple] = []
        self.echoes: list[tuple] = []  # re-published events announced by the feed

    def absorb_trade(self, symbol, ts_ms, price, qty):
        if price > self.limit:
            return False
        self.absorbed.append(("trade", ts_ms, price))
        return True

    def absorb_book(self, symbol, ts_ms, bid, ask):
        if not self.books:
            return False
        self.absorbed.append(("book", ts_ms))
        return True

    together = False  # take book and trade in one call when both fit?

    def absorb_quiet_tick(self, symbol, ts_ms, price, qty, bid, ask):
        if not (self.together and self.books and price <= self.limit):
            return False
        self.absorbed += [("book", ts_ms), ("trade", ts_ms, price)]
        return True

    def already_has(self, ev):
        self.echoes.append((ev.type, ev.ts_ms))

    whole = False  # take whole candles (cover / absorb_ticks)?
    until = 10**12  # the quiet's end, for `cover`

    def cover(self, symbol, need_ms):
        return (float("-inf"), self.limit, self.until) if self.whole else None

    def absorb_ticks(self, symbol, times, prices, qtys, bid, ask):
        self.absorbed.append(("candles", tuple(times), tuple(prices)))


async def test_fast_path_keeps_absorbed_ticks_off_the_bus_and_hands_on_the_latest(tmp_path):
    """Candle 1 ticks 10, 9, 12, 11; candle 2 ticks 11, 11.5, 8, 9. Trades <= 11 are absorbed."""
    bus, clock = EventBus(), SimClock(0)
    out = bus.subscribe_queue("t", types=[BookTick, TradeTick, MarkPriceTick, CandleClosed])
    absorber = _Absorber(bus, limit=11.0)
    feed = ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, data_clock=clock, absorber=absorber, quiet_gate=lambda: True)
    await feed.run()
    events = [(e.type, e.ts_ms, getattr(e, "price", None)) for e in out.drain()]
    trades = [(ts, p) for kind, ts, p in events if kind == "trade"]
    # 10 and 9 absorbed; 12 is not: the latest absorbed (9 at 75 s) goes out first, as an echo, then 12
    assert trades[:2] == [(75_000, 9.0), (90_000, 12.0)]
    assert ("trade", 75_000) in absorber.echoes and ("trade", 90_000) not in absorber.echoes
    assert ("trade", 60_000, 10.0) in absorber.absorbed and ("trade", 75_000, 9.0) in absorber.absorbed
    assert sum(1 for kind, *_ in events if kind == "candle") == 2  # always published
    # 11.5 (candle 2, second tick) is refused too; after it 8 and 9 are absorbed and stay unpublished...
    assert (135_000, 11.5) in trades and (150_000, 8.0) not in trades
    # ... until something needs them: a step of the absorber publishes them first
    assert feed._absorbed
    absorber.before_step()
    last = [(e.type, e.ts_ms, getattr(e, "price", None)) for e in out.drain()]
    assert ("trade", 165_000, 9.0) in last and ("mark_price", 165_000, 9.0) in last and not feed._absorbed


async def test_fast_path_takes_book_and_trade_together_with_the_same_outcome(tmp_path):
    outcomes = []
    for together in (False, True):
        bus, clock = EventBus(), SimClock(0)
        out = bus.subscribe_queue("t", types=[BookTick, TradeTick, MarkPriceTick, CandleClosed])
        absorber = _Absorber(bus, limit=11.0)
        absorber.together = together
        feed = ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, data_clock=clock, absorber=absorber, quiet_gate=lambda: True)
        await feed.run()
        outcomes.append(([(e.type, e.ts_ms, getattr(e, "price", None)) for e in out.drain()], sorted(absorber.absorbed), dict(feed._absorbed)))
    assert outcomes[0] == outcomes[1]


async def test_fast_path_is_off_while_the_gate_is_closed(tmp_path):
    bus, clock = EventBus(), SimClock(0)
    out = bus.subscribe_queue("t", types=[TradeTick])
    absorber = _Absorber(bus, limit=100.0)
    feed = ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, data_clock=clock, absorber=absorber, quiet_gate=lambda: False)
    await feed.run()
    assert len(out.drain()) == 8 and absorber.absorbed == []


async def test_fast_path_takes_a_whole_candle_when_no_timer_is_due_before_its_close(tmp_path):
    bus, clock = EventBus(), SimClock(0)
    out = bus.subscribe_queue("t", types=[TradeTick, CandleClosed, CandlesClosed])
    absorber = _Absorber(bus, limit=12.0)
    absorber.whole = True
    fired = []
    clock.call_later(130, lambda: fired.append(clock.now_ms()))  # due inside candle 2 (120 .. 180 s)
    feed = ReplayFeed(bus, clock, write_csv(tmp_path), speed=0, data_clock=clock, absorber=absorber, quiet_gate=lambda: True)
    await feed.run()
    # candle 1 (range 9..12) in one piece; candle 2 tick by tick, so the timer fires at its own time
    assert absorber.absorbed[0] == ("candles", (60_000, 75_000, 90_000, 105_000), (10.0, 9.0, 12.0, 11.0))
    assert ("trade", 120_000, 11.0) in absorber.absorbed and fired == [130_000]
    events = [(e.type, e.ts_ms) for e in out.drain()]
    assert events == [("candles", 120_000), ("candle", 180_000)]  # closes always go out; every tick was absorbed
    assert feed._absorbed["ABC_BTC"][1][:2] == (165_000, 9.0)  # the latest trade, held until something needs it
    assert feed.candles_published == 2


STRETCH_CSV = "timestamp_ms,open,high,low,close,volume\n" + "".join(
    f"{60_000 * i},10,{h},9,10,{4 * i}\n" for i, h in enumerate([11, 11, 11, 13, 11, 11, 11, 11], start=1))


async def test_fast_path_takes_consecutive_candles_in_one_stretch_up_to_the_band_and_the_quiet_end(tmp_path):
    """Candles 1-3 and 5-6 stay inside the band (high 11 <= 12), candle 4 breaks it (13), and the
    quiet ends before candle 7 closes: two stretches, each one absorber call and one close event."""
    bus, clock = EventBus(), SimClock(0)
    out = bus.subscribe_queue("t", types=[TradeTick, CandleClosed, CandlesClosed])
    absorber = _Absorber(bus, limit=12.0)
    absorber.whole, absorber.until = True, 7 * 60_000 + 1  # candle 6 closes at 420 s, candle 7 at 480 s
    feed = ReplayFeed(bus, clock, write_csv(tmp_path, STRETCH_CSV), speed=0, data_clock=clock, absorber=absorber, quiet_gate=lambda: True)
    await feed.run()
    stretches = [a for a in absorber.absorbed if a[0] == "candles"]
    assert [len(times) for _, times, _ in stretches] == [12, 8]
    assert stretches[0][1][:5] == (60_000, 75_000, 90_000, 105_000, 120_000)
    assert stretches[1][1][0] == 300_000 and stretches[1][2][:4] == (10.0, 9.0, 11.0, 10.0)
    drained = out.drain()
    closes = [(e.type, e.ts_ms) for e in drained if e.type in ("candle", "candles")]
    assert closes == [("candles", 240_000), ("candle", 300_000), ("candles", 420_000), ("candle", 480_000), ("candle", 540_000)]
    first = next(e for e in drained if isinstance(e, CandlesClosed))
    assert first.interval_s == 60 and [c[0] for c in first.candles] == [60_000, 120_000, 180_000]
    assert [c[5] for c in first.candles] == [4.0, 8.0, 12.0]  # volumes ride along (candle-driven indicators)
    assert feed.candles_published == 8 and feed.cursor_ms == 480_000
    assert clock.now_ms() >= 540_000




async def test_two_sources_go_over_in_slots_only_while_both_candles_open_together(tmp_path):
    """AAA and BBB open candles at the same instants (slots), except BBB skips 240 s and opens
    one at 330 s instead: a tick of it falls inside the 300 s slot, so that slot goes tick by
    tick. Closes come out per run of one symbol, in the order they would have come."""
    a = write_csv(tmp_path, "timestamp_ms,open,high,low,close,volume\n"
                  + "".join(f"{60_000 * i},10,11,9,10,1\n" for i in range(1, 7)), "x_AAA-USDT_1m.csv")
    b = write_csv(tmp_path, "timestamp_ms,open,high,low,close,volume\n"
                  + "".join(f"{t},10,11,9,10,1\n" for t in (60_000, 120_000, 180_000, 330_000, 390_000, 450_000, 510_000)), "x_BBB-USDT_1m.csv")
    bus, clock = EventBus(), SimClock(0)
    out = bus.subscribe_queue("t", types=[TradeTick, CandleClosed, CandlesClosed])
    absorber = _Absorber(bus, limit=12.0)
    absorber.whole = True
    feed = ReplayFeed(bus, clock, sources=[(a, None), (b, None)], speed=0, data_clock=clock, absorber=absorber, quiet_gate=lambda: True)
    await feed.run()
    stretches = [(times[0], len(times)) for kind, times, _ in (x for x in absorber.absorbed if x[0] == "candles")]
    # slots at 60, 120 and 180 s for both (BBB: 3 candles), AAA's 240 s candle alone (BBB's next
    # event is at 330 s: none inside that minute); from 300 to 450 s the two overlap within a
    # minute: tick by tick; BBB's last two candles alone (AAA has ended)
    assert sorted(stretches) == [(60_000, 12), (60_000, 16), (450_000, 8)]
    assert ("trade", 300_000, 10.0) in absorber.absorbed and ("trade", 330_000, 10.0) in absorber.absorbed
    events = [e for e in out.drain() if isinstance(e, (CandleClosed, CandlesClosed))]
    closes = [(e.ts_ms, e.symbol) for e in events if isinstance(e, CandleClosed)]
    closes += [(c[0] + 60_000, e.symbol) for e in events if isinstance(e, CandlesClosed) for c in e.candles]
    firsts = [(e.ts_ms if isinstance(e, CandleClosed) else e.candles[0][0] + 60_000) for e in events]
    assert firsts == sorted(firsts)  # the closes come in time order, runs of one symbol each
    assert sorted(closes) == sorted([(60_000 * i + 60_000, "AAA_USDT") for i in range(1, 7)]
                                    + [(t + 60_000, "BBB_USDT") for t in (60_000, 120_000, 180_000, 330_000, 390_000, 450_000, 510_000)])
    assert feed.candles_published == 13


async def test_aligned_sources_go_over_in_slots_closes_first_at_each_instant(tmp_path):
    """Two files on the same minute grid: at each instant both previous candles close before
    either next one opens, so every candle of both goes in a slot."""
    rows = "timestamp_ms,open,high,low,close,volume\n" + "".join(f"{60_000 * i},10,11,9,10,1\n" for i in range(1, 7))
    a, b = write_csv(tmp_path, rows, "x_AAA-USDT_1m.csv"), write_csv(tmp_path, rows, "x_BBB-USDT_1m.csv")
    seen = []
    for absorbing in (False, True):
        bus, clock = EventBus(), SimClock(0)
        out = bus.subscribe_queue("t", types=[CandleClosed, CandlesClosed])
        absorber = _Absorber(bus, limit=12.0)
        absorber.whole = absorbing
        feed = ReplayFeed(bus, clock, sources=[(a, None), (b, None)], speed=0, data_clock=clock, absorber=absorber, quiet_gate=lambda: True)
        await feed.run()
        closes = [(e.ts_ms, e.symbol) if isinstance(e, CandleClosed) else (c[0] + 60_000, e.symbol)
                  for e in out.drain() for c in (e.candles if isinstance(e, CandlesClosed) else [None])]
        seen.append((closes, absorber))
    (plain, _), (fast, absorber) = seen
    assert fast == plain == sorted(plain)  # the same closes in the same order: per instant AAA then BBB
    assert sorted(len(times) for kind, times, _ in (x for x in absorber.absorbed if x[0] == "candles")) == [24, 24]
