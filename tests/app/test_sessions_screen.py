"""Paper-sessions screen: the form checks leverage as typed, keys reach the session service, rows update in place."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Button, Input, Label, Static

from tui_trader.app.facade import FieldInvalid
from tui_trader.app.form_values import leverage_problem
from tui_trader.app.sessions import SessionService
from tui_trader.app.sessions_facade import (
    SessionsFacade,
    SessionSummary,
    request_from_form,
)
from tui_trader.app.tui.dialogs.confirm import ConfirmDialog
from tui_trader.app.tui.dialogs.session_form import SessionFormDialog
from tui_trader.app.tui.screens.sessions import (
    KeyedTable,
    SessionsScreen,
    row_changes,
    session_row,
)
from tui_trader.domain.errors import Retryable
from tui_trader.domain.money import cents
from tui_trader.domain.number_format import price_text
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import WallClock
from tui_trader.engine.core import TraderCore
from tui_trader.venues.replay import bundled_data_path

SIZE = (140, 44)
PUMP_FROM = 1512248000000  # real NXT/BTC minutes before a pump the default strategy shorts
SHORT_OPEN_MS = 1512255120000  # its entry fill (the exit follows 3 minutes later)


class SessionsApp(App[None]):
    """The screen alone, as the dashboard will push it."""

    def __init__(self, facade: SessionsFacade) -> None:
        super().__init__()
        self.facade = facade

    def on_mount(self) -> None:
        self.push_screen(SessionsScreen(self.facade, refresh_s=0.1))


@pytest.fixture
def facade(service) -> SessionsFacade:
    core = TraderCore(EventBus(), WallClock())
    core.components["sessions"] = service
    return SessionsFacade(core)


async def until(pilot: Pilot, cond: Callable[[], object], tries: int = 200) -> None:
    """Poll `cond` between UI turns (up to tries x 50 ms); the caller asserts it afterwards."""
    for _ in range(tries):
        await pilot.pause(0.05)
        if cond():
            return


def text_of(app: App, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


def cell(app: App, key: str, column: str) -> str:
    table = app.screen.query_one("#sessions-table", KeyedTable)
    return table.shown[key][[c[0] for c in table.spec].index(column)] if key in table.shown else ""


async def open_form(pilot: Pilot, **values: str) -> SessionFormDialog:
    await pilot.press("n")
    await until(pilot, lambda: isinstance(pilot.app.screen, SessionFormDialog))
    form = pilot.app.screen
    assert isinstance(form, SessionFormDialog)
    for field, value in values.items():
        form.query_one(f"#{field}", Input).value = value
    return form


def slice_of_bundled(tmp_path: Path, end_ms: int) -> Path:
    with gzip.open(bundled_data_path(), "rt") as fh:
        lines = fh.read().splitlines()
    out = tmp_path / "bittrex_NXT-BTC_1m_slice.csv"
    out.write_text("\n".join([lines[0]] + [x for x in lines[1:] if PUMP_FROM <= int(x.split(",")[0]) <= end_ms]) + "\n")
    return out


# --- (a) leverage checked as the person types ------------------------------------------------


async def test_leverage_rejects_0_201_and_text_as_typed_and_accepts_1_and_200(facade, service):
    app = SessionsApp(facade)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot)
        leverage = form.query_one("#leverage", Input)
        error = form.query_one("#leverage-error", Label)
        for typed, words in (("0", "out of range"), ("201", "out of range"), ("abc", "whole number")):
            leverage.value = ""
            leverage.focus()
            await pilot.press(*typed)  # key by key, as a person types; no submit yet
            await pilot.pause()
            assert leverage.has_class("-invalid"), typed
            assert words in str(error.content) and "1 to 200" in str(error.content), typed
            await pilot.press("enter")  # submit is refused while the value is wrong
            await pilot.pause(0.2)
            assert app.screen is form and await service.list() == []
        for typed in ("1", "200"):
            leverage.value = ""
            leverage.focus()
            await pilot.press(*typed)
            await pilot.pause()
            assert not leverage.has_class("-invalid") and str(error.content) == "", typed


# --- (b) create from the form; the table and the detail follow the run -------------------------


@pytest.mark.slow  # a full-speed replay stepped every simulated second (CI runs it)
async def test_created_session_shows_running_then_trades_and_pnl_update(facade, service):
    app = SessionsApp(facade)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, name="bundled run", data="bundled", speed="0", leverage="3")
        await pilot.click("#create")
        await until(pilot, lambda: not isinstance(app.screen, SessionFormDialog) and app.screen.query(KeyedTable))
        [info] = await service.list()
        seen: list[tuple[str, str, str]] = []  # (status, trades, net P&L) as the table showed them

        def watch() -> bool:
            row = (cell(app, info.id, "status"), cell(app, info.id, "trades"), cell(app, info.id, "pnl"))
            if row[0] and (not seen or seen[-1] != row):
                seen.append(row)
            return row[0] == "finished"

        await until(pilot, watch, tries=600)
        assert seen[0][0] == "running" and seen[-1][0] == "finished", seen
        running = [r for r in seen if r[0] == "running"]
        assert len({r[1] for r in running}) >= 2, seen  # the trade count moved while it ran
        assert len({r[2] for r in running}) >= 2, seen  # and so did the P&L
        perf = await service.performance(info.id)
        assert cell(app, info.id, "trades") == str(perf.trade_count) and perf.trade_count > 0
        assert cell(app, info.id, "equity") == f"{cents(perf.equity):,}"
        orders, _ = await service.orders_and_fills(info.id)
        history = app.screen.query_one("#session-orders", KeyedTable)
        await until(pilot, lambda: len(history.shown) == len(orders))
        assert set(history.shown) == {o.client_id for o in orders}
        filled = {o.client_id for o in orders if o.filled_contracts > 0}
        assert filled and all(" @ " in history.shown[c][-1] for c in filled)  # each filled order lists its fills
        assert "bundled run" in text_of(app, "#session-pnl") and "net P&L" in text_of(app, "#session-pnl")


async def test_detail_shows_the_open_position_and_its_order(facade, service, tmp_path):
    data = slice_of_bundled(tmp_path, SHORT_OPEN_MS + 2 * 60_000)  # the data ends while the short is open
    app = SessionsApp(facade)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, name="open short", data=str(data))
        await pilot.press("enter")  # Enter in a field submits the form
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        [info] = await service.list()
        positions = app.screen.query_one("#session-positions", KeyedTable)
        await until(pilot, lambda: cell(app, info.id, "status") == "finished" and positions.shown)
        info = await service.get(info.id)
        assert info.status == "finished" and len(info.positions) == 1
        [(key, row)] = positions.shown.items()
        p = info.positions[0]
        assert key == f"{p.symbol}:{p.side.value}"
        assert row[:3] == (p.symbol, "SHORT", format(p.contracts.normalize(), "f"))
        orders = app.screen.query_one("#session-orders", KeyedTable).shown
        assert len(orders) == 1 and next(iter(orders.values()))[2] == "OPEN_SHORT"


# --- (c) stop, resume and delete reach the service --------------------------------------------


async def status_of(service: SessionService, sid: str) -> str:
    return (await service.get(sid)).status


async def test_stop_resume_and_delete_with_cancel_by_default(facade, service):
    created = await facade.create({"name": "slow", "data": "bundled", "speed": "600"})  # ~0.1 s a candle: it runs on
    app = SessionsApp(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: cell(app, created.id, "status") == "running")
        assert cell(app, created.id, "status") == "running"
        await pilot.press("d")  # running: refused by the service, said, nothing deleted
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("tab", "enter")
        await until(pilot, lambda: any("stop it before deleting" in str(n.message) for n in app._notifications))
        assert await status_of(service, created.id) == "running"

        await pilot.press("x")
        await until(pilot, lambda: cell(app, created.id, "status") == "stopped")
        assert await status_of(service, created.id) == "stopped"
        await pilot.press("r")
        await until(pilot, lambda: cell(app, created.id, "status") == "running")
        assert await status_of(service, created.id) == "running"
        await pilot.press("x")
        await until(pilot, lambda: cell(app, created.id, "status") == "stopped")
        assert await status_of(service, created.id) == "stopped"

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert isinstance(app.focused, Button) and app.focused.id == "cancel"  # the default answer is no
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert [s.id for s in await service.list()] == [created.id]
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("tab", "enter")  # Delete is one deliberate step away
        await until(pilot, lambda: not app.screen.query_one("#sessions-table", KeyedTable).shown)
        assert await service.list() == []


async def test_start_runs_a_created_session_and_refuses_a_running_one(facade, service):
    created = await facade.create({"name": "later", "data": "bundled", "speed": "600"}, start=False)
    app = SessionsApp(facade)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: cell(app, created.id, "status") == "created")
        await pilot.press("s")
        await until(pilot, lambda: cell(app, created.id, "status") == "running")
        assert await status_of(service, created.id) == "running"
        await pilot.press("s")
        await until(pilot, lambda: any("is running" in str(n.message) for n in app._notifications))
        assert any("is running" in str(n.message) for n in app._notifications)


# --- (d) a value the service refuses marks its field --------------------------------------------


@pytest.mark.parametrize("field, typed, words", [
    ("strategy", "/nope/missing.toml", "strategy_file"),
    ("data", "/nope/candles.csv", "data_file"),
    ("balance", "-5", "starting_balance"),
    ("balance", "lots", "a number of USDT"),
    ("leverage", "10", "max_leverage"),  # in 1-200, but above the bundled strategy's own limit
    ("symbols", "", "needs symbols"),  # the live feed without symbols
])
async def test_a_refused_value_marks_its_field(facade, service, field, typed, words):
    app = SessionsApp(facade)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, **{field: typed}, **({"data": "live"} if field == "symbols" else {}))
        await pilot.click("#create")
        widget = form.query_one(f"#{field}", Input)
        await until(pilot, lambda: widget.has_class("-invalid"))
        assert widget.has_class("-invalid") and app.focused is widget
        assert words in str(form.query_one(f"#{field}-error", Label).content)
        others = [w for w in form.query(Input) if w is not widget]
        assert not any(w.has_class("-invalid") for w in others)
        assert app.screen is form and await service.list() == []
        await pilot.press("end", "backspace" if typed else "a")  # editing the field clears its mark
        await pilot.pause()
        assert not widget.has_class("-invalid")


async def test_network_trouble_offers_retry_and_the_retry_creates(facade, service):
    calls: list[dict[str, str]] = []
    real_create = facade.create

    async def flaky_create(values, *, start=True) -> SessionSummary:
        calls.append(dict(values))
        if len(calls) == 1:
            raise Retryable("create the session: the network is unreachable (test)")
        return await real_create(values, start=False)

    facade.create = flaky_create  # type: ignore[method-assign]
    app = SessionsApp(facade)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, name="after retry")
        await pilot.click("#create")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert isinstance(app.screen, ConfirmDialog) and "Retry?" in str(app.screen.query_one(".question", Label).content)
        assert isinstance(app.focused, Button) and str(app.focused.label) == "Retry"
        await pilot.press("enter")  # Retry has the focus
        await until(pilot, lambda: len(calls) == 2 and isinstance(app.screen, SessionsScreen))
        assert [s.name for s in await service.list()] == ["after retry"]


# --- (e) one store read per figure ----------------------------------------------------------------


def count_store_reads(service: SessionService, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the service's list reads, order and fill loads, and equity-curve reads (one per performance)."""
    seen: Counter[str] = Counter()

    def counted(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            seen[name] += 1
            return await real(*args, **kwargs)
        return call

    for name in ("load_orders", "load_fills"):
        monkeypatch.setattr(service.orders, name, counted(name, getattr(service.orders, name)))
    monkeypatch.setattr(service, "list", counted("list", service.list))
    fetchall = service.db.fetchall

    async def fetch(sql: str, *args: Any) -> Any:
        seen["performance"] += "session_equity" in sql
        return await fetchall(sql, *args)

    monkeypatch.setattr(service.db, "fetchall", fetch)
    return seen


async def test_each_screen_read_works_out_a_running_sessions_performance_once(facade, service, monkeypatch):
    created = await facade.create({"name": "slow", "data": "bundled", "speed": "600"})  # runs on during the test
    seen = count_store_reads(service, monkeypatch)
    app = SessionsApp(facade)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen) and seen["list"] >= 3)
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        screen._poll.pause()  # no new tick: the counts settle once the read in flight ends
        await until(pilot, lambda: not screen._reading and not screen._again)
        assert cell(app, created.id, "status") == "running" and "slow" in text_of(app, "#session-pnl")
        reads = seen["list"]
        assert reads >= 3 and not screen._reading
        # per read: one performance for the row and the detail, the orders and fills loaded once
        assert (seen["performance"], seen["load_orders"], seen["load_fills"]) == (reads, reads, reads), seen
    seen.clear()
    detail = await facade.detail(created.id)
    assert detail.summary.id == created.id
    assert (seen["performance"], seen["load_orders"], seen["load_fills"]) == (1, 1, 1), seen


