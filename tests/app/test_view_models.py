"""The dashboard's view models, without a terminal: the liquidation bar and the positions rows, from a
real paper stack through the facade."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.engine.harness import SYM, Stack
from tui_trader.app.facade import (
    ConsoleFacade,
    ConsoleSnapshot,
    NotAvailable,
    PositionView,
)
from tui_trader.app.tui.view_models import (
    BAR_COLUMN,
    BAR_FULL_PCT,
    COLUMNS,
    liquidation_bar,
    position_rows,
)
from tui_trader.domain.config import WatchdogConfig
from tui_trader.domain.intents import OpenPosition
from tui_trader.domain.liquidation import Band
from tui_trader.domain.models import (
    ClientOrderId,
    Order,
    OrderSide,
    OrderState,
    OrderType,
    Side,
)
from tui_trader.engine.core import TraderCore
from tui_trader.engine.trading import TradingStack
from tui_trader.engine.watchdog import LiquidationWatchdog


@pytest.mark.parametrize(("distance", "band", "label"), [
    (35.0, Band.GREEN, "GREEN 35.0 %"), (15.0, Band.YELLOW, "YELLOW 15.0 %"), (4.1, Band.RED, "RED 4.1 %"),
    (0.0, Band.LIQUIDATED, "LIQUIDATED"), (80.0, Band.GREEN, "GREEN 80.0 %")])
def test_the_bar_is_as_long_as_the_distance_with_ticks_and_the_band_in_words(distance, band, label):
    bar = liquidation_bar(distance, band, width=20, yellow=20, red=10, autoclose=7.5)
    assert len(bar.cells) == 20 and bar.label == label and bar.band is band
    assert [i for i, c in enumerate(bar.cells) if c in "|!"] == [3, 4, 8]  # 7.5 %, 10 %, 20 % of a 50 % bar
    assert bar.cells[int(7.5 / BAR_FULL_PCT * 20)] == "!" and bar.cells[int(20 / BAR_FULL_PCT * 20)] == "|"
    filled = round(min(distance, BAR_FULL_PCT) / BAR_FULL_PCT * 20)  # the length is the distance
    assert "·" not in bar.cells[:filled] and "█" not in bar.cells[filled:]


def test_no_liquidation_price_is_an_empty_bar_that_says_so():
    bar = liquidation_bar(None, None, width=12)
    assert bar.cells == " " * 12 and bar.label == "n/a" and bar.band is None


async def facade_with_a_short(s: Stack, watchdog: LiquidationWatchdog | None = None) -> ConsoleFacade:
    """The console's facade over a paper stack holding one 2x short of XYZ at 2.0 (SL 2.3, TP 1.5)."""
    core = TraderCore(s.bus, s.clock, mode="paper")
    core.components["stack"] = TradingStack(s.bus, s.clock, s.venue, s.cache, s.execution, watchdog=watchdog)
    facade = ConsoleFacade(core)
    await s.tick(2.0)
    s.execution.submit(OpenPosition(0, "strat:XYZ", SYM, Side.SHORT, ClientOrderId("v-1-O"), 10.0, 2,
                                    stop_loss_pct=15, take_profit_pct=25))
    await s.execution.idle()
    await s.tick(2.0)
    return facade


async def test_positions_rows_from_a_paper_stack_through_the_facade():
    async with Stack() as s:
        facade = await facade_with_a_short(s, LiquidationWatchdog(s.bus, s.clock, s.cache, s.execution, WatchdogConfig()))
        await s.tick(2.2)  # the short loses 10 %
        snap = facade.snapshot()
        [view] = snap.positions
        assert view.side is Side.SHORT and view.fair == 2.2 and view.stage == "watching"
        assert view.liquidation is not None and view.distance_pct == pytest.approx((view.liquidation - 2.2) / 2.2 * 100)
        assert view.band is Band.GREEN if view.distance_pct > 20 else view.band in (Band.YELLOW, Band.RED)
        assert view.upnl == pytest.approx(-0.2 * float(view.coins)) and view.roe_pct is not None and view.roe_pct < 0
        assert view.stop_loss == D("2.3") and view.take_profit == D("1.5")
        [row] = position_rows(snap)
        cell = dict(zip(COLUMNS, row.cells))
        assert row.key == f"{SYM}:SHORT" and cell["symbol"] == SYM and cell["lev"] == "2x" and cell["contracts"] == "1000"
        assert cell[BAR_COLUMN].endswith(row.bar.label) and row.bar.band is view.band
        with pytest.raises(NotAvailable, match="no LONG position"):
            facade.close_position(SYM, Side.LONG)


class CountingOrders(dict):
    """The cache's order dict, counting the orders any reader walks through."""

    visited = 0

    def _count(self, items):
        for item in items:
            self.visited += 1
            yield item

    def values(self):
        return self._count(super().values())

    def items(self):
        return self._count(super().items())

    def __iter__(self):
        return self._count(super().__iter__())


async def test_a_snapshot_reads_no_finished_order_however_many_the_session_holds():
    async with Stack() as s:
        facade = await facade_with_a_short(s)
        s.cache.orders = CountingOrders(s.cache.orders)
        before = facade.snapshot()
        few = s.cache.orders.visited
        for i in range(5000):  # a long session: finished entries of other strategies and closes of this one
            tag, reduce_only = ("strat:other", False) if i % 2 else ("strat:XYZ", True)
            s.cache.apply_order(Order(ClientOrderId(f"old-{i}"), SYM, OrderSide.OPEN_SHORT, OrderType.MARKET, D(1),
                                      reduce_only=reduce_only, state=OrderState.FILLED, tag=tag,
                                      stop_loss_price=D(3), take_profit_price=D(1)))
        s.cache.orders.visited = 0
        after = facade.snapshot()
        assert after == before and before.positions[0].stop_loss == D("2.3")  # the same picture ...
        assert s.cache.orders.visited == few  # ... at the same cost: no walk over the finished orders


def test_formula_and_exchange_liquidation_prices_are_both_shown_when_they_differ():
    base = dict(symbol="BTC_USDT", side=Side.SHORT, contracts=D(40), coins=D("0.004"), entry=D(60000), fair=61000.0,
                last=61001.0, leverage=3, distance_pct=30.0, band=Band.GREEN, upnl=-4.0, roe_pct=-5.0,
                stop_loss=None, take_profit=None, opened_ms=0, stage="watching", tag="")
    same = PositionView(liquidation=79760.0, exchange_liquidation=79760.0, **base)
    differ = PositionView(liquidation=79500.0, exchange_liquidation=79760.0, **base)
    snap = ConsoleSnapshot("paper", "ACTIVE", 3_600_000, [same, differ])
    rows = position_rows(snap)
    liq = COLUMNS.index("liq. price")
    assert rows[0].cells[liq] == "79760" and rows[1].cells[liq] == "79500 (exch 79760)"
    assert position_rows(ConsoleSnapshot("paper", "ACTIVE", 1, [PositionView(**{**base, "fair": 1.714e-05},
                         liquidation=None, exchange_liquidation=None)]))[0].cells[COLUMNS.index("fair")] == "0.00001714"
