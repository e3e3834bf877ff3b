"""Domain layer: the strategy state machine for one (strategy, symbol) - strategy.md §4.

Pure and synchronous: every entry point takes `now_ms`, decides, changes state, and returns the
intents for execution (it never talks to a venue). Because nothing awaits between "condition
true" and "state changed", a repeated S1 or Z1 cannot produce a second entry (defect D1).

Rules that close the original's defects:
* S1 sends no order; only Z1 emits `OpenPosition`, once, from SIGNAL_DETECTED (D1, D5).
* The cooldown is a timestamp that gates only S1; it starts when the venue reports flat (D3).
* POSITION_ACTIVE: E1, then ZE1, then software SL/TP, then max hold - first hit wins (D8 via
  `match`). EXIT_PENDING is left only when the position is reported flat (D2, D4).
* A failed close is re-sent with back-off 0.5, 1, 2 ... capped 10 s, under a new leg id
  (`X`, `X2`, `X3` ...); a close reject saying the position does not exist means already flat.
  Retries and re-sends are driven by later ticks' `now_ms`, never by timers of their own.

Choices where the reference is silent: a position carrying this machine's tag that appears while
MONITORING (late entry fill, restart) is adopted as POSITION_ACTIVE so E1 covers it; an entry
with no answer at all after `ENTRY_GIVE_UP_TIMEOUTS` fill timeouts (the cancel included; the due
times of every timed rule: `deadlines.py`) is
written off (O1 cooldown) - should it fill later, adoption covers it; a close
with no flat report after `EXIT_RESEND_S` is re-sent under a new leg (reduce-only closes cannot
overshoot); E1 while a close is in flight only upgrades the reason (closes are already market).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from tui_trader.domain.indicators.position import momentum_reversal, next_peak, unrealized_pnl_pct
from tui_trader.domain.intents import CancelOrders, ClosePosition, Intent, OpenPosition, machine_tag, make_client_id
from tui_trader.domain.models import Order, OrderState, OrderType, Position, Side
from tui_trader.domain.strategy import deadlines
from tui_trader.domain.strategy.conditions import section_fires, section_may_fire
from tui_trader.domain.strategy.exits import close_retry_delay_s, position_gone
from tui_trader.domain.strategy.overlay import Overlay
from tui_trader.domain.strategy.schema import Condition, MomentumReversalSpec, PnlSpec, Section, Strategy
from tui_trader.domain.strategy.state import EMERGENCY_REASONS, MachineState, Phase
from tui_trader.domain.strategy.warmup import warmup_s

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Transition:
    ts_ms: int
    source: Phase
    target: Phase
    reason: str
    detail: str = ""


class StrategyMachine:
    """MONITORING -> SIGNAL_DETECTED -> ENTRY_PENDING -> POSITION_ACTIVE -> EXIT_PENDING -> MONITORING."""

    def __init__(self, strategy: Strategy, symbol: str, state: MachineState | None = None) -> None:
        if strategy.direction not in ("LONG", "SHORT"):
            raise ValueError(f"a machine trades one side, not {strategy.direction}")
        self.strategy = strategy
        self.symbol = symbol
        self.tag = machine_tag(strategy.strategy_name, symbol)
        self.side = Side(strategy.direction)
        self.state = state or MachineState()
        self.transitions: list[Transition] = []
        self.dirty = False  # state changed since the owner last persisted it
        self.s1_blocked = 0  # S1 true but cooldown / limit / warm-up (row 2), in the steps that ran
        self.last_price: float | None = None
        self._at_close = False  # inside on_bar (bar mode: decisions belong to the bar that just closed)
        self.bar = 0  # bar mode: the last bar stepped (the indicators' count; set by every on_bar)
        self._warm_from_ms: int | None = None
        self._warmup_ms = round(warmup_s(strategy) * 1000)
        used = strategy.used_indicators()
        self._pnl_names = [n for n, s in used.items() if isinstance(s, PnlSpec)]
        self._mri = {n: s for n, s in used.items() if isinstance(s, MomentumReversalSpec)}
        self._own_undefined: dict[str, float | None] = dict.fromkeys([*self._pnl_names, *self._mri])  # never mutated

    # --- persistence ------------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self.state.phase

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "tag": self.tag, "state": self.state.to_dict()}

    @classmethod
    def from_dict(cls, strategy: Strategy, symbol: str, data: Mapping[str, Any]) -> "StrategyMachine":
        return cls(strategy, symbol, MachineState.from_dict(dict(data.get("state", {}))))

    def drain_transitions(self) -> list[Transition]:
        out, self.transitions = self.transitions, []
        return out

    # --- entry points -----------------------------------------------------------------------

    def on_bar(
        self, now_ms: int, values: Mapping[str, float | None], *, price: float, bar: int, entries_allowed: bool = True
    ) -> list[Intent]:
        """Bar mode: the step at the close of bar number `bar` (bars counted by the indicators), with
        the bar indicators after it and its close. S1 and Z1 may both fire in it (the entry goes out
        at this close) - not when a position of this machine closed in this bar: one order a bar, as
        a bar backtest. An exit belongs to the bar it was decided in: at a close, that bar (a time
        stop or E1 at bar N's close fills after it and still lets N+1 enter); between closes (a
        deadline, the venue's SL / TP), the bar in progress."""
        self.bar, self._at_close, allowed = bar, True, entries_allowed and self.state.exit_bar != bar
        try:
            return self.on_tick(now_ms, values, price=price, entries_allowed=allowed)
        finally:
            self._at_close = False

    def on_deadline(self, now_ms: int, values: Mapping[str, float | None]) -> list[Intent]:
        """Bar mode: a step between bar closes, at `next_deadline_ms` - timeouts, max hold, close
        re-sends. Nothing is entered here (S1 and Z1 are decided at bar closes only)."""
        phase = self.state.phase
        if phase is Phase.MONITORING:  # (no deadline there: nothing to do)
            return []
        if phase is Phase.SIGNAL_DETECTED:
            if now_ms >= deadlines.signal_expires_ms(self.state, self.strategy):
                return self._abandon(now_ms, "TIMEOUT", self.strategy.o1_cancel.cooldown_s)
            return []
        return self.on_tick(now_ms, values)

    def next_deadline_ms(self) -> int | None:
        """Bar mode: when a step between bar closes could change something (None: not before the
        next bar): the due times the phase handlers act on (`deadlines.py`)."""
        return deadlines.next_deadline_ms(self.state, self.strategy)

    def on_tick(
        self, now_ms: int, values: Mapping[str, float | None], *, price: float | None = None, entries_allowed: bool = True
    ) -> list[Intent]:
        """One evaluation step with the latest market values (never skipped, never throttled)."""
        if self._warm_from_ms is None:
            self._warm_from_ms = now_ms
        if price is not None:
            self.last_price = price
        self._roll_day(now_ms)
        if self.state.phase is Phase.SIGNAL_DETECTED:
            self._track_peaks(values)
        vals = self._with_own_values(values)
        phase = self.state.phase
        if phase is Phase.MONITORING:
            out = self._monitoring(now_ms, vals, entries_allowed)
            if self._at_close and self.state.phase is Phase.SIGNAL_DETECTED:  # bar mode: S1 and Z1 at one close
                out += self._signal(now_ms, self._with_own_values(values), entries_allowed)
            return out
        if phase is Phase.SIGNAL_DETECTED:
            return self._signal(now_ms, vals, entries_allowed)
        if phase is Phase.ENTRY_PENDING:
            return self._entering(now_ms, vals)
        if phase is Phase.POSITION_ACTIVE:
            return self._active(now_ms, vals)
        return self._exiting(now_ms, vals)

    def quiet_until(self, now_ms: int, bounds: Callable[[str], "tuple[float, float] | None"], horizon_ms: int,
                    blocker: Callable[[Condition], None] | None = None) -> int:
        """Time before which a step with no new market data provably changes nothing (`now_ms`: none).

        `bounds(indicator)` is the range a market indicator can take over `[now, now + horizon]`
        (None: undefined throughout). Only MONITORING is analysed - by far the commonest phase: its
        steps change the state only when S1 fires (and at the UTC day roll), so while S1 cannot
        fire over the horizon the steps in it are no-ops - and while a firing S1 would be blocked
        (`entry_blocked_until`: a cooldown, the day's limit, the warm-up) they are too, whatever
        the market does. Other phases carry timers, peaks and position values: they are stepped
        every time. `blocker` hears the S1 conditions that keep it from firing (see
        `section_may_fire`)."""
        if self.state.phase is not Phase.MONITORING:
            return now_ms
        day_end = _day_end(now_ms)
        blocked = self.entry_blocked_until(now_ms)
        if blocked > now_ms:  # S1 cannot start a signal whatever the market does: nothing to bound
            return min(blocked, day_end)
        own = self._own_undefined  # the machine's own values are undefined while monitoring

        def rng(name: str) -> "tuple[float, float] | None":
            return None if name in own else bounds(name)

        if section_may_fire(self.strategy.s1_signal, rng, blocker):
            return now_ms
        return min(now_ms + horizon_ms, day_end)

    def entry_blocked_until(self, now_ms: int) -> int:
        """While MONITORING: until when a firing S1 would be blocked (a cooldown, the day's trade
        limit - until the day rolls -, the warm-up), so a step before then changes nothing
        whatever the indicators say; `now_ms` when it would not. (`max_open_positions` is left
        out: other machines decide it; and a step that rolls the day is always due.)"""
        st, until = self.state, now_ms
        if self.new_day(now_ms):
            return now_ms
        if now_ms < st.cooldown_until_ms:
            until = st.cooldown_until_ms
        if not self._day_ok():
            until = max(until, _day_end(now_ms))
        if self._warm_from_ms is not None and now_ms - self._warm_from_ms < self._warmup_ms:
            until = max(until, self._warm_from_ms + self._warmup_ms)
        return until

    def step_changes_nothing(self, now_ms: int, values: Mapping[str, float | None], price: float | None) -> bool:
        """Would `on_tick(now_ms, values, price=price)` change nothing? Known for the two phases
        whose steps only decide: MONITORING (S1 does not fire, or would be blocked by a cooldown,
        the day's limit or the warm-up; the price a step would note is
        read by no decision before the next step notes it again) and POSITION_ACTIVE (no exit
        is due; the P&L uses the noted price, so it must be `price`). Never on a new UTC day
        (that step rolls the daily counters)."""
        if self.new_day(now_ms):
            return False
        phase = self.state.phase
        if phase is Phase.MONITORING:
            blocked = self.entry_blocked_until(now_ms) > now_ms  # (a firing S1 would change nothing either)
            return blocked or not section_fires(self.strategy.s1_signal, self._with_own_values(values))
        if phase is Phase.POSITION_ACTIVE and (price is None or price == self.last_price):
            return self._exit_reason(now_ms, self._with_own_values(values)) is None
        return False

    def on_order_update(self, now_ms: int, order: Order) -> list[Intent]:
        """React to an order of this machine (entry fill / reject, close reject)."""
        st = self.state
        if order.tag != self.tag:
            return []
        if st.phase is Phase.ENTRY_PENDING and order.client_id == st.entry_client_id:
            return self._entry_update(now_ms, order)
        if st.phase is Phase.EXIT_PENDING and order.client_id == st.exit_client_id:
            if order.state in (OrderState.REJECTED, OrderState.CANCELLED):
                if position_gone(order.reason):
                    return self._flat(now_ms, "ALREADY_FLAT")
                return self._close_failed(now_ms, order.reason or order.state.value)
        return []

    def on_position_changed(self, now_ms: int, position: Position, reason: str = "") -> list[Intent]:
        """React to the venue's view of this machine's position (`contracts == 0` = flat)."""
        if position.tag != self.tag or position.symbol != self.symbol:
            return []
        st, flat = self.state, position.is_flat
        if st.phase is Phase.EXIT_PENDING:
            if flat:
                return self._flat(now_ms, "FLAT")
            st.contracts = float(position.contracts)
            self.dirty = True
            return []
        if flat:
            if st.phase is Phase.POSITION_ACTIVE:  # row 12: SL / TP / liquidation / manual
                self._mark_exit_bar(1)  # (the venue's, inside the bar in progress)
                why = (reason or "GONE").upper()  # unknown causes get the emergency cooldown
                st.exit_reason = why if why in EMERGENCY_REASONS or why in ("TP", "MANUAL") else "SL"
                return self._flat(now_ms, why)
            return []
        if st.phase is Phase.POSITION_ACTIVE:
            st.entry_price, st.contracts = float(position.entry_price), float(position.contracts)
            self.dirty = True
            return []
        why = "FILLED" if st.phase is Phase.ENTRY_PENDING else "ADOPTED"
        if why == "ADOPTED":
            st.signal_seq += 1  # its close ids must not repeat an earlier position's
        return self._opened(now_ms, float(position.entry_price), float(position.contracts), why)

    # --- phases -----------------------------------------------------------------------------

    def _monitoring(self, now: int, vals: Mapping[str, float | None], entries_allowed: bool) -> list[Intent]:
        st = self.state
        if not section_fires(self.strategy.s1_signal, vals):
            return []
        warm = self._warm_from_ms is not None and now - self._warm_from_ms >= self._warmup_ms
        if now < st.cooldown_until_ms or not warm or not entries_allowed or not self._day_ok():
            self.s1_blocked += 1
            return []
        st.signal_seq += 1
        st.t_signal_ms = now
        st.v_peak = None
        self._track_peaks(vals)
        snapshot = _values_text(self.strategy.s1_signal, vals)
        self._go(now, Phase.SIGNAL_DETECTED, "S1", snapshot)
        return []

    def _signal(self, now: int, vals: Mapping[str, float | None], entries_allowed: bool) -> list[Intent]:
        st, s = self.state, self.strategy
        if section_fires(s.o1_cancel, vals):
            return self._abandon(now, "O1", s.o1_cancel.cooldown_s)
        if now >= deadlines.signal_expires_ms(st, s):
            return self._abandon(now, "TIMEOUT", s.o1_cancel.cooldown_s)
        if not section_fires(s.z1_entry, vals) or self.last_price is None:
            return []  # no order without a price to size it on
        if not entries_allowed or not self._day_ok():
            return self._abandon(now, "Z1_BLOCKED", s.o1_cancel.cooldown_s)
        return self._enter(now, vals)

    def _enter(self, now: int, vals: Mapping[str, float | None]) -> list[Intent]:
        st, order = self.state, self.strategy.z1_entry.order
        st.entry_client_id = self._client_id("O")
        st.t_sent_ms, st.cancel_sent_ms, st.exit_after_fill = now, 0, ""
        st.entries_today += 1
        price = self.last_price
        limit = None
        if order.order_type == "limit" and price is not None:
            limit = price * (1 - self.side.sign * order.limit_offset_pct / 100.0)
        intent = OpenPosition(
            ts_ms=now, tag=self.tag, symbol=self.symbol, side=self.side, client_id=st.entry_client_id,
            size_pct=order.size_pct, leverage=order.leverage, order_type=OrderType(order.order_type),
            limit_price=limit, stop_loss_pct=order.stop_loss_pct, take_profit_pct=order.take_profit_pct,
            ref_price=price, reason="Z1", max_per_symbol=self.strategy.global_limits.max_positions_per_symbol,
            min_liq_distance_pct=self.strategy.global_limits.min_entry_liq_distance_pct,
            daily_loss_limit_pct=self.strategy.global_limits.daily_loss_limit_pct,
        )  # fmt: skip
        z1 = _values_text(self.strategy.z1_entry, vals)
        self._go(now, Phase.ENTRY_PENDING, "Z1", f"{st.entry_client_id} {z1}")  # the entry's values, recorded
        return [intent]

    def _entering(self, now: int, vals: Mapping[str, float | None]) -> list[Intent]:
        st = self.state
        out: list[Intent] = []
        if not st.exit_after_fill and section_fires(self.strategy.emergency_exit, vals):  # row 11
            st.exit_after_fill = "E1"
            st.cancel_sent_ms = now
            self.dirty = True
            out.append(CancelOrders(now, self.tag, self.symbol, reason="E1"))
        if now >= deadlines.entry_give_up_ms(st, self.strategy):  # no answer at all (lost across a restart)
            return out + self._abandon(now, "ENTRY_UNCONFIRMED", self.strategy.o1_cancel.cooldown_s)
        if now >= deadlines.entry_cancel_due_ms(st, self.strategy):
            st.cancel_sent_ms = now  # row 10: the order update (CANCELLED, filled or not) decides
            self.dirty = True
            out.append(CancelOrders(now, self.tag, self.symbol, reason="FILL_TIMEOUT"))
        return out

    def _entry_update(self, now: int, order: Order) -> list[Intent]:
        filled = float(order.filled_contracts)
        price = float(order.avg_fill_price) if order.avg_fill_price is not None else self.last_price
        if order.state is OrderState.FILLED or (order.state.is_terminal and filled > 0):
            return self._opened(now, price, filled, "FILLED" if order.state is OrderState.FILLED else "PARTIAL")
        if order.state in (OrderState.REJECTED, OrderState.CANCELLED):
            e1 = self.state.exit_after_fill == "E1"
            cooldown = self.strategy.emergency_exit.cooldown_s if e1 else self.strategy.o1_cancel.cooldown_s
            return self._abandon(now, "E1" if e1 else f"ENTRY_{order.state.name}", cooldown, order.reason)
        return []

    def _opened(self, now: int, entry: float | None, contracts: float, why: str) -> list[Intent]:
        st = self.state
        st.entry_price, st.contracts, st.t_open_ms = entry, contracts, now
        after = st.exit_after_fill
        st.exit_after_fill = ""
        self._go(now, Phase.POSITION_ACTIVE, why, f"entry={entry} contracts={contracts}")
        return self._exit(now, after) if after else []

    def _active(self, now: int, vals: Mapping[str, float | None]) -> list[Intent]:
        reason = self._exit_reason(now, vals)
        return [] if reason is None else self._exit(now, reason)

    def _exit_reason(self, now: int, vals: Mapping[str, float | None]) -> str | None:
        """Why an open position must be closed now (None: keep it) - decided, nothing changed."""
        s, st = self.strategy, self.state
        if section_fires(s.emergency_exit, vals):  # E1 first, always
            return "E1"
        if section_fires(s.ze1_close, vals):
            return "ZE1"
        pnl = unrealized_pnl_pct(self.side, st.entry_price, self.last_price)
        if pnl is not None and pnl <= -s.z1_entry.order.stop_loss_pct:
            return "SL"
        if pnl is not None and pnl >= s.z1_entry.order.take_profit_pct:
            return "TP"
        if now >= deadlines.max_hold_due_ms(st, s):
            return "TIME"
        return None

    def _exit(self, now: int, reason: str) -> list[Intent]:
        st = self.state
        out: list[Intent] = []
        self._mark_exit_bar(0 if self._at_close else 1)
        if reason == "E1" and self.strategy.emergency_exit.cancel_pending:
            out.append(CancelOrders(now, self.tag, self.symbol, reason="E1"))
        st.exit_reason, st.exit_leg, st.exit_failures, st.retry_at_ms = reason, 1, 0, 0
        out.append(self._close_intent(now))
        self._go(now, Phase.EXIT_PENDING, reason, st.exit_client_id)
        return out

    def _exiting(self, now: int, vals: Mapping[str, float | None]) -> list[Intent]:
        st = self.state
        if st.exit_reason not in EMERGENCY_REASONS and section_fires(self.strategy.emergency_exit, vals):
            st.exit_reason = "E1"  # row 21: the market close is already out; E1 sets the cooldown
            self.dirty = True
        if now < deadlines.close_resend_due_ms(st):
            return []
        if st.retry_at_ms:
            st.retry_at_ms = 0  # the back-off after a failed close is over (its leg is already new)
        else:
            st.exit_leg += 1  # no flat report: a new leg, reduce-only cannot overshoot
        return [self._close_intent(now)]

    def _close_failed(self, now: int, why: str) -> list[Intent]:
        st = self.state
        st.exit_failures += 1
        st.exit_leg += 1  # a definitive failure: the next close is a new order with a new id
        st.retry_at_ms = now + round(close_retry_delay_s(st.exit_failures) * 1000)
        self.dirty = True
        self.transitions.append(Transition(now, Phase.EXIT_PENDING, Phase.EXIT_PENDING, "CLOSE_FAILED", why))
        return []

    def _flat(self, now: int, why: str) -> list[Intent]:
        st, s = self.state, self.strategy
        emergency = st.exit_reason in EMERGENCY_REASONS
        cooldown = s.emergency_exit.cooldown_s if emergency else s.global_limits.normal_exit_cooldown_s
        st.cooldown_until_ms = now + round(cooldown * 1000)
        reason = st.exit_reason or why
        self._clear_trade()
        self._go(now, Phase.MONITORING, reason, why)
        return []

    def _mark_exit_bar(self, ahead: int) -> None:
        """Bar mode: the exit being decided belongs to bar `bar + ahead` (see `on_bar`)."""
        if self.strategy.bar_mode:
            self.state.exit_bar = self.bar + ahead
            self.dirty = True

    def _abandon(self, now: int, reason: str, cooldown_s: float, detail: str = "") -> list[Intent]:
        self.state.cooldown_until_ms = now + round(cooldown_s * 1000)
        self._clear_trade()
        self._go(now, Phase.MONITORING, reason, detail)
        return []

    # --- helpers ----------------------------------------------------------------------------

    def _clear_trade(self) -> None:
        st = self.state
        st.v_peak, st.entry_client_id, st.exit_after_fill = None, "", ""
        st.entry_price, st.contracts, st.t_open_ms = None, 0.0, 0
        st.exit_reason, st.exit_client_id, st.exit_leg, st.exit_failures, st.retry_at_ms = "", "", 0, 0, 0

    def _go(self, now: int, target: Phase, reason: str, detail: str = "") -> None:
        self.transitions.append(Transition(now, self.state.phase, target, reason, detail))
        self.state.phase = target
        self.state.reason = reason
        self.dirty = True

    def _client_id(self, leg: str) -> str:
        return make_client_id(self.strategy.strategy_name, self.symbol.split("_")[0], self.state.signal_seq, leg)

    def _close_intent(self, now: int) -> ClosePosition:
        st = self.state
        st.exit_client_id = self._client_id("X" if st.exit_leg <= 1 else f"X{st.exit_leg}")
        st.exit_sent_ms = now
        self.dirty = True
        return ClosePosition(now, self.tag, self.symbol, self.side, st.exit_client_id, st.exit_reason)

    def _track_peaks(self, values: Mapping[str, float | None]) -> None:
        peaks = dict(self.state.v_peak or {})
        for spec in self._mri.values():
            new = next_peak(peaks.get(spec.velocity), values.get(spec.velocity))
            if new is not None and new != peaks.get(spec.velocity):
                peaks[spec.velocity] = new
        if peaks != (self.state.v_peak or {}):
            self.state.v_peak = peaks
            self.dirty = True

    def _with_own_values(self, values: Mapping[str, float | None]) -> Mapping[str, float | None]:
        """The market values overlaid with the machine's own (P&L, momentum reversal), lazily."""
        st = self.state
        if st.phase is Phase.MONITORING:  # no position, no signal: the machine's own values are undefined
            return Overlay(self._own_undefined, values)
        own: dict[str, float | None] = {}
        vals = Overlay(own, values)  # reads fall through to the (lazy) market values
        has_position = st.phase in (Phase.POSITION_ACTIVE, Phase.EXIT_PENDING)
        for name in self._pnl_names:
            own[name] = unrealized_pnl_pct(self.side, st.entry_price, self.last_price) if has_position else None
        signal = st.phase is Phase.SIGNAL_DETECTED  # no active signal: momentum reversal is undefined
        peaks = (st.v_peak or {}) if signal else {}
        for name, spec in self._mri.items():
            own[name] = momentum_reversal(values.get(spec.velocity), peaks.get(spec.velocity), spec.min_peak) if signal else None
        return vals

    def new_day(self, now_ms: int) -> bool:
        """Would a step at `now_ms` roll the daily counters (first step of a UTC day)?"""
        return now_ms // DAY_MS != self.state.day

    def _roll_day(self, now: int) -> None:
        day = now // DAY_MS
        if day != self.state.day:
            self.state.day, self.state.entries_today = day, 0
            self.dirty = True

    def _day_ok(self) -> bool:
        """May this machine enter today? Never with `enabled = false` (its open positions still exit)."""
        return self.strategy.enabled and self.state.entries_today < self.strategy.global_limits.max_daily_trades


def _values_text(section: Section, vals: Mapping[str, float | None]) -> str:
    """`indicator=value, ...` of a section's conditions: what a transition saw."""
    return ", ".join(f"{c.indicator}={vals.get(c.indicator)}" for c in section.conditions)


def _day_end(now_ms: int) -> int:
    """The next UTC midnight (the day roll: daily counters reset at the first step after it)."""
    return (now_ms // DAY_MS + 1) * DAY_MS
