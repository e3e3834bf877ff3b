"""App layer: the positions table - the view model's rows, the liquidation bar coloured by band.

Rows are keyed "SYMBOL:SIDE" (what a close is asked for) and updated in place, so the cursor stays on
its position while prices move. Only cells whose text changed are written (a repaint at 10 Hz with 50
positions would otherwise rewrite 750 cells), and column widths are not recomputed per update.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from tui_trader.app.tui.view_models import BAR_COLUMN, COLUMNS, PositionRow
from tui_trader.domain.liquidation import Band

BAND_STYLE = {Band.GREEN: "bold green", Band.YELLOW: "bold yellow", Band.RED: "bold white on red",
              Band.LIQUIDATED: "bold white on red"}


class PositionsTable(DataTable[str | Text]):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self._shown: dict[str, tuple[str, ...]] = {}  # row key -> the cells written last
        for name in COLUMNS:
            self.add_column(name, key=name)

    def show(self, rows: list[PositionRow]) -> None:
        keys = {row.key for row in rows}
        for key in [k for k in self._shown if k not in keys]:
            self.remove_row(key)
            del self._shown[key]
        for row in rows:
            before = self._shown.get(row.key)
            if before == row.cells:
                continue
            style = BAND_STYLE.get(row.bar.band, "") if row.bar.band else ""
            cells = [Text(c, style=style) if name == BAR_COLUMN else c for name, c in zip(COLUMNS, row.cells)]
            if before is None:
                self.add_row(*cells, key=row.key)
            else:
                for name, old, new, value in zip(COLUMNS, before, row.cells, cells):
                    if old != new:
                        self.update_cell(row.key, name, value)
            self._shown[row.key] = row.cells

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
