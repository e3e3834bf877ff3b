"""Venues layer: `MexcUserStream` - private pushes (orders, positions, assets) with REST fallback.

Logs in on every connect (mexc.md 8.4) and filters pushes to the configured symbols. While not
logged in - no keys, login refused, or the socket down - it polls `poll` (positions and open
orders over REST, e.g. `MexcVenue.resync`) every `poll_interval_s` on the injected clock, so the
engine keeps seeing its positions either way; while logged in, every `position_audit_s` (a push
can be lost on a live socket). Publishes OrderUpdated, PositionChanged and
AccountUpdated, and FeedStateChanged(feed="mexc-private").
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import replace
from decimal import Decimal
from typing import Any, Awaitable, Callable

import aiohttp

from tui_trader.domain.events import Event, PositionChanged

from tui_trader.domain.errors import DataError, VenueError
from tui_trader.venues.mexc import constants as C
from tui_trader.venues.mexc.auth import Signer
from tui_trader.venues.mexc.ws_session import WsSession

log = logging.getLogger(__name__)


class MexcUserStream(WsSession):
    """Private stream. `signer` None = polling only; `poll` is the REST fallback coroutine."""

    feed = "mexc-private"

    def __init__(self, *args: Any, signer: Signer | None, symbols: list[str],
                 poll: Callable[[], Awaitable[None] | None] | None = None, request_time_ms: Callable[[], int] | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("name", "mexc-user")
        super().__init__(*args, **kwargs)
        self.signer = signer
        self.symbols = list(symbols)
        self.poll = poll
        self.request_time_ms = request_time_ms or self.clock.now_ms
        # holdVol is in contracts: a pushed position means nothing without its contract size
        self.contract_size: Callable[[str], Decimal | None] | None = None
        self.unsized_positions = 0
        self.logged_in = False
        self.login_refused = False
        self.polls = 0
        self._closing: asyncio.Task[None] | None = None

    async def on_open(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        assert self.signer is not None
        self.logged_in = False
        await self.send_json(ws, self.signer.ws_login(self.request_time_ms()))
        if self.symbols:
            filters = [{"filter": f, "rules": self.symbols} for f in ("order", "position")] + [{"filter": "asset"}]
            await self.send_json(ws, {"method": "personal.filter", "param": {"filters": filters}})

    def on_control(self, msg: dict[str, Any]) -> None:
        if msg.get("channel") == C.CH_LOGIN:
            if msg.get("data") == "success":
                self.logged_in = True
                self.set_state("logged_in")
            else:
                self._refused(str(msg.get("data")))
        elif msg.get("channel") == C.CH_ERROR and not self.logged_in:
            self._refused(str(msg.get("data")))

    def _refused(self, why: str) -> None:
        why = (self.signer.scrub(why) if self.signer is not None else why)[:120]  # a refusal may echo the key
        log.warning("MEXC private login refused (%s): falling back to REST polling", why)
        self.logged_in = False
        self.login_refused = True
        self.set_state("login_failed", why)
        self._stopping = True  # keys will not start working by reconnecting; polling takes over
        if self._ws is not None:  # keep the task referenced until it is done
            self._closing = asyncio.get_running_loop().create_task(self._ws.close())

    def publish_all(self, events: list[Event]) -> None:
        sized: list[Event] = []
        for ev in events:
            if isinstance(ev, PositionChanged) and self.contract_size is not None:
                size = self.contract_size(ev.position.symbol)
                if size is None:  # never guess: a BTC position read with size 1 is 10 000x too big
                    self.unsized_positions += 1
                    log.warning("position push for %s skipped: contract size unknown (REST resync follows)",
                                ev.position.symbol)
                    continue
                ev = PositionChanged(ev.ts_ms, replace(ev.position, contract_size=size), ev.reason)
            sized.append(ev)
        super().publish_all(sized)

    async def run(self) -> None:
        poller = asyncio.create_task(self._poll_loop(), name=f"{self.name}:poll")
        try:
            if self.signer is None:
                self.set_state("polling", "no API keys for private pushes")
                await poller
            else:
                await super().run()
                if self.login_refused:
                    await poller
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)

    async def _poll_loop(self) -> None:
        """Every `poll_interval_s` while not logged in; every `position_audit_s` while pushes flow, because a
        logged-in socket can still lose a push (a position the cache does not know is not guarded)."""
        since_audit = 0.0
        while True:
            due = not self.logged_in or since_audit >= self.config.position_audit_s
            if due and self.poll is not None:
                since_audit = 0.0
                try:
                    result = self.poll()
                    if inspect.isawaitable(result):
                        await result
                    self.polls += 1
                except (VenueError, DataError) as exc:  # a reply it cannot read: said, and the next audit reads again
                    log.warning("REST polling failed: %s", exc)
            await self.clock.sleep(self.config.poll_interval_s)
            since_audit += self.config.poll_interval_s

    async def shutdown(self) -> None:
        await super().shutdown()
