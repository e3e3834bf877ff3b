"""Engine layer: assembles one trading stack - cache, execution, risk, watchdog, strategy - on a venue.

Paper sessions, backtests and the live console all build their trading components here, so the
same strategy, risk, watchdog and execution code runs everywhere; only the venue, the store and the
clock passed in differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from tui_trader.domain.config import Settings
from tui_trader.domain.strategy.schema import Strategy
from tui_trader.engine.bus import EventBus
from tui_trader.engine.cache import Cache
from tui_trader.engine.clock import Clock
from tui_trader.engine.emergency import EmergencyClose
from tui_trader.engine.execution import Execution
from tui_trader.engine.ports import KeyValueStore, OrderStore, VenueClient
from tui_trader.engine.risk import RiskGuard
from tui_trader.engine.strategy_runner import StrategyRunner
from tui_trader.engine.watchdog import LiquidationWatchdog


ENTRY_LIQ_MARGIN_PCT = 2.0  # an entry starts at least this far above the watchdog's auto-close distance


@dataclass
class TradingStack:
    bus: EventBus
    clock: Clock
    venue: VenueClient
    cache: Cache
    execution: Execution
    runner: StrategyRunner | None = None
    risk: RiskGuard | None = None
    watchdog: LiquidationWatchdog | None = None
    emergency: EmergencyClose | None = None
    # (service, options for TraderCore.add) in start order
    services: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)

    async def idle(self) -> None:
        """Wait until every queued report and entry has been processed (backtests step on this)."""
        await self.execution.idle()


def build_trading_stack(
    settings: Settings,
    bus: EventBus,
    clock: Clock,
    venue: VenueClient,
    store: OrderStore,
    state_store: KeyValueStore | None,
    *,
    strategy: Strategy | None,
    symbols: Iterable[str],
    session_id: str = "",
    strategy_state_store: KeyValueStore | None = None,
) -> TradingStack:
    """Wire execution to `venue` (its reports are persisted, then published) and the strategy to execution.

    Risk guard (kill switch, persisted in `state_store`), liquidation watchdog and emergency close are
    always built: the guard gates execution's entries and trips the emergency close-all.
    `strategy_state_store` (default: `state_store`) keeps the strategy machines apart from the
    kill switch when their lifetimes differ (a fresh paper account per console launch).
    """
    cache = Cache(bus)
    risk = RiskGuard(bus, clock, settings.risk, state_store, cache=cache)
    execution = Execution(
        bus, clock, venue, store, cache, risk=risk, session_id=session_id,
        close_retry_initial_s=settings.watchdog.close_retry_initial_s,
        close_retry_max_s=settings.watchdog.close_retry_max_s,
    )
    if settings.watchdog.autoclose_enabled:  # an entry the watchdog would close at once is never sent
        execution.entry_liq_floor_pct = settings.watchdog.autoclose_distance_pct + ENTRY_LIQ_MARGIN_PCT
    if hasattr(venue, "report"):
        venue.report = execution.report  # type: ignore[attr-defined]
    emergency = EmergencyClose(bus, clock, execution, venue, cache, risk=risk)
    risk.on_trip = emergency.request_close_all
    watchdog = LiquidationWatchdog(bus, clock, cache, execution, settings.watchdog, venue=venue,
                                   liquidation_fee_rate=settings.fees.liquidation_fee_rate)
    stack = TradingStack(bus, clock, venue, cache, execution, risk=risk, watchdog=watchdog, emergency=emergency)
    stack.services.append((execution, {"critical": True}))
    stack.services.append((risk, {"restart": True}))
    if strategy is not None:
        machines_store = strategy_state_store if strategy_state_store is not None else state_store
        runner = StrategyRunner(bus, clock, strategy, list(symbols), machines_store, execution.submit,
                                reconcile_from=cache if execution.order_poll_s > 0 else None)
        stack.runner = runner
        stack.services.append((runner, {"restart": True}))
    return stack


def replay_settings(settings: Settings, interval_s: float, ticks_per_candle: int) -> Settings:
    """Settings for trading on replayed bars: the watchdog must not call a price "stale" between
    two ticks of the same data (4 ticks per 1 m bar are 15 s apart, over its 10 s default); a real
    gap in the data (missing minutes) still counts as stale."""
    spacing = interval_s / max(1, min(ticks_per_candle, 4))
    stale = max(settings.watchdog.max_stale_data_s, 2 * spacing)
    if stale == settings.watchdog.max_stale_data_s:
        return settings
    return settings.model_copy(update={"watchdog": settings.watchdog.model_copy(update={"max_stale_data_s": stale})})
