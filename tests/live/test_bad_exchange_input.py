"""End to end on the fake MEXC: bad exchange input - broken private pushes, broken REST replies - and the keys.

The house rule: bad input gets a clear error naming the problem (an `ErrorRaised`, or a log line at WARNING
or above, that names the channel or route and the field); the console keeps running (every service task
alive, the private stream still logged in on the same socket, the REST polling still polling); nothing is
corrupted or lost (no position with a negative, NaN or made-up holding in the cache, no order whose filled
volume went down, an account not rewritten by a frame that is not the account's, no kill switch tripped by
garbage); and the API key and secret appear in no log record, no published event and no byte of the database.

1. Private pushes: each bad frame is the push the fake really sent for our entry (order, position or
   asset) with one field broken and stamped after it, delivered while our short is held; then the round
   trip is finished on private pushes and must be recorded right (later good pushes are still applied).
2. REST replies: `open_positions` (the position audit), `order/external` (the order lookup) and the order
   history (what closed a position the console did not see close) answer an HTML page, a non-JSON or empty
   body, `success: false` with a code nobody knows, an object where a list is expected (or the reverse),
   rows with missing fields (`BadMexc.bad_data`, this file's subclass of the fake; the shared fake is as it
   was). The console reports it, goes on, and once the fault is gone reads the exchange's truth. `order/get`
   (by order id) is not covered: the console never calls it (every lookup is by externalOid).
3. The keys: auth refusals, malformed replies and frames, failed sends - the known key and secret never leak.

Cases marked xfail(strict) show product bugs; their reasons say what goes wrong. They pass once fixed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from tests.live.filling_fake import LONG, FillingMexc
from tests.live.rig import SYM, LiveRig
from tests.live.test_push_ordering import (
    assert_never_backwards,
    assert_round_trip_right,
    liquidated_unseen,
)
from tests.venues.mexc.fake_exchange import API_KEY, SECRET, Fault
from tui_trader.backtest.recorder import stored_trades
from tui_trader.domain.events import ErrorRaised, OrderUpdated
from tui_trader.domain.models import Account, Order, Position, Side
from tui_trader.domain.strategy.state import Phase
from tui_trader.engine.order_tracker import EXTERNAL_TAG
from tui_trader.engine.risk import TradingState

ORDER, POSITION, ASSET = "push.personal.order", "push.personal.position", "push.personal.asset"
CALM, PUMP, DROP = 60000.0, 63600.0, 61000.0  # the FAST strategy enters short on the pump, takes profit on the drop
NEW_SYMBOL = "NEWLY_USDT"  # a contract the fake's (and so the console's) contract table does not have


class BadMexc(FillingMexc):
    """The filling fake whose REST routes can also answer `success: true` with any `data` (test-only fault).

    `bad_data(route, data, times)`: the next `times` requests to `route` get `{"success": true, "code": 0,
    "data": data}` - an object where a list is expected, rows with missing fields - queued with the fake's
    other faults (`fault(route, ...)`), in order."""

    def __init__(self) -> None:
        super().__init__()
        self._bad: dict[str, list[Any]] = defaultdict(list)

    def bad_data(self, route: str, data: Any, times: int = 1) -> None:
        self._bad[route].extend([data] * times)
        self.fault(route, "data", times=times)

    async def _apply(self, fault: Fault, request: web.Request) -> web.StreamResponse:
        if fault.kind == "data":
            data = self._bad[request.match_info.route.name or ""].pop(0)
            return web.json_response({"success": True, "code": 0, "data": data})
        return await super()._apply(fault, request)


@pytest.fixture
async def fake():
    exchange = BadMexc()
    await exchange.start()
    yield exchange
    await exchange.stop()


class Told:
    """What the console said: WARNING+ log lines of `tui_trader` and published `ErrorRaised`, from now on."""

    def __init__(self, rig: LiveRig) -> None:
        self.texts: list[str] = []
        self._wake = asyncio.Event()
        self._handler = logging.Handler(logging.WARNING)
        self._handler.emit = lambda record: self._add(f"{record.levelname} {record.name}: {record.getMessage()}")
        self._logger = logging.getLogger("tui_trader")
        self._logger.addHandler(self._handler)
        rig.bus.subscribe(lambda ev: self._add(f"ErrorRaised {ev.source}: {ev.message}"), [ErrorRaised],
                          name="test.told")

    def _add(self, text: str) -> None:
        self.texts.append(text)
        self._wake.set()

    def close(self) -> None:
        self._logger.removeHandler(self._handler)

    def find(self, words: tuple[str, ...]) -> str | None:
        for text in self.texts:
            if all(w.lower() in text.lower() for w in words):
                return text
        return None

    async def wait_for(self, words: tuple[str, ...], timeout: float = 1.0) -> str:
        """The first thing said naming every one of `words` (case-insensitive); fails after `timeout` s."""
        async def _wait() -> str:
            while (found := self.find(words)) is None:
                self._wake.clear()
                await self._wake.wait()
            return found
        try:
            return await asyncio.wait_for(_wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"nothing said names {words}; said: {self.texts}") from None


class Reader:
    """The private stream's frame handler, counted: a pushed text has been read (and its reports queued)
    when `wait(text)` returns - also for a frame that makes no report."""

    def __init__(self, rig: LiveRig) -> None:
        stream = rig.parts.user_stream
        handle = stream._handle
        self.read: list[Any] = []
        self._wake = asyncio.Event()

        def counted(raw: bytes | str) -> None:
            try:
                handle(raw)
            finally:
                self.read.append(raw)
                self._wake.set()

        stream._handle = counted  # type: ignore[method-assign]

    async def wait(self, text: str, timeout: float = 2.0) -> None:
        async def _wait() -> None:
            while text not in self.read:
                self._wake.clear()
                await self._wake.wait()
        await asyncio.wait_for(_wait(), timeout)


async def start(fake: BadMexc, tmp_path, **kw: Any) -> LiveRig:
    """The live stack on the fake with private pushes on, its private socket logged in."""
    rig = await LiveRig(fake, tmp_path / "live.sqlite", pushes=True, **kw).start()
    await fake.wait_ws(lambda f: len(f.ws_logged_in) == 1)
    return rig


def assert_alive(rig: LiveRig, connects: int | None = None) -> None:
    """Every service task still running; the private stream logged in (on the same socket: `connects`)."""
    ended = {t.get_name(): (t.exception() if not t.cancelled() else "cancelled") for t in rig.tasks if t.done()}
    assert ended == {}, f"service tasks ended: {ended}"
    stream = rig.parts.user_stream
    assert stream.logged_in and stream.state == "logged_in", stream.state
    if connects is not None:
        assert stream.connects == connects, "the private socket was dropped"


def _finite_positive(x: Decimal | None) -> bool:
    return x is not None and x.is_finite() and x > 0


def assert_sound(rig: LiveRig) -> None:
    """Nothing in the cache a trader could be misled by: holdings, prices and fills finite and positive."""
    for key, p in rig.stack.cache.positions.items():
        assert _finite_positive(p.contracts) and _finite_positive(p.entry_price), (key, p)
        assert _finite_positive(p.contract_size), (key, p)
    for o in rig.stack.cache.orders.values():
        assert o.filled_contracts.is_finite() and o.filled_contracts >= 0, o
        assert o.avg_fill_price is None or _finite_positive(o.avg_fill_price), o


@dataclass
class Snapshot:
    """What a bad frame must not change."""

    short: Position | None
    orders: dict[str, Order]
    account: Account | None
    connects: int

    @classmethod
    def of(cls, rig: LiveRig) -> Snapshot:
        c = rig.stack.cache
        return cls(c.position(SYM, Side.SHORT), dict(c.orders), c.account, rig.parts.user_stream.connects)

    def assert_unchanged(self, rig: LiveRig) -> None:
        c = rig.stack.cache
        short = c.position(SYM, Side.SHORT)
        assert self.short is not None and short is not None, "our short left the cache"
        assert short.same_holding(self.short), f"our short changed: {self.short} -> {short}"
        for cid, was in self.orders.items():
            now = c.orders[cid]
            assert now.filled_contracts >= was.filled_contracts, f"{cid}: filled {was.filled_contracts} -> down"
            assert (now.state, now.filled_contracts, now.avg_fill_price) == (
                was.state, was.filled_contracts, was.avg_fill_price), f"{cid}: {was} -> {now}"
        assert c.account == self.account, f"account rewritten: {self.account} -> {c.account}"
        assert rig.stack.risk is not None and rig.stack.risk.state is TradingState.ACTIVE, rig.stack.risk.reason


# --- 1. private push frames -------------------------------------------------------------------------------

MISSING = object()
_RAW = re.compile(r'"@@(.*?)@@"')


def raw(token: str) -> str:
    """A JSON token json.dumps cannot write (NaN, Infinity, 1e400), put in the text as it is."""
    return f"@@{token}@@"


def text_of(frame: dict[str, Any]) -> str:
    return _RAW.sub(r"\1", json.dumps(frame))


Bases = dict[str, dict[str, Any]]  # channel -> the frame the fake really pushed for our entry
Build = Callable[[Bases], str]


def broken(channel: str, **changes: Any) -> Build:
    """The real push of `channel` for our entry with `changes` (MISSING: the field left out), stamped after it."""
    def build(bases: Bases) -> str:
        frame = json.loads(json.dumps(bases[channel]))
        data = frame["data"]
        if "updateTime" in data:
            data["updateTime"] += 1  # newer than what was applied: never skipped as a late push
        frame["ts"] += 1
        for key, value in changes.items():
            if value is MISSING:
                data.pop(key, None)
            else:
                data[key] = value
        return text_of(frame)
    return build


def whole(frame: dict[str, Any] | str) -> Build:
    return lambda bases: frame if isinstance(frame, str) else text_of(frame)


def no_data(bases: Bases) -> str:
    return text_of({"channel": ORDER, "ts": bases[ORDER]["ts"] + 1})


def no_channel(bases: Bases) -> str:
    return text_of({"data": bases[ORDER]["data"], "ts": bases[ORDER]["ts"] + 1})


def new_symbol_order(bases: Bases) -> str:
    """A filled order on a contract the console has no detail for, placed elsewhere (no externalOid)."""
    frame = json.loads(json.dumps(bases[ORDER]))
    frame["data"].update(symbol=NEW_SYMBOL, externalOid="", orderId=9_100_000_000_000_000_001, side=1, positionId=77)
    frame["ts"] += 1
    return text_of(frame)


FRAMES = [
    # the frame itself
    pytest.param(whole("{not json"), ("frame", "JSON"), id="not-json"),
    pytest.param(no_channel, ("channel",), id="no-channel"),
    pytest.param(whole({"channel": "push.personal.bogus", "data": {"x": 1}}), ("push.personal.bogus",),
                 id="unknown-channel"),
    pytest.param(no_data, ("order", "data"), id="order-no-data"),
    # push.personal.order (our filled entry)
    pytest.param(broken(ORDER, side=MISSING), ("order", "side"), id="order-missing-side"),
    pytest.param(broken(ORDER, vol=MISSING), ("order", "vol"), id="order-missing-vol"),
    pytest.param(broken(ORDER, dealVol="abc"), ("order", "dealVol"), id="order-dealVol-abc"),
    pytest.param(broken(ORDER, dealVol=-5), ("order", "dealVol"), id="order-dealVol-negative"),
    pytest.param(broken(ORDER, dealVol=raw("NaN")), ("order", "dealVol"), id="order-dealVol-nan"),
    pytest.param(broken(ORDER, dealVol=raw("Infinity")), ("order", "dealVol"), id="order-dealVol-inf"),
    pytest.param(broken(ORDER, dealVol=raw("1e400")), ("order", "dealVol"), id="order-dealVol-1e400"),
    pytest.param(broken(ORDER, dealAvgPrice=-5), ("order", "dealAvgPrice"), id="order-price-negative"),
    pytest.param(broken(ORDER, dealAvgPrice=raw("NaN")), ("order", "dealAvgPrice"), id="order-price-nan"),
    pytest.param(broken(ORDER, side=9), ("order", "side"), id="order-unknown-side"),
    pytest.param(broken(ORDER, state=99), ("order", "state"), id="order-unknown-state"),
    # push.personal.position (our short)
    pytest.param(broken(POSITION, positionType=MISSING), ("position", "positionType"), id="position-missing-type"),
    pytest.param(broken(POSITION, holdVol=MISSING), ("position", "holdVol"), id="position-missing-holdVol"),
    pytest.param(broken(POSITION, holdVol="abc"), ("position", "holdVol"), id="position-holdVol-abc"),
    pytest.param(broken(POSITION, holdVol=-5), ("position", "holdVol"), id="position-holdVol-negative"),
    pytest.param(broken(POSITION, holdVol=raw("NaN")), ("position", "holdVol"), id="position-holdVol-nan"),
    pytest.param(broken(POSITION, holdVol=raw("1e400")), ("position", "holdVol"), id="position-holdVol-1e400"),
    pytest.param(broken(POSITION, holdAvgPrice=-5), ("position", "holdAvgPrice"), id="position-price-negative"),
    pytest.param(broken(POSITION, holdAvgPrice=raw("Infinity")), ("position", "holdAvgPrice"),
                 id="position-price-inf"),
    pytest.param(broken(POSITION, positionType=7), ("position", "positionType"), id="position-unknown-type"),
    pytest.param(broken(POSITION, symbol=NEW_SYMBOL), (NEW_SYMBOL, "contract size"), id="position-no-contract"),
    # push.personal.asset
    pytest.param(broken(ASSET, currency=MISSING), ("currency",), id="asset-missing-currency"),
    pytest.param(broken(ASSET, cashBalance=MISSING), ("cashBalance",), id="asset-missing-cash"),
    pytest.param(broken(ASSET, cashBalance="abc"), ("cashBalance",), id="asset-cash-abc"),
    pytest.param(broken(ASSET, cashBalance=raw("NaN")), ("cashBalance",), id="asset-cash-nan"),
    pytest.param(broken(ASSET, cashBalance=raw("1e400")), ("cashBalance",), id="asset-cash-1e400"),
    pytest.param(broken(ASSET, currency="USDC", cashBalance=3, availableBalance=3, positionMargin=0),
                 ("USDC",), id="asset-other-currency"),
]


async def entered(rig: LiveRig) -> Bases:
    """Our short entered and every push of it applied; the last order, position and asset pushes by channel."""
    await rig.hold(CALM, 12)
    await rig.until(lambda: rig.machine.phase is Phase.POSITION_ACTIVE, price=PUMP, max_s=40)
    await rig.fake.settle()
    await rig.quiesce()
    bases = {f["channel"]: f for f in rig.fake.private_pushes}  # the last of each
    assert bases[ORDER]["data"]["state"] == 3 and bases[POSITION]["data"]["positionType"] == 2
    return bases


async def finish_round_trip(rig: LiveRig) -> None:
    """The short closed on the drop; with order lookups off, only pushes can tell: recorded right."""
    await rig.until(lambda: rig.machine.phase is Phase.MONITORING, price=DROP, max_s=40)
    await rig.fake.settle()
    await rig.hold(DROP, 3)
    await assert_round_trip_right(rig)
    assert rig.fake.calls["external"] == 0  # the pushes did it


async def push_on_our_short(rig: LiveRig, reader: Reader, build: Build) -> Snapshot:
    """Our short entered, then the frame `build` makes from its pushes: read, and the console alive, sound
    and unchanged. Returns the snapshot taken before the push."""
    bases = await entered(rig)
    before = Snapshot.of(rig)
    text = build(bases)
    await rig.fake.push(text)
    await reader.wait(text)
    await rig.quiesce()
    assert_alive(rig, before.connects)
    assert_sound(rig)
    before.assert_unchanged(rig)
    return before


@pytest.mark.parametrize("build, words", FRAMES)
async def test_a_bad_private_push_is_reported_and_changes_nothing(fake, tmp_path, build, words):
    rig = await start(fake, tmp_path, order_poll_s=3600.0)
    told, reader = Told(rig), Reader(rig)
    try:
        before = await push_on_our_short(rig, reader, build)
        assert_never_backwards(rig)
        await told.wait_for(words)
        await finish_round_trip(rig)
        assert_alive(rig, before.connects)
    finally:
        told.close()
        await rig.stop()


async def test_an_order_on_a_contract_the_console_does_not_know_is_recorded_as_external(fake, tmp_path):
    """A filled order pushed for a symbol outside the console's contract table (placed elsewhere): stored and
    shown as someone else's, nothing of ours touched; the round trip after it is recorded right."""
    rig = await start(fake, tmp_path, order_poll_s=3600.0)
    reader = Reader(rig)
    try:
        await push_on_our_short(rig, reader, new_symbol_order)
        [theirs] = [e.order for e in rig.of(OrderUpdated) if e.order.symbol == NEW_SYMBOL]
        assert theirs.tag == EXTERNAL_TAG and theirs.client_id.startswith("ext-")
        assert rig.stack.cache.position(NEW_SYMBOL, Side.LONG) is None
        await finish_round_trip(rig)
    finally:
        await rig.stop()


