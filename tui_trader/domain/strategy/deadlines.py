"""Domain layer: when each timed rule of the strategy machine falls due - one source for the phase
handlers (which act when `now >= due`) and for `next_deadline_ms` (when a bar-mode machine must be
stepped between bar closes). Two copies drifted: a deadline step that the handler then found not
yet due (a fractional-ms timeout) or a due time the step never asked for (the entry give-up).

All times are ms since the epoch; durations in seconds are rounded to whole ms once, here.
"""

from __future__ import annotations

from tui_trader.domain.strategy.schema import Strategy
from tui_trader.domain.strategy.state import MachineState, Phase

EXIT_RESEND_S = 30.0
ENTRY_GIVE_UP_TIMEOUTS = 4  # fill timeouts without any answer after which an entry is written off


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def signal_expires_ms(st: MachineState, s: Strategy) -> int:
    """SIGNAL_DETECTED: Z1 not met by then -> TIMEOUT (O1 cooldown)."""
    return st.t_signal_ms + ms(s.o1_cancel.timeout_s)


def entry_cancel_due_ms(st: MachineState, s: Strategy) -> int:
    """ENTRY_PENDING: unfilled by then -> cancel (again a fill timeout after the last cancel)."""
    return max(st.t_sent_ms, st.cancel_sent_ms) + ms(s.z1_entry.order.fill_timeout_s)


def entry_give_up_ms(st: MachineState, s: Strategy) -> int:
    """ENTRY_PENDING: no answer at all by then (the cancels included) -> written off."""
    return st.t_sent_ms + ENTRY_GIVE_UP_TIMEOUTS * ms(s.z1_entry.order.fill_timeout_s)


def max_hold_due_ms(st: MachineState, s: Strategy) -> int:
    """POSITION_ACTIVE: held until then at most -> TIME exit."""
    return st.t_open_ms + ms(s.global_limits.max_hold_s)


def close_resend_due_ms(st: MachineState) -> int:
    """EXIT_PENDING: the failed close's back-off ends then, or - no failure - the close without a flat
    report is re-sent then under a new leg."""
    return st.retry_at_ms or st.exit_sent_ms + ms(EXIT_RESEND_S)


def next_deadline_ms(st: MachineState, s: Strategy) -> int | None:
    """The earliest due time of the phase's timed rules (None: none; MONITORING's cooldown end and day
    roll gate S1 only, which a bar-mode machine decides at bar closes)."""
    phase = st.phase
    if phase is Phase.SIGNAL_DETECTED:
        return signal_expires_ms(st, s)
    if phase is Phase.ENTRY_PENDING:
        return min(entry_cancel_due_ms(st, s), entry_give_up_ms(st, s))
    if phase is Phase.POSITION_ACTIVE:
        return max_hold_due_ms(st, s)
    if phase is Phase.EXIT_PENDING:
        return close_resend_due_ms(st)
    return None
