"""App layer: the paper-sessions screen - every session with its performance, the selected one in detail.

The list and the detail are read from the store through `SessionsFacade` once a second in a worker
(the next read is scheduled only after the last one finished, so a slow store never stacks reads up,
and the event loop never waits for it). Rows are keyed by session id (positions by symbol and side,
orders by client id) and only changed cells are written, inside one `batch_update()`. The row
formatting is plain Python (`session_row`, `position_row`, `order_row`, `row_changes`), tested without
a terminal. Commands (create, start, stop, resume, delete) run in workers too: a stop waits for the
session's next candle boundary, and a key handler must return at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui_trader.app.sessions_facade import (
    SessionDetail,
    SessionOrderView,
    SessionPositionView,
    SessionsFacade,
    SessionSummary,
)
from tui_trader.app.tui.dialogs.confirm import ConfirmDialog
from tui_trader.app.tui.dialogs.session_form import SessionFormDialog
from tui_trader.app.tui.errors import show_error
from tui_trader.app.tui.widgets.status_header import StatusHeader
from tui_trader.domain.number_format import (
    fee_text,
    money_text,
    price_text,
    quantity_text,
)
from tui_trader.domain.time_format import utc_minute, utc_second

log = logging.getLogger(__name__)

Row = tuple[str, ...]

# (column key, label, right-aligned)
SESSION_COLUMNS = (("id", "id", False), ("name", "name", False), ("status", "status", False),
                   ("source", "source", False), ("balance", "balance", True), ("equity", "equity", True),
                   ("pnl", "net P&L", True), ("trades", "trades", True), ("win", "win rate", True))
POSITION_COLUMNS = (("symbol", "symbol", False), ("side", "side", False), ("contracts", "contracts", True),
                    ("entry", "entry", True), ("mark", "mark", True), ("liq", "liquidation", True),
                    ("lev", "lev", True), ("margin", "margin", True), ("upnl", "uPnL", True))
ORDER_COLUMNS = (("time", "time (UTC)", False), ("client", "client id", False), ("side", "side", False),
                 ("qty", "qty", True), ("state", "state", False), ("reason", "reason", False),
                 ("fills", "fills (qty @ price, fee)", False))


# --- view models (pure) ---------------------------------------------------------------------


def session_row(s: SessionSummary) -> Row:
    """One sessions-table row, in `SESSION_COLUMNS` order."""
    win = f"{s.win_rate_pct:.1f} %" if s.trades else "-"
    return (s.id, s.name, s.status, s.source, money_text(s.starting_balance), money_text(s.equity),
            money_text(s.net_pnl, True), str(s.trades), win)


def position_row(p: SessionPositionView) -> Row:
    return (p.symbol, p.side, quantity_text(p.contracts), price_text(p.entry), price_text(p.mark),
            price_text(p.liquidation), f"{p.leverage}x", money_text(p.margin), money_text(p.unrealized_pnl, True))


def order_row(o: SessionOrderView) -> Row:
    fills = "; ".join(f"{quantity_text(f.qty_contracts)} @ {price_text(f.price)}, {fee_text(f.fee)}"
                      for f in o.fills)
    return (utc_second(o.created_ms), o.client_id, o.side, quantity_text(o.qty_contracts), o.state, o.reason,
            fills or "-")


def pnl_text(d: SessionDetail) -> str:
    """The selected session's live P&L, one line a person reads left to right."""
    s = d.summary
    text = (f"{s.name} ({s.id}) {s.status} | data time {utc_minute(d.data_time_ms or None)} | equity "
            f"{money_text(s.equity)} | net P&L {money_text(s.net_pnl, True)}: realised "
            f"{money_text(d.realized_pnl, True)}, unrealised {money_text(d.unrealized_pnl, True)}, fees "
            f"{money_text(d.fees)}, funding {money_text(d.funding, True)}"
            f" | max drawdown {d.max_drawdown_pct:.2f} % | {s.trades} trades")
    return text + (f"\nerror: {s.error}" if s.error else "")


