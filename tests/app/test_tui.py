"""Dashboard shell: events reach the log, the header shows mode and feed state, `q` quits."""

from __future__ import annotations

import re


from textual.widgets import RichLog

from tui_trader.app.settings import load_settings
from tui_trader.app.tui.app import TraderApp
from tui_trader.app.tui.widgets.status_header import StatusHeader
from tui_trader.app.wiring import build_core
from tui_trader.domain.events import ErrorRaised


async def test_app_shows_events_and_quits_with_q(isolated_environment):
    settings, _ = load_settings(None)
    settings = settings.model_copy(update={"replay": settings.replay.model_copy(update={"speed": 0.0})})
    core = build_core(settings)
    app = TraderApp(core)
    async with core:
        async with app.run_test(size=(120, 36)) as pilot:
            core.bus.publish(ErrorRaised(1, source="test", message="something [red]odd[/red] happened"))
            await pilot.pause(0.3)
            log = app.screen.query_one("#recent-events", RichLog)
            text = "\n".join(line.text for line in log.lines)
            assert "core_state" in text and "running" in text
            assert "feed_state" in text and "replaying" in text
            assert "something [red]odd[/red] happened" in text  # shown literally, not as markup
            header = app.screen.query_one(StatusHeader)
            rendered = str(header.render())
            assert "PAPER" in rendered and "NXT_BTC" in rendered
            assert re.search(r"equity 10,0\d\d\.\d\d  today [+-]\d+\.\d\d  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", rendered)
            await pilot.press("q")
            await pilot.pause()
        assert app.return_value == 0
    assert core.state == "stopped"


def test_bindings_have_unique_ids():
    ids = [b.id for b in TraderApp.BINDINGS]
    assert all(ids) and len(ids) == len(set(ids))


async def test_panic_key_closes_and_reset_key_refuses_when_active(isolated_environment):
    from tui_trader.domain.events import EmergencyCloseProgress

    settings, _ = load_settings(None)
    core = build_core(settings)
    app = TraderApp(core)
    seen = []
    core.bus.subscribe(seen.append, [EmergencyCloseProgress])
    async with core:
        async with app.run_test(size=(120, 36), notifications=True) as pilot:
            await pilot.press("R")  # ACTIVE: a clear message, nothing changes
            await pilot.pause()
            assert core.components["stack"].risk.state.value == "ACTIVE"
            assert any("already ACTIVE" in str(n.message) for n in app._notifications)
            await pilot.press("K")  # a typed confirmation: a stray key does nothing
            await pilot.press("x", "enter")
            await pilot.pause()
            assert not seen and core.components["stack"].risk.state.value == "ACTIVE"
            await pilot.press("escape")
            await pilot.press("K", *"close", "enter")
            for _ in range(20):
                await pilot.pause(0.05)
                if any(e.stage == "done" for e in seen):
                    break
            assert [e.stage for e in seen][0] == "started" and seen[-1].stage == "done"
            assert core.components["stack"].risk.state.value == "HALTED"  # stays halted until reset
            await pilot.press("R")
            await pilot.pause()
            assert core.components["stack"].risk.state.value == "ACTIVE"
            await pilot.press("q")


def test_prices_are_shown_in_positional_notation():
    from tui_trader.domain.number_format import price_text

    assert price_text(1.714e-05) == "0.00001714"
    assert price_text(46319.5) == "46319.5"


