"""Engine layer: the strategy runner's one hook for leaving out steps - off unless a backtest sets it.

`StrategyRunner.step_gate` is None in live and paper trading: every market event and every grid
second steps. A backtest may set a `StepGate` (`backtest/quiet_steps.py`) that proves some steps
would change nothing; the runner then asks it before each tick-mode step and tells it what
happened. Bar mode never has one.
"""

from __future__ import annotations

from typing import Protocol

from tui_trader.domain.events import Event


class StepGate(Protocol):
    """What a backtest may attach as `StrategyRunner.step_gate` to leave out tick-mode steps that
    provably change nothing (`backtest/quiet_steps.py`). None everywhere else: every step runs.

    A gate answering "skip" must be right: the step it rules out would change no state, send no
    intent and publish nothing. A "no" is followed at once by the step."""

    def already_has(self, event: Event) -> bool:
        """`event` (a market event of one of the runner's symbols) re-publishes data the gate
        already handed to the runner's indicators: True and the runner ignores it."""
        ...

    def skip_market_step(self, symbol: str, kind: str, price: float) -> bool:
        """A market event of `symbol` was just recorded (`kind` trade / book / candle, a trade's
        `price`): True if the step it would cause changes nothing."""
        ...

    def skip_timer_step(self, symbol: str) -> bool:
        """The 1 s timer is due for `symbol`: True if that step changes nothing."""
        ...

    def timer_until(self, symbol: str) -> int:
        """Clock time before which every timer step of `symbol` changes nothing (0: none): the
        timer sleeps to the first grid instant at or after the earliest one over the symbols."""
        ...

    def stepped(self, symbol: str, now_ms: int) -> None:
        """`symbol`'s machine was just stepped at event time `now_ms`."""
        ...

    def order_or_position(self, symbol: str) -> None:
        """An order or position event of `symbol`'s machine was just handled."""
        ...
