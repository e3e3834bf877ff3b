"""Moving a stop-loss (issue 21, item 3): the facade refuses a wrong one with the field named, a valid one reaches
the paper venue, the snapshot shows it and the venue closes the position when the price crosses it; the dialog
marks the field as the user types and sends only a valid value."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from textual.app import App
from textual.widgets import Input, Label

from tui_trader.app.facade import (
    ConsoleFacade,
    FieldInvalid,
    NotAvailable,
    StopLossRules,
)
from tui_trader.app.settings import load_settings
from tui_trader.app.tui.dialogs.stop_loss import StopLossDialog, ask_stop_loss
from tui_trader.app.wiring import build_core
from tui_trader.domain.errors import Permanent
from tui_trader.domain.events import (
    ErrorRaised,
    MarkPriceTick,
    PositionChanged,
    TradeTick,
)
from tui_trader.domain.models import Instrument, OrderState, Side

SYM = "SLT_USDT"
INSTR = Instrument(SYM, price_unit=D("0.01"), maintenance_margin_rate=D("0.01"))
DEADLINE_S = 5.0
QUIET_FROM = datetime(2000, 1, 1, tzinfo=UTC)  # the bundled replay paced at real time from its first candle


async def until(condition: Callable[[], object], what: str) -> None:
    """Poll `condition` until it holds; fail after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


class Paper:
    """The console's real paper core (strategy off; the bundled replay paced at real time from its first candle,
    so it is quiet) with positions on a symbol of our own whose prices the test publishes."""

    def __init__(self, core) -> None:
        self.core, self.stack = core, core.components["stack"]
        self.venue, self.clock = self.stack.venue, core.components["data_clock"]
        self.venue.instruments[SYM] = INSTR
        self.facade = ConsoleFacade(core)

    async def tick(self, price: float) -> None:
        ts = max(self.clock.now_ms(), self.venue.now_ms) + 1000
        self.clock.advance_to(ts)
        self.core.bus.publish(MarkPriceTick(ts, SYM, price))
        self.core.bus.publish(TradeTick(ts, SYM, price, 1.0))
        await self.stack.execution.idle()

    async def open(self, side: Side, price: str = "100") -> None:
        now = self.venue.now_ms
        pos, _ = self.venue.ledger.open(INSTR, side, D(10), D(price), 3, D(0), now, "manual")
        self.stack.execution.report(PositionChanged(now, self.venue.ledger.snapshot(pos, D(price), now)))
        await until(lambda: self.stack.cache.position(SYM, side) is not None, f"the {side} position in the cache")

    def view(self, side: Side):
        return next(v for v in self.facade.snapshot().positions if v.symbol == SYM and v.side is side)


@pytest.fixture
async def paper(isolated_environment):
    settings, _ = load_settings(None)
    settings = settings.model_copy(update={
        "strategy": settings.strategy.model_copy(update={"enabled": False}),
        "replay": settings.replay.model_copy(update={"speed": 1.0, "paced_from": QUIET_FROM}),
    })
    core = build_core(settings)
    async with core:
        p = Paper(core)
        await p.tick(100.0)
        yield p


async def test_a_wrong_stop_loss_is_refused_with_its_field_named(paper):
    await paper.open(Side.SHORT)
    await paper.open(Side.LONG)
    f = paper.facade
    cases = [
        (Side.SHORT, D("99.5"), "above the current price 100"),  # a short's stop below the price: triggers at once
        (Side.SHORT, D(100), "above the current price"),
        (Side.LONG, D("100.5"), "below the current price 100"),
        (Side.SHORT, D(0), "above 0"),
        (Side.LONG, D(-5), "above 0"),
        (Side.SHORT, D("NaN"), "not a price"),
    ]
    for side, value, message in cases:
        with pytest.raises(FieldInvalid, match=message) as info:
            f.set_stop_loss(SYM, side, value)
        assert info.value.field == "stop_loss"
    rules = await f.stop_loss_rules(SYM, Side.SHORT)  # reads the price unit from the venue
    assert rules.price == D(100) and rules.price_unit == D("0.01") and rules.stop_loss is None
    with pytest.raises(FieldInvalid, match="multiple of 0.01"):
        f.set_stop_loss(SYM, Side.SHORT, D("105.005"))
    for text, message in [("abc", "not a price"), ("", "not a price"), ("1e400x", "not a price"),
                          ("105.005", "multiple of 0.01"), ("95", "above the current price")]:
        with pytest.raises(FieldInvalid, match=message):
            rules.parse(text)
    assert rules.parse(" 105.50 ") == D("105.50")
    with pytest.raises(NotAvailable, match="no LONG position on OTHER_USDT"):
        f.set_stop_loss("OTHER_USDT", Side.LONG, D(1))
    assert paper.venue.ledger.position(SYM, Side.SHORT).stop_loss is None  # nothing reached the venue
    assert paper.venue.ledger.position(SYM, Side.LONG).stop_loss is None


async def test_off_the_price_unit_before_the_unit_is_known_fails_the_task_and_says_so(paper):
    await paper.open(Side.SHORT)
    errors: list[ErrorRaised] = []
    paper.core.bus.subscribe(errors.append, [ErrorRaised])
    task = paper.facade.set_stop_loss(SYM, Side.SHORT, D("105.005"))  # the unit is read inside the task
    with pytest.raises(FieldInvalid, match="multiple of 0.01"):
        await task
    await until(lambda: errors, "the error event")
    assert errors[0].source == "stop-loss" and "multiple of 0.01" in errors[0].message
    assert paper.venue.ledger.position(SYM, Side.SHORT).stop_loss is None


