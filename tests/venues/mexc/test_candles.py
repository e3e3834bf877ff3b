"""History at start (`HistoryWarmup`): paging past MEXC's 2 000 bars, closed candles only, failures
that warn and let the strategy warm up live. The live path through the socket is in tests/live."""

from __future__ import annotations

from tui_trader.domain.errors import DataError
from tui_trader.domain.events import CandleClosed, StartupChecked, TradeTick
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock
from tui_trader.venues.candle_files import Candle
from tui_trader.venues.mexc.candles import MARGIN_CANDLES, HistoryWarmup, KlineCloser
from tui_trader.venues.mexc.errors import NetworkError

NOW_MS = 1_700_000_000_000 + 25_000  # 25 s into a minute


class Exchange:
    """`klines` as MEXC answers it: open times in [start, end], at most `page` bars, the forming candle included."""

    def __init__(self, first_s: int, last_s: int, page: int = 2000, error: Exception | None = None) -> None:
        self.bars = [Candle(t * 1000, 1.0, 2.0, 0.5, 1.5, 10.0) for t in range(first_s, last_s + 1, 60)]
        self.page, self.error = page, error
        self.calls: list[tuple[int, int]] = []

    async def klines(self, symbol: str, start_s: int, end_s: int) -> list[Candle]:
        self.calls.append((start_s, end_s))
        if self.error is not None:
            raise self.error
        return [b for b in self.bars if start_s * 1000 <= b.ts_ms <= end_s * 1000][: self.page]


def _warmup(exchange: Exchange, lookback_s: float, closer: KlineCloser | None = None):
    bus, warmed = EventBus(), []
    events: list = []
    bus.subscribe(events.append, name="t")
    loader = HistoryWarmup(exchange, bus, SimClock(NOW_MS), symbols=["BTC_USDT"], lookback_s=lambda: lookback_s,
                           warm=lambda sym, evs, first: warmed.append((sym, evs, first)), closer=closer, page=exchange.page)
    return loader, warmed, events


async def test_pages_past_the_2000_bar_limit_and_leaves_the_forming_candle_to_the_stream():
    forming_s = NOW_MS // 60_000 * 60
    exchange = Exchange(forming_s - 3000 * 60, forming_s, page=2000)
    closer = KlineCloser()
    loader, warmed, events = _warmup(exchange, lookback_s=2500 * 60, closer=closer)
    await loader.start()
    [(_, evs, first_ms)] = warmed
    closes = [e for e in evs if isinstance(e, CandleClosed)]
    assert len(closes) == 2500 + MARGIN_CANDLES and len(exchange.calls) == 2  # two pages
    assert [c.open_ms for c in closes] == list(range(closes[0].open_ms, (forming_s - 60) * 1000 + 1, 60_000))
    assert first_ms == closes[0].open_ms and closes[-1].ts_ms <= NOW_MS  # every candle closed, the forming one not
    assert sum(isinstance(e, TradeTick) for e in evs) == 4 * len(closes)  # replayed as four ticks each
    assert closer.closed_ms["BTC_USDT"] == (forming_s - 60) * 1000  # the stream will not close it again
    [check] = [e for e in events if isinstance(e, StartupChecked)]
    assert check.status == "ok" and loader.loaded == {"BTC_USDT": 2500 + MARGIN_CANDLES}


async def test_a_failed_or_malformed_read_warns_and_the_strategy_warms_up_live():
    for error in (NetworkError("GET kline: ClientConnectorError"), DataError("MEXC kline reply: bar 3 has a non-numeric value")):
        loader, warmed, events = _warmup(Exchange(0, 0, error=error), lookback_s=1800)
        await loader.start()
        assert warmed == []
        [check] = [e for e in events if isinstance(e, StartupChecked)]
        assert check.status == "warning" and "warms up live" in check.detail and str(error) in check.detail


def test_the_stream_does_not_close_a_candle_history_already_closed():
    closer = KlineCloser()
    closer.seed("X", 120_000)
    c = Candle(120_000, 1.0, 1.0, 1.0, 1.0, 1.0)
    assert closer.update("X", 60, c) is None
    assert closer.update("X", 60, c._replace(ts_ms=180_000)) is None  # 120 000 was history's
    closed = closer.update("X", 60, c._replace(ts_ms=240_000))
    assert closed is not None and closed.open_ms == 180_000 and closed.ts_ms == 240_000