async def test_a_burst_of_bad_pushes_then_good_ones_are_all_read(fake, tmp_path):
    """Every bad frame of the list above in one burst, between our entry and exit: the stream reads on, on the
    same socket, and the exit's good pushes that follow them are applied."""
    rig = await start(fake, tmp_path, order_poll_s=3600.0)
    reader = Reader(rig)
    try:
        bases = await entered(rig)
        connects, bad = rig.parts.user_stream.connects, rig.parts.user_stream.bad_frames
        texts = [text for text in (p.values[0](bases) for p in FRAMES if not p.marks)]
        for text in texts:
            await fake.push(text)
        await reader.wait(texts[-1])
        await rig.quiesce()
        assert rig.parts.user_stream.bad_frames - bad == len(texts) - 1  # all but the unknown-contract position
        assert_alive(rig, connects)
        assert_sound(rig)
        await finish_round_trip(rig)
        assert_alive(rig, connects)
    finally:
        await rig.stop()


# --- 2. REST replies -----------------------------------------------------------------------------------------

CLOSE_LANE_ATTEMPTS = 3  # client.py: a retryable failure is tried this often on the close lane (audits, history)
ENTRY_LANE_ATTEMPTS = 3  # RetryConfig.attempts: and on the entry lane (order lookups)


@dataclass(frozen=True)
class Reply:
    """A broken answer: one of the fake's faults (`kind`, `code`) or `data` in a success envelope."""

    kind: str
    data: Any = None
    code: int = 0
    retryable: bool = False

    def arm(self, fake: BadMexc, route: str, attempts: int, times: int = 1) -> int:
        """Answer the next call(s) to `route` this way (every retry of a retryable failure too); returns how many
        requests that is."""
        n = times * (attempts if self.retryable else 1)
        if self.kind == "data":
            fake.bad_data(route, self.data, times=n)
        else:
            fake.fault(route, self.kind, code=self.code, message="mystery refusal" if self.code else "", times=n)
        return n