async def test_header_shows_a_price_read_over_rest_with_its_age_and_the_breaker_state():
    """Issue 19: the header shows the data source and age per symbol, and breaker transitions."""
    from textual.app import App

    from tui_trader.app.facade import ConsoleSnapshot
    from tui_trader.app.tui.bridge import Bridge
    from tui_trader.domain.events import BreakerChanged, MarkPriceTick, TradeTick
    from tui_trader.engine.bus import EventBus
    from tui_trader.engine.clock import SimClock

    bus, clock = EventBus(), SimClock(1_000_000)
    bridge = Bridge(bus, "live", clock.now_ms)

    class Shell(App):
        def compose(self):
            yield StatusHeader()

    async with Shell().run_test(size=(160, 4)) as pilot:
        header = pilot.app.query_one(StatusHeader)

        def shown() -> str:
            bridge.take()
            header.show(bridge.header, ConsoleSnapshot("live", "ACTIVE", clock.now_ms()), clock.now_ms(),
                        clock.now_ms())
            return str(header.render())

        bus.publish(TradeTick(clock.now_ms(), "BTC_USDT", 60000.5, 1.0, "buy"))
        assert "BTC_USDT 60000.5" in shown() and "stream" not in shown()  # fresh stream data: no age shown
        clock.advance(4.2)
        assert "(stream 4.2 s)" in shown()  # the stream went quiet
        bus.publish(MarkPriceTick(clock.now_ms(), "BTC_USDT", 60010.0, source="rest"))
        assert "BTC_USDT 60010 (rest 0.0 s)" in shown()  # priced over REST now (the repaint drains it)
        clock.advance(0.6)
        assert "(rest 0.6 s)" in shown()
        bus.publish(BreakerChanged(clock.now_ms(), "mexc", "closed", "open"))
        assert "mexc breaker open" in shown()
        bus.publish(BreakerChanged(clock.now_ms(), "mexc", "open", "half-open"))
        assert "mexc breaker half-open" in shown()


async def test_a_manual_action_alarm_rings_the_bell_once():
    from tui_trader.domain.events import ManualActionRequired

    settings, _ = load_settings(None)
    settings = settings.model_copy(update={"replay": settings.replay.model_copy(update={"speed": 0.0})})
    core = build_core(settings)
    app = TraderApp(core)
    rung: list[int] = []
    app.bell = lambda: rung.append(1)  # type: ignore[method-assign]
    async with core:
        async with app.run_test(size=(120, 36)) as pilot:
            core.bus.publish(ManualActionRequired(1, "ETH_USDT", "SHORT", 9.0, 4.1,
                                                  "close ETH_USDT short 9 contracts on the exchange now: 4.1 % to liquidation"))
            await pilot.pause(0.3)
            await pilot.pause(0.3)
            text = "\n".join(line.text for line in app.screen.query_one("#recent-events", RichLog).lines)
            assert "close ETH_USDT short 9 contracts on the exchange now" in text
            assert rung == [1]
            await pilot.press("q")


async def test_positions_table_and_close_one_needs_a_confirmation_whose_default_is_cancel(isolated_environment):
    """Issue 21: the positions table shows each position with its liquidation bar; `c` asks before closing the
    selected one, with Cancel focused (Enter or Escape cancels)."""
    from decimal import Decimal as D

    from tui_trader.app.facade import ConsoleSnapshot, PositionView
    from tui_trader.app.tui.widgets.positions_table import PositionsTable
    from tui_trader.domain.liquidation import Band
    from tui_trader.domain.models import Side

    view = PositionView("BTC_USDT", Side.SHORT, D(40), D("0.004"), D(60000), 75000.0, 75001.0, 3, 79760.0, 79760.0,
                        6.3, Band.RED, -60.0, -75.0, None, None, 0, "watching", "")
    closes: list[tuple[str, Side]] = []

    class StubFacade:
        mode = "paper"

        def snapshot(self):
            return ConsoleSnapshot("paper", "ACTIVE", 1, [view])

        def close_position(self, symbol, side, reason="KEY"):
            closes.append((symbol, side))

    settings, _ = load_settings(None)
    core = build_core(settings)
    app = TraderApp(core)
    app.facade = StubFacade()  # type: ignore[assignment]
    async with core:
        async with app.run_test(size=(200, 40)) as pilot:
            await pilot.pause(0.3)
            table = app.screen.query_one(PositionsTable)
            assert table.row_count == 1
            bar = table.cell("BTC_USDT:SHORT", "to liquidation")
            assert bar.endswith("RED 6.3 %") and "!" in bar and "|" in bar
            await pilot.press("c")
            await pilot.pause()
            await pilot.press("enter")  # Cancel has the focus
            await pilot.pause()
            assert closes == []
            await pilot.press("c")
            await pilot.pause()
            await pilot.press("tab", "enter")  # to "Close it"
            await pilot.pause()
            assert closes == [("BTC_USDT", Side.SHORT)]
            await pilot.press("q")
