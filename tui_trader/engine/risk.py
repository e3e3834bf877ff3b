"""Engine layer: the risk guard between strategy intents and execution, and the kill switch.

Entries (never closes) are checked against the limits of `RiskConfig`: trading state, leverage,
position margin as % of equity, open positions plus pending entries. Equity is followed from
`AccountUpdated` events and marked to market from the cache once a second; a loss since 00:00 UTC
beyond `daily_loss_limit_pct`, or a drawdown from peak equity beyond `max_drawdown_pct`, trips the
kill switch: ACTIVE -> REDUCING (entries refused with the reason, closes allowed, every position
closed through `on_trip`, the emergency close-all) -> HALTED once flat. Why a state and not a flag:
a trader must see why nothing trades, and a restart must not quietly re-arm a tripped switch - the
state is persisted under `risk:trading_state` and only `reset()`, an explicit user action, returns
to ACTIVE.

A strategy's own `global_limits.daily_loss_limit_pct` (carried on its entries) is narrower: its
loss today on all its symbols - closing fills' P&L less every fee of its orders, plus its open
positions marked to market (strategy.md: realised + unrealised) - as % of the day's
starting equity; reached, that strategy's entries are refused until 00:00 UTC - the account and the
other strategies go on, its open positions still exit.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from enum import StrEnum
from typing import Callable

from tui_trader.domain.config import RiskConfig
from tui_trader.domain.errors import RiskRejected
from tui_trader.domain.events import AccountUpdated, Event, OrderFilled, PositionChanged, TradingStateChanged
from tui_trader.domain.intents import OpenPosition, strategy_of
from tui_trader.domain.models import Account, Position
from tui_trader.domain.money import to_decimal
from tui_trader.domain.time_format import utc_minute
from tui_trader.engine.bus import EventBus
from tui_trader.engine.cache import Cache
from tui_trader.engine.clock import Clock, TimerHandle
from tui_trader.engine.ports import KeyValueStore
from tui_trader.engine.state_writer import StateWriter

log = logging.getLogger(__name__)

STATE_KEY = "risk:trading_state"
DAY_MS = 86_400_000


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"  # everything allowed
    REDUCING = "REDUCING"  # closes only; the kill switch is closing every position
    HALTED = "HALTED"  # flat, nothing new until the user resets


class RiskGuard:
    """`RiskGate` for execution and a core service (`start()` restores the state, `run()` persists it)."""

    name = "risk"

    def __init__(self, bus: EventBus, clock: Clock, config: RiskConfig, state_store: KeyValueStore | None, *,
                 cache: Cache | None = None, on_trip: Callable[[str], object] | None = None) -> None:
        self.bus, self.clock, self.cfg, self.state_store, self.cache = bus, clock, config, state_store, cache
        self.on_trip = on_trip
        self.state = TradingState.ACTIVE
        self.reason = ""
        self.equity: Decimal | None = None
        self.peak_equity: Decimal | None = None
        self.day_start_ms = 0
        self.day_start_equity: Decimal | None = None
        self.strategy_day_ms = 0  # the UTC day `strategy_pnl` is for
        self.strategy_pnl: dict[str, Decimal] = {}  # strategy name -> realised P&L net of fees today
        self.writer = StateWriter(state_store)  # the kill switch, written by run()
        self._timer: TimerHandle | None = None
        self._started = False
        self._marked: tuple | None = None  # the last timer mark: equity and everything observe_equity compares it with
        self._price_dec: dict[str, tuple[float, Decimal]] = {}  # symbol -> its last fair price, as a Decimal
        self._unsubscribe = bus.subscribe(self._on_event, [AccountUpdated, PositionChanged, OrderFilled],
                                          name="risk")

    # --- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the persisted state (a tripped switch stays tripped) and announce it. Idempotent."""
        if self._started:
            return
        self._started = True
        data = await self.state_store.get_state(STATE_KEY) if self.state_store else None
        if data:
            self._restore(data)
        self.bus.publish(TradingStateChanged(self.clock.now_ms(), self.state.value, self.reason or ("restored" if data else "start")))
        self._arm_timer()
        if self.state is TradingState.REDUCING and self.on_trip is not None:
            self.on_trip(self.reason)  # a restart in the middle of a kill switch finishes the job

    async def run(self) -> None:
        await self.start()
        await self.writer.run()

    async def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.flush()

    async def flush(self) -> None:
        """Write the state if it changed (a failed write stays pending)."""
        await self.writer.flush()

    def snapshot(self) -> dict:
        def s(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        return {"state": self.state.value, "reason": self.reason, "peak_equity": s(self.peak_equity),
                "day_start_ms": self.day_start_ms, "day_start_equity": s(self.day_start_equity),
                "strategy_day_ms": self.strategy_day_ms,
                "strategy_pnl": {tag: str(v) for tag, v in self.strategy_pnl.items()}}

    def _restore(self, data: dict) -> None:
        def d(v: object) -> Decimal | None:
            return None if v is None else Decimal(str(v))

        self.state = TradingState(data.get("state", "ACTIVE"))
        self.reason = str(data.get("reason", ""))
        self.peak_equity = d(data.get("peak_equity"))
        self.day_start_ms = int(data.get("day_start_ms", 0))
        self.day_start_equity = d(data.get("day_start_equity"))
        self.strategy_day_ms = int(data.get("strategy_day_ms", 0))
        self.strategy_pnl = {str(k): Decimal(str(v)) for k, v in (data.get("strategy_pnl") or {}).items()}

    # --- the gate -------------------------------------------------------------------------

    def check_open(self, intent: OpenPosition, account: Account, open_positions: int, pending_entries: int) -> None:
        """Raise `RiskRejected` naming the limit when the entry is not allowed."""
        self.observe_equity(account.equity)
        if self.state is not TradingState.ACTIVE:
            raise RiskRejected(f"trading state is {self.state.value} ({self.reason}): entries refused until reset")
        cfg = self.cfg
        if intent.leverage > cfg.max_leverage:
            raise RiskRejected(f"leverage {intent.leverage}x is above max_leverage {cfg.max_leverage}x")
        if open_positions + pending_entries >= cfg.max_open_positions:
            raise RiskRejected(f"{open_positions} open + {pending_entries} pending positions: max_open_positions is {cfg.max_open_positions}")
        equity = account.equity
        margin = account.available * to_decimal(intent.size_pct) / 100
        if equity <= 0:
            raise RiskRejected(f"equity is {equity}: no entries")
        pct = margin / equity * 100
        if pct > to_decimal(cfg.max_position_pct):
            raise RiskRejected(f"position margin {pct:.2f} % of equity is above max_position_pct {cfg.max_position_pct:g} %")
        self._check_strategy_loss(intent)

    def _check_strategy_loss(self, intent: OpenPosition) -> None:
        limit = intent.daily_loss_limit_pct
        start = self.day_start_equity
        if limit is None or start is None or start <= 0:
            return
        self._roll_strategy_day()
        name = strategy_of(intent.tag)
        open_pnl = sum((self._upnl(p) for p in self.cache.positions.values() if strategy_of(p.tag) == name),
                       Decimal(0)) if self.cache is not None else Decimal(0)
        loss_pct = -(self.strategy_pnl.get(name, Decimal(0)) + open_pnl) / start * 100
        if loss_pct >= to_decimal(limit):
            raise RiskRejected(f"strategy {name} lost {loss_pct:.2f} % of the day's equity today: its "
                               f"daily_loss_limit_pct is {limit:g} % (entries refused until 00:00 UTC)")

    def _roll_strategy_day(self) -> None:
        now = self.clock.now_ms()
        day = now - now % DAY_MS
        if day != self.strategy_day_ms:
            self.strategy_day_ms, self.strategy_pnl = day, {}
            self._changed()

    def _on_fill(self, ev: OrderFilled) -> None:
        """Count a fill's realised P&L less its fee against its order's owner (the strategy's tag)."""
        order = self.cache.orders.get(ev.fill.client_id) if self.cache is not None else None
        if order is None or not order.tag:
            return
        self._roll_strategy_day()
        net, name = ev.fill.realized_pnl - ev.fill.fee, strategy_of(order.tag)
        if net:
            self.strategy_pnl[name] = self.strategy_pnl.get(name, Decimal(0)) + net
            self._changed()

    # --- equity and the kill switch -------------------------------------------------------

    def _on_event(self, ev: Event) -> None:
        if isinstance(ev, OrderFilled):
            self._on_fill(ev)
        elif isinstance(ev, AccountUpdated):
            self.observe_equity(ev.equity)
        elif isinstance(ev, PositionChanged):
            if ev.position.is_flat:
                self.confirm_flat()
            elif self._started:
                self._arm_timer()

    def observe_equity(self, equity: Decimal) -> None:
        """Track the day's start and the peak; trip the kill switch on a limit breach."""
        now = self.clock.now_ms()
        day = now - now % DAY_MS
        if day != self.day_start_ms or self.day_start_equity is None:
            self.day_start_ms, self.day_start_equity = day, equity
            self._changed()
        if self.peak_equity is None or equity > self.peak_equity:
            self.peak_equity = equity
            self._changed()
        self.equity = equity
        if self.state is not TradingState.ACTIVE:
            return
        start, peak = self.day_start_equity, self.peak_equity
        if start > 0 and (start - equity) / start * 100 >= to_decimal(self.cfg.daily_loss_limit_pct):
            self.trip(f"daily loss {(start - equity) / start * 100:.2f} % >= {self.cfg.daily_loss_limit_pct:g} % "
                      f"(since {_utc(day)})")
        elif peak > 0 and (peak - equity) / peak * 100 >= to_decimal(self.cfg.max_drawdown_pct):
            self.trip(f"drawdown {(peak - equity) / peak * 100:.2f} % from peak {peak:.2f} >= {self.cfg.max_drawdown_pct:g} %")

    def trip(self, reason: str) -> None:
        """Kill switch: ACTIVE -> REDUCING and close everything (no-op unless ACTIVE)."""
        if self.state is not TradingState.ACTIVE:
            return
        log.critical("kill switch: %s", reason)
        self._set(TradingState.REDUCING, reason)
        if self.on_trip is not None:
            self.on_trip(reason)
        self.confirm_flat()

    def enter_reducing(self, reason: str) -> None:
        """Emergency close-all by the user: same states as the kill switch (entries stay refused)."""
        if self.state is TradingState.ACTIVE:
            self._set(TradingState.REDUCING, reason)

    def confirm_flat(self) -> None:
        """REDUCING -> HALTED once no position is open (per the cache; unknown cache = assume flat)."""
        if self.state is TradingState.REDUCING and (self.cache is None or not self.cache.positions):
            self._set(TradingState.HALTED, self.reason)

    def reset(self, reason: str = "reset by user") -> None:
        """Explicit user action: back to ACTIVE; today's start and the peak restart from current equity
        (else the same breach would trip the switch again at once)."""
        if self.equity is not None:
            self.peak_equity = self.day_start_equity = self.equity
        self._set(TradingState.ACTIVE, reason)

    def _set(self, state: TradingState, reason: str) -> None:
        self.state, self.reason = state, reason
        self.bus.publish(TradingStateChanged(self.clock.now_ms(), state.value, reason))
        self._changed()

    def _changed(self) -> None:
        self.writer.put(STATE_KEY, self.snapshot())

    def _arm_timer(self) -> None:
        if self._timer is None and self.cache is not None and self.cache.positions:
            self._timer = self.clock.call_later(1.0, self._on_timer)

    def _on_timer(self) -> None:
        """Mark equity to market once a second while positions are open (paper reports the account
        only on fills; flat, equity changes only by reported fills and funding)."""
        self._timer = None
        try:
            equity = self.marked_equity()
            if equity is not None:
                now = self.clock.now_ms()
                mark = (equity, now - now % DAY_MS, self.state, self.peak_equity, self.day_start_equity, self.equity)
                if mark != self._marked:  # all as at the last mark: observing it again decides nothing
                    self._marked = mark
                    self.observe_equity(equity)
        finally:
            self._arm_timer()

    def marked_equity(self) -> Decimal | None:
        """Cash plus every position's P&L at the cached fair (else last) price - now (the dashboard's equity)."""
        cache = self.cache
        if cache is None or cache.account is None:
            return None
        return cache.account.cash_balance + sum((self._upnl(p) for p in cache.positions.values()), Decimal(0))

    def _upnl(self, pos: Position) -> Decimal:
        """A position's unrealised P&L at the cached mark (else last) price; 0 with no price."""
        price = self.cache.fair_price(pos.symbol) if self.cache is not None else None
        if price is None:
            return Decimal(0)
        held = self._price_dec.get(pos.symbol)
        if held is None or held[0] != price:  # (converted once per new price, not once a second)
            held = self._price_dec[pos.symbol] = (price, to_decimal(price))
        return pos.pnl_at(held[1])


def _utc(ts_ms: int) -> str:
    return utc_minute(ts_ms) + " UTC"