HTML, NONJSON, EMPTY = Reply("html", retryable=True), Reply("nonjson", retryable=True), Reply("empty", retryable=True)
UNKNOWN_CODE = Reply("code", code=9999)

POSITION_REPLIES = [
    pytest.param(HTML, ("open_positions", "HTML"), id="html"),
    pytest.param(NONJSON, ("open_positions", "upstream timeout"), id="nonjson"),
    pytest.param(EMPTY, ("open_positions", "empty body"), id="empty"),
    pytest.param(UNKNOWN_CODE, ("open_positions", "9999", "mystery refusal"), id="unknown-code"),
    pytest.param(Reply("data", {"symbol": SYM, "positionType": LONG, "holdVol": 7}), ("open_positions", "list"),
                 id="object-not-list"),
    pytest.param(Reply("data", [{"symbol": SYM, "holdVol": 7}]), ("position", "positionType"),
                 id="row-missing-fields"),
]


@pytest.mark.parametrize("reply, words", POSITION_REPLIES)
async def test_a_bad_position_audit_reply_is_reported_and_the_next_audit_reads_the_truth(fake, tmp_path, reply,
                                                                                         words):
    """While pushes flow the positions are audited over REST every 10 s. A long opened elsewhere with its pushes
    lost is only seen by the audit: a broken answer is reported, the audit goes on, and the next one adopts it."""
    rig = await start(fake, tmp_path)
    told, stream = Told(rig), rig.parts.user_stream
    try:
        connects = stream.connects
        fake.push_loss = True
        fake.open_position(SYM, LONG, vol=7)  # the exchange's truth; nothing pushed
        sent = fake.calls["positions"] + reply.arm(fake, "positions", CLOSE_LANE_ATTEMPTS)
        await rig.run_until(lambda: fake.calls["positions"] >= sent, price=CALM, max_s=30)
        await told.wait_for(words)
        assert rig.stack.cache.position(SYM, Side.LONG) is None  # nothing made up from the broken answer
        polls = stream.polls
        await rig.run_until(lambda: stream.polls > polls and rig.stack.cache.position(SYM, Side.LONG) is not None,
                            price=CALM, max_s=30)
        await rig.quiesce()
        theirs = rig.stack.cache.position(SYM, Side.LONG)
        assert theirs is not None and (theirs.contracts, theirs.tag) == (7, EXTERNAL_TAG)
        assert rig.stack.watchdog is not None and (SYM, Side.LONG) in rig.stack.watchdog.watches
        assert_sound(rig)
        assert_alive(rig, connects)
    finally:
        told.close()
        await rig.stop()


