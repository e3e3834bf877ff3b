"""App layer: the positions table - the view model's rows, the liquidation bar coloured by band.

Rows are keyed "SYMBOL:SIDE" (what a close is asked for) and updated in place, so the cursor stays on
its position while prices move.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from tui_trader.app.tui.view_models import COLUMNS, PositionRow
from tui_trader.domain.liquidation import Band

BAND_STYLE = {Band.GREEN: "bold green", Band.YELLOW: "bold yellow", Band.RED: "bold white on red",
              Band.LIQUIDATED: "bold white on red"}


class PositionsTable(DataTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        for name in COLUMNS:
            self.add_column(name, key=name)

    def show(self, rows: list[PositionRow]) -> None:
        keys = {row.key for row in rows}
        for key in [k for k in self.rows if k.value not in keys]:
            self.remove_row(key)
        for row in rows:
            style = BAND_STYLE.get(row.bar.band, "") if row.bar.band else ""
            cells = [*row.cells[:-1], Text(row.cells[-1], style=style)]
            if row.key in {k.value for k in self.rows}:
                for name, value in zip(COLUMNS, cells):
                    self.update_cell(row.key, name, value)
            else:
                self.add_row(*cells, key=row.key)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