async def test_a_settled_sessions_detail_is_read_once_until_its_status_changes(facade, service, monkeypatch):
    """The screen reads its selected session every second; a stopped session's figures do not move."""
    created = await facade.create({"name": "slow", "data": "bundled", "speed": "600"})
    await facade.stop(created.id)
    deadline = time.monotonic() + 15
    while (await service.get(created.id)).status != "stopped" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert (await service.get(created.id)).status == "stopped"
    seen = count_store_reads(service, monkeypatch)
    rows, first = await facade.read(created.id)
    _, again = await facade.read(created.id)
    assert first is not None and again == first and rows[0] == first.summary
    assert (seen["performance"], seen["load_orders"], seen["load_fills"]) == (1, 1, 1), seen
    await facade.resume(created.id)  # running again: its figures move, so they are read afresh
    _, running = await facade.read(created.id)
    assert running is not None and running.summary.status == "running"
    assert (seen["performance"], seen["load_orders"], seen["load_fills"]) == (2, 2, 2), seen
    await facade.stop(created.id)


# --- view models and form parsing, no terminal ------------------------------------------------


def summary(**changes: object) -> SessionSummary:
    base = SessionSummary("abc", "[red]x", "running", "bundled sample", Decimal(10_000), Decimal("10012.345"),
                          Decimal("12.345"), 3, 200 / 3)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_session_row_formats_money_and_win_rate():
    assert session_row(summary()) == ("abc", "[red]x", "running", "bundled sample", "10,000.00", "10,012.35",
                                      "+12.35", "3", "66.7 %")
    row = session_row(summary(net_pnl=Decimal("-0.5"), trades=0, win_rate_pct=0.0))
    assert row[6] == "-0.50" and row[8] == "-"  # no trades: no win rate, not 0 %