LOOKUP_REPLIES = [
    pytest.param(HTML, 1, ("order/external", "HTML"), id="html"),
    pytest.param(NONJSON, 1, ("order/external", "upstream timeout"), id="nonjson"),
    pytest.param(EMPTY, 1, ("order/external", "empty body"), id="empty"),
    pytest.param(UNKNOWN_CODE, 1, ("order/external", "9999", "mystery refusal"), id="unknown-code"),
    # a list where the order object is expected, for every lookup of 20 s (longer than unknown_after_s)
    pytest.param(Reply("data", []), 10, ("order/external", "list"), id="list-not-object"),
    pytest.param(Reply("data", {"symbol": SYM, "state": 3}), 1, ("order", "side"), id="object-missing-fields"),
]


@pytest.mark.parametrize("reply, times, words", LOOKUP_REPLIES)
async def test_a_bad_order_lookup_reply_is_reported_and_a_later_lookup_books_the_fill(fake, tmp_path, reply, times,
                                                                                       words):
    """Pushes lost: only the lookups by externalOid (every 2 s) tell the entry's and the exit's outcome. The
    first lookup(s) of the entry get a broken answer: reported, and once it is gone the round trip is booked."""
    fake.push_loss = True
    rig = await start(fake, tmp_path)
    told = Told(rig)
    try:
        connects = rig.parts.user_stream.connects
        reply.arm(fake, "external", ENTRY_LANE_ATTEMPTS, times=times)
        await rig.hold(CALM, 12)
        await rig.run_until(lambda: rig.machine.phase is Phase.POSITION_ACTIVE and not fake.faults["external"],
                            price=PUMP, max_s=40)  # every broken answer given
        await told.wait_for(words)
        assert_sound(rig)
        await rig.run_until(lambda: rig.machine.phase is Phase.MONITORING, price=DROP, max_s=40)
        await rig.hold(DROP, 3)
        await assert_round_trip_right(rig)
        assert len([o for o in fake.orders if o["side"] == 3]) == 1  # one entry: nothing re-sent
        assert_alive(rig, connects)
    finally:
        told.close()
        await rig.stop()