@dataclass
class RowChanges:
    """What to do to a table to go from the rows it shows to the new ones."""

    removed: list[str] = field(default_factory=list)
    added: list[tuple[str, Row]] = field(default_factory=list)
    cells: list[tuple[str, int, str]] = field(default_factory=list)  # (row key, column index, new value)


def row_changes(old: Mapping[str, Row], new: Mapping[str, Row]) -> RowChanges:
    """Vanished keys, new rows (in `new`'s order), and the changed cells of the rest."""
    changes = RowChanges(removed=[k for k in old if k not in new])
    for key, row in new.items():
        before = old.get(key)
        if before is None:
            changes.added.append((key, row))
        else:
            changes.cells += [(key, i, v) for i, (was, v) in enumerate(zip(before, row, strict=True)) if was != v]
    return changes


# --- the screen ---------------------------------------------------------------------------------


class KeyedTable(DataTable[Text]):
    """A DataTable updated by row key: only changed cells are written (the caller batches the repaint)."""

    def __init__(self, columns: tuple[tuple[str, str, bool], ...], *, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.spec = columns
        self.shown: dict[str, Row] = {}

    def on_mount(self) -> None:
        for key, label, right in self.spec:
            self.add_column(Text(label, justify="right" if right else "left"), key=key)

    def _cell(self, index: int, value: str) -> Text:
        return Text(value, justify="right" if self.spec[index][2] else "left")  # Text: never parsed as markup

    def apply(self, rows: Mapping[str, Row]) -> None:
        changes = row_changes(self.shown, rows)
        for key in changes.removed:
            self.remove_row(key)
        for key, row in changes.added:
            self.add_row(*(self._cell(i, v) for i, v in enumerate(row)), key=key)
        for key, index, value in changes.cells:  # widths only grow, and only when a value outgrows its old one
            grew = len(value) > len(self.shown[key][index])
            self.update_cell(key, self.spec[index][0], self._cell(index, value), update_width=grew)
        self.shown = dict(rows)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return key if isinstance(key, str) else None


class SessionsScreen(Screen[None]):
    CSS_PATH = "sessions.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "create", "New", id="sessions.create", tooltip="Create a paper session (form)"),
        Binding("s", "start", "Start", id="sessions.start", tooltip="Start the selected session (created, never run)"),
        Binding("x", "stop", "Stop", id="sessions.stop", tooltip="Stop the selected session at its next candle"),
        Binding("r", "resume", "Resume", id="sessions.resume",
                tooltip="Resume the selected session from its last checkpoint"),
        Binding("d", "delete", "Delete", id="sessions.delete",
                tooltip="Delete the selected session with its orders and fills (asks first)"),
    ]

    def __init__(self, facade: SessionsFacade, *, refresh_s: float = 1.0, max_orders: int = 50) -> None:
        super().__init__()
        self.facade = facade
        self.refresh_s = refresh_s
        self.max_orders = max_orders
        self._reading = False  # a store read is in flight: the timer skips its turn
        self._again = False  # ... and someone asked for a fresh one meanwhile
        self._last_error: str | None = None

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status")  # the app keeps it current
        yield KeyedTable(SESSION_COLUMNS, id="sessions-table")
        with Vertical(id="session-detail"):
            yield Static("no session selected", id="session-pnl")
            yield KeyedTable(POSITION_COLUMNS, id="session-positions")
            yield KeyedTable(ORDER_COLUMNS, id="session-orders")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#session-positions", KeyedTable).border_title = "Open positions"
        self.query_one("#session-orders", KeyedTable).border_title = "Order history (newest first)"
        self.query_one("#sessions-table", KeyedTable).border_title = "Paper sessions"
        self._poll = self.set_interval(self.refresh_s, self.refresh_now)
        self.refresh_now()

    def on_screen_suspend(self) -> None:
        self._poll.pause()  # another screen (or a dialog) is in view: no store reads for a screen nobody sees

    def on_screen_resume(self) -> None:
        self._poll.resume()
        self.refresh_now()

    @property
    def selected(self) -> str | None:
        return self.query_one("#sessions-table", KeyedTable).selected_key

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "sessions-table":
            self.refresh_now()  # the detail follows the cursor without waiting for the next tick

    # --- reading --------------------------------------------------------------------------

    def refresh_now(self) -> None:
        """Read the store now, or right after the read in flight (a new selection or a command's result
        must not wait for the next tick)."""
        if self._reading:
            self._again = True
            return
        self._reading, self._again = True, False
        self.run_worker(self._read(), group="sessions-read", exit_on_error=False)

    async def _read(self) -> None:
        try:
            summaries, detail = await self.facade.read(self.selected, self.max_orders)
        except Exception as exc:  # noqa: BLE001 - a worker boundary: said once, read again next tick
            self._read_failed(exc)
            return
        finally:
            self._reading = False
            if self._again:
                self.call_later(self.refresh_now)
        self._last_error = None
        with self.app.batch_update():
            self.query_one("#sessions-table", KeyedTable).apply({s.id: session_row(s) for s in summaries})
            self._show_detail(detail)

    def _read_failed(self, exc: Exception) -> None:
        if str(exc) != self._last_error:
            self._last_error = str(exc)
            show_error(self, exc)

    def _show_detail(self, detail: SessionDetail | None) -> None:
        self.query_one("#session-pnl", Static).update(
            Text(pnl_text(detail) if detail is not None else "no session selected: n creates one"))
        positions = {f"{p.symbol}:{p.side}": position_row(p) for p in detail.positions} if detail else {}
        orders = {o.client_id: order_row(o) for o in detail.orders} if detail else {}
        self.query_one("#session-positions", KeyedTable).apply(positions)
        self.query_one("#session-orders", KeyedTable).apply(orders)

    # --- commands -------------------------------------------------------------------------

    def _run(self, done: str, command: Callable[[], Awaitable[object]]) -> None:
        """Run `command` in a worker; say `done` (`{}`: what it returned) when it succeeded, show its error
        the typed way if not."""

        async def run() -> None:
            try:
                result = await command()
            except Exception as exc:  # noqa: BLE001 - a worker boundary: shown by its type, the screen goes on
                show_error(self, exc, retry=lambda: self._run(done, command))
            else:
                self.notify(done.replace("{}", str(result)))
            self.refresh_now()

        self.run_worker(run(), group="sessions-command", exit_on_error=False)

    def _selected_or_say(self) -> str | None:
        sid = self.selected
        if sid is None:
            self.notify("no session selected: n creates one", severity="warning")
        return sid

    def action_create(self) -> None:
        def created(result: dict[str, str] | None) -> None:
            if result:
                self.notify(f"session {result['id']} ({result['name']}) {result['status']}")
                self.refresh_now()

        self.app.push_screen(SessionFormDialog(self.facade), created)

    def action_start(self) -> None:
        if (sid := self._selected_or_say()) is not None:
            self._run(f"session {sid} started", lambda: self.facade.start(sid))

    def action_stop(self) -> None:
        if (sid := self._selected_or_say()) is not None:
            self.notify(f"stopping session {sid} at its next candle")
            self._run(f"session {sid}: {{}}", lambda: self.facade.stop(sid))  # stopped, or still stopping

    def action_resume(self) -> None:
        if (sid := self._selected_or_say()) is not None:
            self._run(f"session {sid} resumed", lambda: self.facade.resume(sid))

    def action_delete(self) -> None:
        sid = self._selected_or_say()
        if sid is None:
            return
        name = self.query_one("#sessions-table", KeyedTable).shown.get(sid, ("", "?"))[1]

        def answered(yes: bool | None) -> None:
            if yes:
                self._run(f"session {sid} deleted", lambda: self.facade.delete(sid))

        self.app.push_screen(ConfirmDialog(f"Delete session {sid} ({name}) with its orders and fills?", "Delete"),
                             answered)
