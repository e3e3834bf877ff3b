"""App layer: `SessionsFacade` - the one typed way the dashboard reaches paper sessions.

Why: the sessions screen should not learn `SessionService`'s storage shapes (config dicts, domain
orders and fills) nor its error classes. The facade turns what a person typed in the form (strings)
into a session request, and answers in plain frozen dataclasses a view model formats. Errors leave
it typed for the dashboard's one error rule (`app/tui/errors.py`): a wrong value raises
`FieldInvalid` naming the form's widget id, network trouble raises `Retryable`, anything else is a
`TraderError` with a message a person can act on. No Textual here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import aiohttp

from tui_trader.app.facade import FieldInvalid, NotAvailable
from tui_trader.app.form_values import parse_balance, parse_leverage
from tui_trader.app.sessions import (
    InvalidSessionRequest,
    Performance,
    SessionInfo,
    SessionNotFound,
    SessionService,
)
from tui_trader.domain.errors import Retryable, TraderError
from tui_trader.domain.models import Fill, Order
from tui_trader.engine.core import TraderCore

__all__ = ["FieldInvalid", "NotAvailable", "SessionNotFound", "SessionStoreError", "SessionsFacade"]

BUNDLED, LIVE = "bundled", "live"  # the data field's two words; anything else is a candle file path
LIVE_STATUSES = frozenset({"running", "stopping"})  # figures still moving: never served from the cache

# request field (SessionService's name) -> form widget id (what the person typed it into)
FORM_FIELDS = {"name": "name", "strategy_file": "strategy", "symbols": "symbols", "starting_balance": "balance",
               "leverage": "leverage", "data_file": "data", "source": "data", "speed": "speed"}


class SessionStoreError(TraderError):
    """The session store could not be read or written (disk, database): the message says which command."""


@dataclass(frozen=True)
class SessionSummary:
    """One row of the sessions table: status and performance."""

    id: str
    name: str
    status: str  # created | running | stopping | stopped | finished | failed | interrupted
    source: str  # "bundled sample", a file name, or "MEXC live: SYM, ..."
    starting_balance: Decimal
    equity: Decimal
    net_pnl: Decimal  # equity - starting balance: realised and unrealised, after fees and funding
    trades: int  # closed round trips
    win_rate_pct: float
    error: str | None = None  # why it failed


@dataclass(frozen=True)
class SessionPositionView:
    symbol: str
    side: str
    contracts: Decimal
    entry: Decimal
    mark: Decimal | None
    liquidation: Decimal | None
    leverage: int
    margin: Decimal
    unrealized_pnl: Decimal


@dataclass(frozen=True)
class SessionFillView:
    ts_ms: int
    qty_contracts: Decimal
    price: Decimal
    fee: Decimal
    realized_pnl: Decimal


@dataclass(frozen=True)
class SessionOrderView:
    created_ms: int
    client_id: str
    side: str  # OPEN_LONG | CLOSE_LONG | OPEN_SHORT | CLOSE_SHORT
    qty_contracts: Decimal
    state: str
    reason: str
    fills: tuple[SessionFillView, ...]


@dataclass(frozen=True)
class SessionDetail:
    """The selected session: live P&L, its open positions and its order history (newest first)."""

    summary: SessionSummary
    realized_pnl: Decimal  # gross
    unrealized_pnl: Decimal
    fees: Decimal
    funding: Decimal
    max_drawdown_pct: float
    data_time_ms: int  # how far the session has got in its data
    positions: tuple[SessionPositionView, ...]
    orders: tuple[SessionOrderView, ...]
    orders_total: int  # orders stored (the list may be cut to the newest)


ScreenRead = tuple[list[SessionSummary], SessionDetail | None]  # the sessions and the selected one's detail


def source_label(config: Mapping[str, object]) -> str:
    """Where a session's candles come from, as a person would say it."""
    if config.get("source") == "mexc":
        symbols = config.get("symbols")
        return "MEXC live: " + ", ".join(str(s) for s in symbols) if isinstance(symbols, list) else "MEXC live"
    data = config.get("data_file")
    return Path(str(data)).name if data else "bundled sample"


