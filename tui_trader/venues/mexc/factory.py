"""Venues layer: builds the MEXC object graph (REST, client, venue, public feed, user stream) from config.

For `app/wiring.py`: one call returns the parts it registers with the core, all sharing one REST
session, one clock offset and one breaker.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui_trader.domain.config import BreakerConfig, MexcConfig, RetryConfig
from tui_trader.domain.events import BreakerChanged
from tui_trader.domain.strategy.schema import RsiSpec
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock
from tui_trader.engine.strategy_runner import StrategyRunner
from tui_trader.venues.mexc.candles import HistoryWarmup
from tui_trader.venues.mexc.client import MexcClient
from tui_trader.venues.mexc.rest import MexcRest
from tui_trader.venues.mexc.venue import MexcVenue
from tui_trader.venues.mexc.ws_private import MexcUserStream
from tui_trader.venues.mexc.ws_public import MexcFeed


@dataclass
class MexcParts:
    venue: MexcVenue
    feed: MexcFeed
    user_stream: MexcUserStream


def build_mexc(mexc: MexcConfig, retry: RetryConfig, breaker: BreakerConfig, bus: EventBus, clock: Clock,
               symbols: list[str]) -> MexcParts:
    """The venue and its two streams. Call `await parts.venue.start()` before trading (clock offset)."""
    rest = MexcRest(mexc, clock)
    client = MexcClient(rest, retry, breaker, clock,
                        on_breaker_change=lambda old, new: bus.publish(BreakerChanged(clock.now_ms(), "mexc", old, new)))
    venue = MexcVenue(client, bus=bus, symbols=symbols, position_mode=1 if mexc.position_mode == "hedge" else 2)
    feed = MexcFeed(mexc, bus, clock, resync=venue.resync, symbols=symbols)
    feed.klines, feed.server_ms = venue, rest.request_time_ms  # candles a (re)connect missed, on the exchange's clock
    user = MexcUserStream(mexc, bus, clock, signer=rest.signer, symbols=symbols, poll=venue.resync,
                          request_time_ms=rest.request_time_ms, name="mexc-user")
    user.contract_size = venue.cached_contract_size
    return MexcParts(venue=venue, feed=feed, user_stream=user)


def history_warmup(parts: MexcParts, runner: StrategyRunner, bus: EventBus, clock: Clock) -> HistoryWarmup:
    """The service that loads the strategy's candle history at start (after the venue, before the runner)."""
    notes = [f"indicator {name!r}: RSI on {spec.timeframe} candles - the live feed carries 1 m candles only, so it"
             " stays undefined live" for name, spec in runner.strategy.used_indicators().items()
             if isinstance(spec, RsiSpec) and spec.timeframe != "1m"]
    return HistoryWarmup(parts.venue, bus, clock, symbols=list(runner.machines), lookback_s=runner.history_s,
                         warm=runner.warm, closer=parts.feed.candles, server_ms=parts.venue.client.rest.request_time_ms,
                         notes=notes)
