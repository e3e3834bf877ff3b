"""Domain layer: the persisted state of one strategy machine (strategy.md §4.2), JSON-ready.

Everything a restart needs to carry on is here - the phase, the signal counter (client ids derive
from it), cooldowns, the pending order ids and the position - so a running position is never
forgotten. Times are ms of the engine's event clock.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    MONITORING = "MONITORING"
    SIGNAL_DETECTED = "SIGNAL_DETECTED"
    ENTRY_PENDING = "ENTRY_PENDING"
    POSITION_ACTIVE = "POSITION_ACTIVE"
    EXIT_PENDING = "EXIT_PENDING"


# exit reasons that start the emergency cooldown once flat; others use the normal one
EMERGENCY_REASONS = frozenset({"E1", "LIQ", "STALE", "SL"})


@dataclass(slots=True)
class MachineState:
    phase: Phase = Phase.MONITORING
    reason: str = ""  # why the last transition happened
    signal_seq: int = 0
    cooldown_until_ms: int = 0
    # SIGNAL_DETECTED
    t_signal_ms: int = 0
    v_peak: dict[str, float] | None = None  # peak velocity since S1, per velocity instance
    # ENTRY_PENDING
    entry_client_id: str = ""
    t_sent_ms: int = 0
    cancel_sent_ms: int = 0
    exit_after_fill: str = ""  # E1 fired while entering: close as soon as a fill shows up
    # POSITION_ACTIVE
    entry_price: float | None = None
    contracts: float = 0.0
    t_open_ms: int = 0
    # EXIT_PENDING
    exit_reason: str = ""
    exit_client_id: str = ""
    exit_leg: int = 0  # 1 = "X", 2 = "X2", ...
    exit_failures: int = 0
    exit_sent_ms: int = 0
    retry_at_ms: int = 0  # 0 = no retry scheduled
    # bar mode: the bar (the indicators' count) the last exit belongs to - no entry at its close
    exit_bar: int = -1
    # day counter for max_daily_trades
    day: int = 0
    entries_today: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the one mutable field (v_peak) copied - what `asdict` gives, without its deep copy
        of every value (this runs at every state change)."""
        d = {name: getattr(self, name) for name in _FIELDS}
        d["phase"] = self.phase.value
        if self.v_peak is not None:
            d["v_peak"] = dict(self.v_peak)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MachineState":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["phase"] = Phase(kwargs.get("phase", Phase.MONITORING))
        return cls(**kwargs)


_FIELDS = tuple(f.name for f in fields(MachineState))
