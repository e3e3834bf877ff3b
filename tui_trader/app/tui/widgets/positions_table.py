"""App layer: the positions table - the view model's rows, the liquidation bar coloured by band.

Why not a DataTable: measured with `bench/ui_load.py` (50 positions, 5 000 ticks/s), a DataTable
redraws every visible cell on any `update_cell`, 35-100 ms of blocked loop per 10 Hz frame - the
loop the watchdog shares. This widget keeps each row as a ready-made line (Textual's line API) and
rebuilds only the rows whose text changed; column widths only grow (never recomputed per tick), so a
repaint costs a few changed rows, not the table.

Rows are keyed "SYMBOL:SIDE" (what a close is asked for); the cursor stays on its row's key while
prices move and rows come and go. The header row stays in view while the rows scroll.

A terminal too narrow for every column leaves out the least needed ones first (`DROP_ORDER`: coins,
fair, last ...) rather than scroll the watchdog's state and the SL / TP off the right edge; the
table's subtitle names what is left out. Liquidation bar, P&L, liquidation price, size and the
watchdog's state are never left out.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui_trader.app.tui.view_models import BAR_COLUMN, COLUMNS, PositionRow
from tui_trader.domain.liquidation import Band

BAND_STYLE = {Band.GREEN: Style.parse("bold green"), Band.YELLOW: Style.parse("bold yellow"),
              Band.RED: Style.parse("bold white on red"), Band.LIQUIDATED: Style.parse("bold white on red")}
GAP = "  "
BAR_INDEX = COLUMNS.index(BAR_COLUMN)
DROP_ORDER = ("coins", "fair", "last", "in trade", "entry", "lev", "SL / TP", "ROE")  # first left out first


class PositionsTable(ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("home", "move(-1000000)", "First", show=False),
        Binding("end", "move(1000000)", "Last", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"positions-table--header", "positions-table--cursor"}
    DEFAULT_CSS = """
    PositionsTable > .positions-table--header { text-style: bold; color: $text; }
    PositionsTable > .positions-table--cursor { background: $primary 60%; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # (id: the name Textual gives it)
        super().__init__(id=id)
        self._keys: list[str] = []
        self._rows: dict[str, PositionRow] = {}
        self._strips: dict[str, Strip] = {}
        self._widths = [len(c) for c in COLUMNS]
        self._shown = tuple(range(len(COLUMNS)))  # the columns that fit the width, in COLUMNS order
        self._header = self._line(COLUMNS, None)
        self.cursor = 0

    # --- what tests and the screen read ---------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def selected_key(self) -> str | None:
        return self._keys[self.cursor] if self._keys else None

    def cell(self, key: str, column: str) -> str:
        return self._rows[key].cells[COLUMNS.index(column)]

    # --- updates ------------------------------------------------------------------------------

    def show(self, rows: list[PositionRow]) -> None:
        """Rows in order; only those whose text changed are rebuilt and repainted."""
        selected = self.selected_key
        grew = False
        for row in rows:
            for i, text in enumerate(row.cells):
                if len(text) > self._widths[i]:
                    self._widths[i], grew = len(text), True
        keys = [row.key for row in rows]
        refit = self._fit()
        whole = grew or refit or keys != self._keys
        if grew or refit:
            self._header = self._line(COLUMNS, None)
        changed: list[int] = []
        for i, row in enumerate(rows):
            before = self._rows.get(row.key)
            if whole or before is None or before.cells != row.cells:
                self._strips[row.key] = self._line(row.cells, row.bar.band)
                changed.append(i)
            self._rows[row.key] = row
        for gone in set(self._rows) - set(keys):
            del self._rows[gone], self._strips[gone]
        self._keys = keys
        if whole:
            self.cursor = keys.index(selected) if selected in keys else min(self.cursor, max(0, len(keys) - 1))
            self.virtual_size = Size(self._header.cell_length, len(keys) + 1)
            self.refresh()
            return
        top = self.scroll_offset.y
        for i in changed:
            self.refresh(Region(0, 1 + i - top, self.size.width, 1))

    def _line(self, cells: tuple[str, ...], band: Band | None) -> Strip:
        segments = [Segment(" ")]
        for i in self._shown:
            style = BAND_STYLE.get(band) if band is not None and i == BAR_INDEX else None
            segments.append(Segment(cells[i].ljust(self._widths[i]), style))
            segments.append(Segment(GAP))
        return Strip(segments)

    def _fit(self) -> bool:
        """Leave out columns in `DROP_ORDER` until the rest fit the width; True when the choice changed."""
        shown = list(range(len(COLUMNS)))
        room = self.size.width
        for name in DROP_ORDER:
            if not room or 1 + sum(self._widths[i] + len(GAP) for i in shown) <= room:
                break
            shown.remove(COLUMNS.index(name))
        if tuple(shown) == self._shown:
            return False
        self._shown = tuple(shown)
        left_out = [c for i, c in enumerate(COLUMNS) if i not in shown]
        self.border_subtitle = f"left out for width: {', '.join(left_out)}" if left_out else ""
        return True

    def on_resize(self) -> None:
        if self._fit():
            self._header = self._line(COLUMNS, None)
            for key, row in self._rows.items():
                self._strips[key] = self._line(row.cells, row.bar.band)
            self.virtual_size = Size(self._header.cell_length, len(self._keys) + 1)
            self.refresh()

    # --- drawing ------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        left, width = self.scroll_offset.x, self.size.width
        if y == 0:
            strip = self._header.apply_style(self.get_component_rich_style("positions-table--header"))
        else:
            index = self.scroll_offset.y + y - 1
            if index >= len(self._keys):
                return Strip.blank(width, self.rich_style)
            strip = self._strips[self._keys[index]]
            if index == self.cursor:
                strip = strip.apply_style(self.get_component_rich_style("positions-table--cursor"))
        return strip.crop_extend(left, left + width, self.rich_style).apply_style(self.rich_style)

    def action_move(self, step: int) -> None:
        if not self._keys:
            return
        before = self.cursor
        self.cursor = max(0, min(len(self._keys) - 1, self.cursor + step))
        rows_in_view = max(1, self.size.height - 1)
        if self.cursor < self.scroll_offset.y:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= self.scroll_offset.y + rows_in_view:
            self.scroll_to(y=self.cursor - rows_in_view + 1, animate=False)
        top = self.scroll_offset.y
        for index in (before, self.cursor):
            self.refresh(Region(0, 1 + index - top, self.size.width, 1))
