"""App layer: the command palette lists every action the keys give, by name (ctrl+p).

A trader who forgot a key types "close" or "stop-loss" instead. The provider asks the app for the
actions of the screen in view and the app's own (`TraderApp.palette_actions`), so a new binding is
in the palette without being listed twice.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tui_trader.app.tui.app import TraderApp


class ActionsProvider(Provider):
    def _actions(self) -> list[tuple[str, str, Callable[[], Any]]]:
        return cast("TraderApp", self.app).palette_actions()

    async def discover(self) -> Hits:
        for title, help_text, run in self._actions():
            yield DiscoveryHit(title, partial(cast("TraderApp", self.app).call_later, run), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._actions():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(cast("TraderApp", self.app).call_later, run),
                          help=help_text)