async def test_a_bad_lookup_reply_after_an_ambiguous_create_does_not_send_the_entry_twice(fake, tmp_path):
    """The create is placed and filled, its answer lost; the client looks the order up by externalOid before any
    re-send, and both lookups are answered with a list. A reply it cannot read proves nothing: never re-send."""
    fake.push_loss = True
    fake.fault("create", "drop_after")
    fake.bad_data("external", [], times=2)
    rig = await start(fake, tmp_path)
    try:
        await rig.hold(CALM, 12)

        def settled() -> bool:  # the entry is at MEXC, both broken answers given, and its client has decided
            return bool(fake.orders) and not fake.faults["external"] and not any(
                rig.stack.execution.is_sending(o["externalOid"]) for o in fake.orders)

        for _ in range(40):  # the client waits on the clock (lookup delay, recv window): time moves regardless
            if settled():
                break
            rig.trade(PUMP)
            await rig.idle_or_waiting(real_s=0.05)
            rig.advance(1.0)
        assert settled()
        assert len([o for o in fake.orders if o["side"] == 3]) == 1
    finally:
        await rig.stop()


HISTORY_REPLIES = [
    pytest.param(HTML, ("order history", "HTML"), id="html"),
    pytest.param(NONJSON, ("order history", "upstream timeout"), id="nonjson"),
    pytest.param(EMPTY, ("order history", "empty body"), id="empty"),
    pytest.param(UNKNOWN_CODE, ("order history", "9999", "mystery refusal"), id="unknown-code"),
    pytest.param(Reply("data", {"rows": [{"symbol": SYM}]}), ("order history", "list"), id="object-not-list"),
    pytest.param(Reply("data", [{"symbol": SYM, "state": 3}]), ("order history", "side"), id="row-missing-fields"),
]