def request_from_form(values: Mapping[str, str]) -> dict[str, object]:
    """The session request for the form's strings; a value that is not even the right kind of thing
    (text for a number) raises `FieldInvalid` here, ranges and files are the service's to check."""
    text = {k: str(v).strip() for k, v in values.items()}
    leverage = parse_leverage(text.get("leverage", ""))
    balance = parse_balance(text.get("balance", ""))  # its range is the service's to check
    if balance is None:
        balance = Decimal(10000)
    try:
        speed = float(text.get("speed") or "0")
    except ValueError:
        raise FieldInvalid("speed", "0 (as fast as possible), 1 (real time) or N (N x real time)") from None
    data = text.get("data", "")
    live = data.lower() in (LIVE, "mexc")
    strategy = text.get("strategy", "")
    return {
        "name": text.get("name", ""),
        "strategy_file": Path(strategy).expanduser() if strategy else None,
        "symbols": [s.upper() for s in text.get("symbols", "").replace(",", " ").split()],
        "starting_balance": float(balance),  # the request's own unit; stored and read back as Decimal(str(...))
        "leverage": leverage,
        "source": "mexc" if live else "replay",
        "data_file": None if live or data.lower() in ("", BUNDLED) else Path(data).expanduser(),
        "speed": speed,
    }


@asynccontextmanager
async def _typed_errors(command: str) -> AsyncIterator[None]:
    """Re-raise what escapes a service call as the type the dashboard branches on."""
    try:
        yield
    except InvalidSessionRequest as exc:
        field = FORM_FIELDS.get(exc.field or "")
        if field is None:
            raise
        raise FieldInvalid(field, str(exc)) from exc
    except TraderError:
        raise
    except (ConnectionError, TimeoutError, aiohttp.ClientConnectionError) as exc:
        raise Retryable(f"{command}: the network is unreachable ({exc})") from exc
    except (sqlite3.Error, OSError) as exc:
        raise SessionStoreError(f"{command}: the session store failed: {exc}") from exc


def _positions(info: SessionInfo) -> tuple[SessionPositionView, ...]:
    return tuple(SessionPositionView(p.symbol, p.side.value, p.contracts, p.entry_price, p.mark_price,
                                     p.liquidation_price, p.leverage, p.margin, p.unrealized_pnl)
                 for p in sorted(info.positions, key=lambda p: (p.symbol, p.side.value)))


def _orders(orders: list[Order], fills: list[Fill], limit: int) -> tuple[SessionOrderView, ...]:
    by_order: dict[str, list[SessionFillView]] = {}
    for f in fills:
        by_order.setdefault(f.client_id, []).append(
            SessionFillView(f.ts_ms, f.qty_contracts, f.price, f.fee, f.realized_pnl))
    newest = sorted(orders, key=lambda o: (o.created_ms, o.client_id), reverse=True)[:limit]
    return tuple(SessionOrderView(o.created_ms, o.client_id, o.side.name, o.qty_contracts, o.state.value, o.reason,
                                  tuple(by_order.get(o.client_id, ()))) for o in newest)


