"""Funding from the real XRP/USDT perpetual series, charged while a paper short is open on real XRP bars."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path


from tui_trader.domain.config import FeesConfig, PaperConfig
from tui_trader.domain.events import FundingCharged
from tui_trader.domain.models import ClientOrderId, Order, OrderSide, OrderType
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock
from tui_trader.venues.paper.funding import FundingSchedule, read_funding_csv
from tui_trader.venues.paper.venue import PaperVenue
from tui_trader.venues.replay import ReplayFeed

DATA = Path(__file__).resolve().parents[2] / "data"  # recordings shipped with the tests (tests/data/make_slices.py)
BARS = DATA / "xrp-usdt-perp_5m_20211115-20211121.csv.gz"
FUNDING = DATA / "xrp-usdt-perp_funding_8h_20211118-20211218.csv"


async def test_each_settlement_in_the_overlap_is_charged_at_the_recorded_rate():
    series = read_funding_csv(FUNDING)
    assert len(series) == 91
    bus = EventBus()
    venue = PaperVenue(bus, paper=PaperConfig(slippage_bps=0, latency_ms=0), fees=FeesConfig(),
                       starting_balance=D(10_000), funding=FundingSchedule(D("0.0001"), 8, series))
    charged = []
    bus.subscribe(charged.append, [FundingCharged])
    feed = ReplayFeed(bus, SimClock(0), BARS, symbol="XRP_USDT", speed=0)
    await venue.place_order(Order(ClientOrderId("s"), "XRP_USDT", OrderSide.OPEN_SHORT, OrderType.MARKET, D(1000), leverage=2))
    await feed.run()
    h8 = 8 * 3_600_000
    first_tick, last_tick = 1636934400000, 1637533800000 + 3 * 75_000
    settlements = list(range((first_tick // h8 + 1) * h8, last_tick + 1, h8))
    by_time = {round(t / h8) * h8: r for t, r in series}  # exchange times carry a few ms of jitter
    assert [e.ts_ms for e in charged] == settlements
    assert [D(str(e.rate)) for e in charged] == [by_time.get(t, D("0.0001")) for t in settlements]
    assert sum(1 for t in settlements if t in by_time) == 12  # Nov 18 00:00 .. Nov 21 16:00 come from the series
    # a short receives positive funding: every amount has the opposite sign of its rate
    assert all((e.amount < 0) == (e.rate > 0) for e in charged if e.rate)
    assert venue.ledger.funding_paid == sum(e.amount for e in charged)
