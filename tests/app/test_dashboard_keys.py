"""Issue 21 acceptance: each key reaches the core - on the console's real paper core, through the dashboard.

`c` + confirm sends a reduce-only close of the selected position to the paper venue and the row goes;
`s` + a valid price moves the stop-loss on the paper venue's position; `K` + CLOSE empties the table.
(The positions are opened in the paper ledger on a symbol the test prices, as in test_stop_loss.py.)
"""

from __future__ import annotations

from decimal import Decimal as D

from tui_trader.app.tui.app import TraderApp
from tui_trader.app.tui.dialogs.confirm import ConfirmDialog, TypedConfirmDialog
from tui_trader.app.tui.dialogs.stop_loss import StopLossDialog
from tui_trader.app.tui.widgets.positions_table import PositionsTable
from tui_trader.domain.models import Side

from .test_stop_loss import SYM, paper  # noqa: F401 - the fixture: a real paper core, a symbol the test prices


async def _wait(pilot, cond, what: str, tries: int = 200) -> None:
    for _ in range(tries):
        if cond():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_c_s_and_K_reach_the_paper_venue(paper):  # noqa: F811 - the fixture
    sent = []
    place = paper.venue.place_order

    async def recording(order):
        sent.append(order)
        return await place(order)

    paper.venue.place_order = recording
    await paper.open(Side.SHORT)
    await paper.open(Side.LONG)
    app = TraderApp(paper.core)
    async with app.run_test(size=(200, 40), notifications=True) as pilot:
        table = app.screen.query_one(PositionsTable)
        await _wait(pilot, lambda: table.row_count == 2, "two rows")
        assert table.selected_key == f"{SYM}:LONG"  # rows sorted by symbol, side

        # s: the stop-loss of the selected long, checked as typed, reaches the paper venue
        await pilot.press("s")
        await _wait(pilot, lambda: isinstance(app.screen, StopLossDialog), "the stop-loss dialog")
        await pilot.press(*"98.5", "enter")
        await _wait(pilot, lambda: paper.venue.ledger.position(SYM, Side.LONG).stop_loss == D("98.5"),
                    "the stop on the paper venue")

        # c: a close of the selected row; Cancel has the focus, so Tab then Enter
        await pilot.press("down")
        assert table.selected_key == f"{SYM}:SHORT"
        await pilot.press("c")
        await _wait(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the close dialog")
        await pilot.press("tab", "enter")
        await _wait(pilot, lambda: any(o.reduce_only and o.symbol == SYM for o in sent), "a reduce-only close")
        close = next(o for o in sent if o.reduce_only)
        assert close.side.position_side is Side.SHORT
        await paper.tick(100.0)  # the paper venue fills at the next trade
        await _wait(pilot, lambda: table.row_count == 1 and table.selected_key == f"{SYM}:LONG", "the short gone")

        # K: every position closed reduce-only, the table empties
        await pilot.press("K")
        await _wait(pilot, lambda: isinstance(app.screen, TypedConfirmDialog), "the close-all dialog")
        await pilot.press(*"CLOSE", "enter")
        await _wait(pilot, lambda: sum(o.reduce_only for o in sent) == 2, "the long's close")
        await paper.tick(100.0)
        await _wait(pilot, lambda: table.row_count == 0, "an empty table")
        assert paper.stack.risk.state.value == "HALTED"
        await pilot.press("q")