@pytest.mark.parametrize("reply, words", HISTORY_REPLIES)
async def test_a_bad_order_history_reply_still_reports_the_flat(fake, tmp_path, reply, words):
    """Our short liquidated with its pushes lost: the audit finds it gone and reads the order history for what
    closed it. A broken history is reported and the flat still reported: no phantom position is left."""
    fake.push_loss = True
    rig = await start(fake, tmp_path)
    told = Told(rig)
    try:
        connects = rig.parts.user_stream.connects
        reply.arm(fake, "history_orders", CLOSE_LANE_ATTEMPTS)
        await liquidated_unseen(rig)
        await rig.run_until(lambda: rig.stack.cache.position(SYM, Side.SHORT) is None, price=PUMP, max_s=20)
        await rig.quiesce()
        assert fake.faults["history_orders"] == []
        await told.wait_for(words)
        assert rig.machine.phase is not Phase.POSITION_ACTIVE
        assert rig.stack.watchdog is not None and (SYM, Side.SHORT) not in rig.stack.watchdog.watches
        [trade] = await stored_trades(rig.db, "")
        assert trade.closed
        assert_sound(rig)
        assert_alive(rig, connects)
    finally:
        told.close()
        await rig.stop()


async def test_a_liquidation_is_booked_once_the_order_history_is_readable_again(fake, tmp_path):
    fake.push_loss = True
    rig = await start(fake, tmp_path)
    try:
        HTML.arm(fake, "history_orders", CLOSE_LANE_ATTEMPTS)
        await liquidated_unseen(rig)
        await rig.run_until(lambda: rig.stack.cache.position(SYM, Side.SHORT) is None, price=PUMP, max_s=20)
        await rig.hold(PUMP, 25)  # the fault is gone: audits, lookups, anything that would catch up
        [deal] = [d for d in fake.deals if d["category"] == 2]
        [trade] = await stored_trades(rig.db, "")
        assert trade.closed and trade.liquidated and trade.gross_pnl == Decimal(str(deal["profit"]))
    finally:
        await rig.stop()


