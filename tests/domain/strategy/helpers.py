"""Builders for strategy-machine tests: the bundled strategy, market values, orders, positions."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

from tui_trader.domain.models import ClientOrderId, Order, OrderSide, OrderState, OrderType, Position
from tui_trader.domain.strategy.machine import StrategyMachine
from tui_trader.domain.strategy.schema import Strategy, strategy_from_dict

BUNDLED = Path(__file__).resolve().parents[3] / "tui_trader" / "data" / "pump_short.toml"
T0 = 1_512_000_000_000
SYMBOL = "NXT_USDT"

# market values the sections see (velocity peak 0.6 then 0.3 -> momentum reversal -50)
PUMP = {"pump": 8.0, "vsurge": 4.0, "velocity": 0.6, "rsi": 60.0, "spread": 0.1}  # S1 true
FADE = {"pump": 8.0, "vsurge": 4.0, "velocity": 0.3, "rsi": 60.0, "spread": 0.1}  # Z1 true after PUMP
CALM = {"pump": 3.0, "vsurge": 1.0, "velocity": 0.0, "rsi": 50.0, "spread": 0.1}  # nothing fires
DRY = dict(CALM, vsurge=0.3)  # E1 (volume dried up)


def strategy(**changes: dict) -> Strategy:
    """The bundled pump_short without warm-up, with sections / limits replaced by `changes`."""
    data = tomllib.loads(BUNDLED.read_text())
    data["global_limits"]["warmup_s"] = 0
    for key, value in changes.items():
        data[key] = value
    return strategy_from_dict(data)


def order(m: StrategyMachine, cid: str, state: OrderState, *, filled: float = 0, price: float | None = None, reason: str = "", close: bool = False) -> Order:
    side = OrderSide.close_for(m.side) if close else OrderSide.open_for(m.side)
    return Order(
        ClientOrderId(cid), m.symbol, side, OrderType.MARKET, Decimal(56), state=state, filled_contracts=Decimal(str(filled)),
        avg_fill_price=None if price is None else Decimal(str(price)), reason=reason, tag=m.tag, reduce_only=close,
    )  # fmt: skip


def position(m: StrategyMachine, contracts: float, entry: float = 1.07) -> Position:
    return Position(m.symbol, m.side, Decimal(str(contracts)), Decimal(10), Decimal(str(entry)), 3, tag=m.tag)


def drive(m: StrategyMachine, target: str, t: int = T0) -> int:
    """Take a fresh machine to `target` the legitimate way; returns the time of the last step."""
    if target == "MONITORING":
        return t
    m.on_tick(t, PUMP, price=1.0)
    if target == "SIGNAL_DETECTED":
        return t
    t += 1_000
    m.on_tick(t, FADE, price=1.07)
    if target == "ENTRY_PENDING":
        return t
    m.on_order_update(t, order(m, m.state.entry_client_id, OrderState.FILLED, filled=56, price=1.07))
    if target == "POSITION_ACTIVE":
        return t
    t += 1_000
    m.on_tick(t, CALM, price=0.85)  # pnl +20.56 % -> ZE1
    assert target == "EXIT_PENDING"
    return t