async def test_a_valid_stop_loss_reaches_the_venue_shows_and_closes_the_position_when_crossed(paper):
    await paper.open(Side.SHORT)
    task = paper.facade.set_stop_loss(SYM, Side.SHORT, D("105.5"))
    assert not task.done()  # returned at once; the venue call runs as a task
    await task
    ledger_position = paper.venue.ledger.position(SYM, Side.SHORT)
    assert ledger_position.stop_loss == D("105.5")
    assert paper.view(Side.SHORT).stop_loss == D("105.5")

    await paper.tick(104.0)  # not crossed yet
    assert paper.stack.cache.position(SYM, Side.SHORT) is not None
    await paper.tick(106.0)  # the last trade crosses the stop: the venue closes the short
    await until(lambda: paper.stack.cache.position(SYM, Side.SHORT) is None, "the short closed")
    assert paper.venue.ledger.position(SYM, Side.SHORT) is None
    [stop] = [o for o in paper.venue.orders.values() if o.reason == "SL"]
    assert stop.reduce_only and stop.state is OrderState.FILLED and stop.trigger_price == D("105.5")

    await paper.open(Side.SHORT, "106")  # a new position on the same symbol and side: not the old stop
    assert paper.view(Side.SHORT).stop_loss is None


async def test_a_venue_refusal_fails_the_task_and_is_published(paper):
    await paper.open(Side.SHORT)
    errors: list[ErrorRaised] = []
    paper.core.bus.subscribe(errors.append, [ErrorRaised])

    async def refuse(*_args) -> None:
        raise Permanent("no TP/SL order for this position", code=2009)

    paper.venue.set_stop_loss = refuse
    with pytest.raises(Permanent):
        await paper.facade.set_stop_loss(SYM, Side.SHORT, D(110))
    await until(lambda: errors, "the error event")
    assert "no TP/SL order" in errors[0].message
    assert paper.view(Side.SHORT).stop_loss is None  # not shown as set


# --- the dialog --------------------------------------------------------------------------------------------------

RULES = StopLossRules(SYM, Side.SHORT, D(100), D("0.01"), None, None)


class FakeFacade:
    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[tuple[str, Side, D | None]] = []
        self.price = D(100)
        self.fail = fail

    async def stop_loss_rules(self, symbol: str, side: Side) -> StopLossRules:
        return RULES

    def current_price(self, symbol: str) -> D | None:
        return self.price

    def set_stop_loss(self, symbol: str, side: Side, stop_loss: D | None) -> asyncio.Task[None]:
        self.sent.append((symbol, side, stop_loss))

        async def send() -> None:
            if self.fail is not None:
                raise self.fail

        return asyncio.get_running_loop().create_task(send())


class Shell(App[None]):
    def __init__(self, facade: FakeFacade) -> None:
        super().__init__()
        self.facade = facade

    def on_mount(self) -> None:
        ask_stop_loss(self, self.facade, SYM, Side.SHORT)


async def _dialog(pilot) -> StopLossDialog:
    for _ in range(100):
        if isinstance(pilot.app.screen, StopLossDialog):
            return pilot.app.screen
        await pilot.pause()
    raise AssertionError("the stop-loss dialog did not open")


async def _type(pilot, dialog: StopLossDialog, text: str) -> tuple[bool, str]:
    field = dialog.query_one("#stop_loss", Input)
    field.value = ""
    await pilot.press(*text)
    await pilot.pause()
    return field.has_class("-invalid"), str(dialog.query_one("#stop_loss-error", Label).render())


async def test_the_dialog_marks_the_field_as_the_user_types_and_sends_a_valid_value():
    facade = FakeFacade()
    app = Shell(facade)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        dialog = await _dialog(pilot)
        assert dialog.query_one("#stop_loss", Input).has_focus
        assert await _type(pilot, dialog, "99") == (True, "a short's stop-loss must be above the current price 100")
        assert await _type(pilot, dialog, "abc") == (True, "not a price: 'abc'")
        assert await _type(pilot, dialog, "105.005") == (True, "must be a multiple of 0.01 (the price unit)")
        await pilot.press("enter")  # an invalid value is not sent
        await pilot.pause()
        assert app.screen is dialog and facade.sent == []
        facade.price = D(106)  # the price moved while the dialog was open: checked against the live one
        assert await _type(pilot, dialog, "105.5") == (True, "a short's stop-loss must be above the current price 106")
        assert await _type(pilot, dialog, "107.5") == (False, "")
        await pilot.press("enter")
        await until(lambda: any("stop-loss set to 107.5" in str(n.message) for n in app._notifications),
                    "the confirmation toast")
        assert app.screen is not dialog
        assert facade.sent == [(SYM, Side.SHORT, D("107.5"))]


async def test_escape_cancels_and_a_failed_send_is_shown():
    facade = FakeFacade(fail=Permanent("venue said no", code=2009))
    app = Shell(facade)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        dialog = await _dialog(pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not dialog and facade.sent == []
        ask_stop_loss(app, facade, SYM, Side.SHORT)
        dialog = await _dialog(pilot)
        await _type(pilot, dialog, "110")
        await pilot.press("enter")
        await until(lambda: any("venue said no" in str(n.message) for n in app._notifications), "the error toast")
        assert facade.sent == [(SYM, Side.SHORT, D(110))]