# --- 3. the keys never leak ----------------------------------------------------------------------------------


def assert_no_secret(rig: LiveRig, caplog: pytest.LogCaptureFixture, files: list[bytes]) -> None:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = "\n".join(formatter.format(r) for r in caplog.records)  # exception tracebacks included
    published = "\n".join(repr(e) for e in rig.events)
    for secret in (API_KEY, SECRET):
        assert secret not in logged, f"{secret[:6]}... in the log"
        assert secret not in published, f"{secret[:6]}... in a published event"
        for blob in files:
            assert secret.encode() not in blob, f"{secret[:6]}... in the database"


def database_bytes(rig: LiveRig) -> list[bytes]:
    return [p.read_bytes() for p in rig.db_path.parent.glob(f"{rig.db_path.name}*")]


async def test_auth_refusals_bad_replies_and_bad_frames_leak_neither_key_nor_secret(fake, tmp_path, caplog):
    """With DEBUG logging: the entry refused for the API key (602), the audit refused (401) and answered
    garbage, a lookup answered garbage, broken frames (one carrying the key: a frame is never logged verbatim);
    then a round trip. The key and the secret are in no log record, published event or database byte."""
    caplog.set_level(logging.DEBUG)
    fake.push_loss = True  # the lookups and audits (and their faults) do the work; the pushes below are tests'
    rig = await start(fake, tmp_path)
    reader = Reader(rig)
    try:
        fake.fault("create", "code", code=602, message="Signature verification failed!")
        await rig.hold(CALM, 12)
        await rig.run_until(lambda: any(e.order.state.is_terminal for e in rig.of(OrderUpdated)), price=PUMP,
                            max_s=40)
        assert any("refused the API key" in e.message for e in rig.of(ErrorRaised))
        fake.fault("positions", "code", code=401, message="Api key info invalid")
        for kind in ("html", "nonjson", "empty"):
            fake.fault("positions", kind, times=CLOSE_LANE_ATTEMPTS)
        fake.fault("external", "nonjson", times=ENTRY_LANE_ATTEMPTS)
        sent = fake.calls["positions"] + 1 + 3 * CLOSE_LANE_ATTEMPTS
        await rig.run_until(lambda: fake.calls["positions"] >= sent, price=CALM, max_s=60)
        for text in ("{not json", text_of({"channel": ORDER, "data": {"symbol": SYM, "dealVol": "abc"}}),
                     text_of({"channel": POSITION, "data": [API_KEY]})):
            await fake.push(text)
            await reader.wait(text)
        await rig.hold(CALM, 130)  # past the entry's cooldown
        await rig.until(lambda: rig.machine.phase is Phase.POSITION_ACTIVE, price=PUMP, max_s=40)
        await rig.until(lambda: rig.machine.phase is Phase.MONITORING, price=DROP, max_s=40)
        await rig.quiesce()
        assert_alive(rig)
        assert not any(fake.faults.values())  # every refusal and broken answer was given
    finally:
        await rig.stop()
    assert_no_secret(rig, caplog, database_bytes(rig))


async def test_an_error_message_echoing_the_api_key_does_not_leak_it(fake, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    rig = await start(fake, tmp_path)
    try:
        fake.fault("create", "code", code=602, message=f"Api key {API_KEY} is not valid for this IP")
        fake.fault("positions", "code", code=401, message=f"apiKey={API_KEY} permission denied")
        await rig.hold(CALM, 12)
        await rig.run_until(lambda: any(e.order.state.is_terminal for e in rig.of(OrderUpdated)), price=PUMP,
                            max_s=40)
        await rig.run_until(lambda: not fake.faults["positions"], price=CALM, max_s=30)
        await rig.quiesce()
    finally:
        await rig.stop()
    assert_no_secret(rig, caplog, database_bytes(rig))


def test_bad_number_tokens_are_what_the_cases_say():
    """The raw tokens reach the console as JSON numbers Python reads as NaN / infinity (not as strings)."""
    frame = json.loads(text_of({"a": raw("NaN"), "b": raw("Infinity"), "c": raw("1e400")}))
    assert math.isnan(frame["a"]) and frame["b"] == math.inf and frame["c"] == math.inf