def test_prices_are_positional_with_eight_significant_digits():
    assert price_text(Decimal("0.0000433142027838247905534665875")) == "0.000043314203"
    assert [price_text(Decimal(v)) for v in ("0.00003283", "46319.5", "91407678", "100", "0")] == [
        "0.00003283", "46319.5", "91407678", "100", "0"]
    assert price_text(None) == "-"


def test_row_changes_touch_only_what_changed():
    old = {"a": ("a", "running", "1"), "b": ("b", "stopped", "2")}
    new = {"a": ("a", "running", "2"), "c": ("c", "created", "0")}
    changes = row_changes(old, new)
    assert changes.removed == ["b"] and changes.added == [("c", ("c", "created", "0"))]
    assert changes.cells == [("a", 2, "2")]
    assert row_changes(new, new).cells == [] and not row_changes(new, new).added


def test_form_strings_become_a_request():
    req = request_from_form({"name": " x ", "strategy": "", "symbols": "btc_usdt, eth_usdt", "balance": "2500.5",
                             "leverage": "20", "data": "live", "speed": ""})
    assert req["symbols"] == ["BTC_USDT", "ETH_USDT"] and req["source"] == "mexc" and req["data_file"] is None
    assert req["starting_balance"] == 2500.5 and req["leverage"] == 20 and req["speed"] == 0.0
    req = request_from_form({"data": "~/c.csv", "leverage": ""})
    assert req["source"] == "replay" and req["data_file"] == Path("~/c.csv").expanduser() and req["leverage"] is None
    for field, values in (("leverage", {"leverage": "0"}), ("balance", {"balance": "NaN"}),
                          ("speed", {"speed": "fast"})):
        with pytest.raises(FieldInvalid) as err:
            request_from_form(values)
        assert err.value.field == field


def test_leverage_rule():
    assert [leverage_problem(v) is None for v in ("", "1", "200", " 50 ")] == [True] * 4
    assert [leverage_problem(v) is None for v in ("0", "201", "abc", "2.5", "-1")] == [False] * 5


def test_binding_ids_are_unique_and_named():
    ids = [b.id for b in SessionsScreen.BINDINGS]  # type: ignore[union-attr]
    assert ids == ["sessions.create", "sessions.start", "sessions.stop", "sessions.resume", "sessions.delete"]
