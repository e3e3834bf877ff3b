"""Venues layer: the MEXC WebSocket connection loop shared by the public and private streams.

Connect, run `on_open` (subscribe / login), read frames, send the text ping every
`ws_ping_interval_s`, declare a stall when nothing (not even a pong) arrives for
`ws_stall_timeout_s` - or, where market data must flow (`data_stall_s`, the public stream), when
no data frame arrives for that long while pongs still do - and reconnect with jittered exponential
back-off. After every reconnect the resync hook runs (positions and open orders over REST). Health
goes on the bus as `FeedStateChanged`; malformed frames are logged, counted and skipped (frames of a kind the
console does not use - no or an unknown channel, another currency's asset - are warned about once per kind).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
from typing import Any, Awaitable, Callable

import aiohttp

from tui_trader.domain.config import MexcConfig
from tui_trader.domain.errors import DataError, VenueError
from tui_trader.domain.events import Event, FeedStateChanged
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock
from tui_trader.venues.mexc import constants as C
from tui_trader.venues.mexc.parse import (
    FrameError,
    UnusedFrame,
    decode_frame,
    frame_events,
)

log = logging.getLogger(__name__)
Resync = Callable[[], Awaitable[None] | None]


class WsSession:
    """Base Service: subclasses implement `on_open(ws)`; `run()` never returns until `shutdown()`."""

    feed = "mexc"

    def __init__(self, config: MexcConfig, bus: EventBus, clock: Clock, *, resync: Resync | None = None,
                 session: aiohttp.ClientSession | None = None, sleep: Callable[[float], Awaitable[None]] | None = None,
                 rng: random.Random | None = None, name: str = "mexc-ws") -> None:
        self.config = config
        self.bus = bus
        self.clock = clock
        self.resync = resync
        self.report: Callable[[Event], None] | None = None  # account streams: execution's report sink
        self.name = name
        self.sleep = sleep or asyncio.sleep  # back-off waits; tests inject a recorder
        self.rng = rng or random.Random()
        self._session = session
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stopping = False
        self.state = "idle"
        self.connects = 0
        self.frames = 0
        self.bad_frames = 0
        self._unused_told: set[str] = set()  # kinds of unused frame (channel, currency) warned about once
        self.backoffs: list[float] = []
        self._last_pong = self._last_data = 0.0
        self.data_stall_s: float | None = None  # set where market data must flow (the public stream)

    def set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.bus.publish(FeedStateChanged(self.clock.now_ms(), feed=self.feed, state=state, detail=detail))

    async def on_open(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Subscribe / log in. Runs on every (re)connect."""

    def on_control(self, msg: dict[str, Any]) -> None:
        """A control frame (rs.*): subclasses react to login/subscription answers."""

    def backoff_s(self, attempt: int) -> float:
        """Full-jitter-ish back-off: initial * 2^attempt capped, times a factor in [0.5, 1]."""
        base = min(self.config.ws_reconnect_initial_s * 2 ** attempt, self.config.ws_reconnect_max_s)
        return base * (0.5 + 0.5 * self.rng.random())

    async def run(self) -> None:
        own = self._session is None
        session = self._session or aiohttp.ClientSession()
        attempt = 0
        try:
            while not self._stopping:
                connects_before = self.connects
                reason = await self._connect_once(session)
                if self._stopping:
                    break
                if self.connects > connects_before:
                    attempt = 0  # it was up: start the back-off from the beginning
                delay = self.backoff_s(attempt)
                attempt += 1
                self.backoffs.append(delay)
                self.set_state("reconnecting", f"{reason}; retry in {delay:.2f} s")
                await self.sleep(delay)
        finally:
            self.set_state("stopped")
            if own:
                await session.close()

    async def _connect_once(self, session: aiohttp.ClientSession) -> str:
        timeout = aiohttp.ClientWSTimeout(ws_close=2.0)
        try:
            async with session.ws_connect(self.config.ws_url, autoping=True, heartbeat=None, timeout=timeout,
                                          max_msg_size=8 * 1024 * 1024) as ws:
                self._ws = ws
                self.connects += 1
                await self.on_open(ws)
                self.set_state("connected", self.config.ws_url)
                if self.connects > 1:
                    await self._run_resync()
                return await self._read(ws)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            return f"connection failed: {type(exc).__name__}"
        finally:
            self._ws = None

    async def _run_resync(self) -> None:
        if self.resync is None:
            return
        try:
            result = self.resync()
            if inspect.isawaitable(result):
                await result
            self.set_state("resynced")
        except (VenueError, DataError) as exc:  # a reply that cannot be read: the next reconnect / audit reads again
            log.warning("resync after reconnect failed: %s", exc)
            self.set_state("resync_failed", str(exc)[:120])

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Read until the socket ends or stalls; returns the reason."""
        pinger = asyncio.create_task(self._ping(ws), name=f"{self.name}:ping")
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=self.config.ws_stall_timeout_s)
                except asyncio.TimeoutError:
                    self.set_state("stalled", f"no message for {self.config.ws_stall_timeout_s:g} s")
                    return "stalled"
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    self._handle(msg.data)
                    await self.bus.give_turn()  # a close the message started is sent before the next message
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    return "closed" if not self._stopping else "stopping"
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    return f"error: {type(ws.exception()).__name__}"
        finally:
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)
            await ws.close()

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """The text ping (mexc.md 8.1: the server drops a socket without a ping for 1 min)."""
        loop = asyncio.get_running_loop()
        self._last_pong = self._last_data = loop.time()
        overdue_s = 2 * self.config.ws_ping_interval_s + self.config.ws_stall_timeout_s
        while not ws.closed:
            if loop.time() - self._last_pong > overdue_s:  # pushes flow but pongs stopped
                self.set_state("stalled", "no pong")
                await ws.close()
                return
            silent_s = loop.time() - self._last_data
            if self.data_stall_s is not None and silent_s > self.data_stall_s:  # pongs flow, data does not
                self.set_state("stalled", f"no market data for {silent_s:.1f} s (pongs still answered)")
                await ws.close()
                return
            try:
                await ws.send_str(C.WS_PING)
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                return
            await asyncio.sleep(self.config.ws_ping_interval_s)

    def _handle(self, raw: bytes | str) -> None:
        self.frames += 1
        try:
            msg = decode_frame(raw)
            channel = str(msg.get("channel") or "")
            if channel == C.CH_PONG:
                self._last_pong = asyncio.get_running_loop().time()
                return
            if channel.startswith("rs."):
                self.on_control(msg)
                return
            self._last_data = asyncio.get_running_loop().time()  # data age: market messages only, never pongs
            events = self.events_of(msg)
        except UnusedFrame as exc:  # the same kind again and again (a channel MEXC added): said once
            self.bad_frames += 1
            log.log(logging.DEBUG if exc.kind in self._unused_told else logging.WARNING, "skipped MEXC frame: %s", exc)
            self._unused_told.add(exc.kind)
            return
        except FrameError as exc:
            self.bad_frames += 1
            log.warning("skipped malformed MEXC frame: %s", exc)
            return
        self.publish_all(events)

    def events_of(self, msg: dict[str, Any]) -> list[Event]:
        """The domain events of one decoded data frame (a stream with state of its own overrides this)."""
        return frame_events(msg, self.clock.now_ms())

    def publish_all(self, events: list[Event]) -> None:
        sink = self.report or self.bus.publish
        for event in events:
            sink(event)

    async def send_json(self, ws: aiohttp.ClientWebSocketResponse, payload: dict[str, Any]) -> None:
        await ws.send_str(json.dumps(payload, separators=(",", ":")))

    async def shutdown(self) -> None:
        """Stop reconnecting and close the socket (core calls this before cancelling)."""
        self._stopping = True
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