class SessionsFacade:
    """List, inspect, create, start, stop, resume and delete paper sessions (every method awaits the store:
    call them from a worker, never from a key handler)."""

    def __init__(self, core: TraderCore) -> None:
        self._core = core
        # finished figures do not move: (status, updated_ms) -> summary, so the 1 s list refresh
        # recomputes only the sessions that run; the same for the detail of a settled session in view
        self._settled: dict[str, tuple[tuple[str, int], SessionSummary]] = {}
        self._settled_detail: dict[str, tuple[tuple[str, int, int], SessionDetail]] = {}

    @property
    def _service(self) -> SessionService:
        service = self._core.components.get("sessions")
        if not isinstance(service, SessionService):
            raise NotAvailable("paper sessions are not available in this console")
        return service

    # --- queries --------------------------------------------------------------------------

    async def detail(self, session_id: str, max_orders: int = 50) -> SessionDetail:
        """The session's live P&L, open positions and its newest `max_orders` orders with their fills."""
        async with _typed_errors(f"show session {session_id}"):
            return await self._detail(await self._service.get(session_id), max_orders)

    async def read(self, selected: str | None, max_orders: int = 50) -> ScreenRead:
        """Every paper session, oldest first, with its status and performance, and the detail of `selected`
        (the first session when it is gone or None; no detail when there is no session, or it was deleted
        meanwhile) - what the sessions screen shows at each tick.

        Why one call: the selected session's performance is worked out once for its row and its detail,
        and its orders and fills are read once (a running session's figures are never cached).
        """
        async with _typed_errors("list sessions"):
            infos = await self._service.list()
        ids = [info.id for info in infos]
        wanted = selected if selected in ids else (ids[0] if ids else None)
        detail = None
        if wanted is not None:
            try:
                async with _typed_errors(f"show session {wanted}"):
                    detail = await self._detail(infos[ids.index(wanted)], max_orders)
            except SessionNotFound:  # deleted between the two reads: the next tick catches up
                detail = None
        async with _typed_errors("list sessions"):
            out = [detail.summary if detail is not None and info.id == wanted else await self._summary(info)
                   for info in infos]
        for gone in set(self._settled) - set(ids):
            del self._settled[gone]
        for gone in set(self._settled_detail) - set(ids):
            del self._settled_detail[gone]
        return out, detail

    async def _detail(self, info: SessionInfo, max_orders: int) -> SessionDetail:
        key = (info.status, info.updated_ms, max_orders)
        cached = self._settled_detail.get(info.id)  # (only settled sessions are kept, as for the summary)
        if cached is not None and cached[0] == key:
            return cached[1]
        perf, orders, fills = await self._service.performance_and_orders(info.id)
        detail = SessionDetail(self._remember(info, perf), perf.realized_pnl, perf.unrealized_pnl, perf.fees,
                               perf.funding, perf.max_drawdown_pct, info.cursor_ms, _positions(info),
                               _orders(orders, fills, max_orders), len(orders))
        if info.status not in LIVE_STATUSES:
            self._settled_detail[info.id] = (key, detail)
        return detail

    async def _summary(self, info: SessionInfo) -> SessionSummary:
        cached = self._settled.get(info.id)  # (only settled sessions are kept: a live status never matches)
        if cached is not None and cached[0] == (info.status, info.updated_ms):
            return cached[1]
        return self._remember(info, await self._service.performance(info.id))

    def _remember(self, info: SessionInfo, perf: Performance) -> SessionSummary:
        """The session's summary, kept when it is settled (its figures no longer move)."""
        summary = self._from(info, perf)
        if info.status not in LIVE_STATUSES:
            self._settled[info.id] = ((info.status, info.updated_ms), summary)
        return summary

    @staticmethod
    def _from(info: SessionInfo, perf: Performance) -> SessionSummary:
        return SessionSummary(info.id, info.name, info.status, source_label(info.config), perf.starting_balance,
                              perf.equity, perf.equity - perf.starting_balance, perf.trade_count, perf.win_rate_pct,
                              info.error)

    # --- commands -------------------------------------------------------------------------

    async def create(self, values: Mapping[str, str], *, start: bool = True) -> SessionSummary:
        """Create a session from the form's values (widget id -> text) and, by default, start it here.

        Raises:
            FieldInvalid: a value is wrong; `field` is the form widget to mark.
        """
        request = request_from_form(values)
        async with _typed_errors("create the session"):
            info = await self._service.create(request, start=start)
            return self._from(info, await self._service.performance(info.id))

    async def start(self, session_id: str) -> None:
        """Run a session that was created but never started (`sessions create --no-run`)."""
        async with _typed_errors(f"start session {session_id}"):
            status = (await self._service.get(session_id)).status
            if status != "created":
                hint = "resume it" if status in ("stopped", "interrupted", "failed") else "nothing to start"
                raise NotAvailable(f"session {session_id} is {status}: {hint}")
            await self._service.resume(session_id)  # (no checkpoint yet: a fresh start)

    async def stop(self, session_id: str) -> str:
        """Stop a session at its next candle boundary; returns its status after."""
        async with _typed_errors(f"stop session {session_id}"):
            return (await self._service.stop(session_id)).status

    async def resume(self, session_id: str) -> None:
        """Continue a stopped, interrupted or failed session from its last checkpoint, in this process."""
        async with _typed_errors(f"resume session {session_id}"):
            await self._service.resume(session_id)

    async def delete(self, session_id: str) -> None:
        """Delete a session that is not running, with its orders and fills."""
        async with _typed_errors(f"delete session {session_id}"):
            await self._service.delete(session_id)
        self._settled.pop(session_id, None)
        self._settled_detail.pop(session_id, None)
