"""Venues layer: the checks a live start makes before anything trades, each one an event.

A new user's mistakes must stop the console at once with one line that says what to fix, not run
on failing every 2 s (issue 20): the exchange unreachable -> exit 1 within `REACH_DEADLINE_S`; the
local clock further from MEXC's than the recv window, keys refused, or a configured symbol that is
not a MEXC contract -> exit 2. A symbol whose contract says `apiAllowed = false` (most accounts since
2022: MEXC closed futures order placement on its public API) becomes monitor-only with the reason;
the others go on. Messages name the key's environment variable, never its value.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tui_trader.domain.errors import Retryable, TraderError
from tui_trader.domain.events import StartupChecked
from tui_trader.venues.mexc.errors import AuthError, ParameterError

log = logging.getLogger(__name__)

REACH_DEADLINE_S = 25.0  # the whole reachability check (retries included): exit 1 well within 30 s
KEY_VARS = "TUI_TRADER_MEXC_API_KEY / TUI_TRADER_MEXC_API_SECRET (or mexc.api_key / api_secret in the config)"


class StartupFailed(TraderError):
    """A live start that must not go on; `exit_code` 1 = the exchange cannot be reached, 2 = fix the set-up."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


async def run_startup_checks(venue: Any, bus: Any, *, recv_window_s: float, rest_base: str) -> None:
    """Clock, keys, balance, contracts and order permission, in that order; raises `StartupFailed`."""
    clock = venue.clock

    def tell(check: str, status: str, detail: str) -> None:
        (log.error if status == "failed" else log.info)("start-up check %s: %s - %s", check, status, detail)
        bus.publish(StartupChecked(clock.now_ms(), check, status, detail))

    try:
        async with asyncio.timeout(REACH_DEADLINE_S):  # (not wait_for: 3.11's can lose a cancellation)
            offset_ms = await venue.client.call(venue.client.rest.sync_time, "ping", breaker=False)
    except (TimeoutError, Retryable) as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else str(exc)
        tell("exchange", "failed", f"{rest_base} unreachable: {why}")
        raise StartupFailed(f"MEXC is unreachable at {rest_base} ({why}); check the network or mexc.rest_base",
                            1) from None
    if abs(offset_ms) > recv_window_s * 1000:
        tell("clock", "failed", f"local clock {offset_ms / 1000:+.1f} s from MEXC's")
        raise StartupFailed(f"this machine's clock is {abs(offset_ms) / 1000:.1f} s off MEXC's (more than the"
                            f" {recv_window_s:g} s recv window): set the system clock (NTP)", 2)
    tell("clock", "ok", f"offset {offset_ms:+d} ms (recv window {recv_window_s:g} s)")
    try:
        account = await venue.account()
    except AuthError as exc:
        tell("keys", "failed", f"MEXC refused the API key (code {exc.code})")
        raise StartupFailed(f"MEXC refused the API key (code {exc.code}): check {KEY_VARS}", 2) from None
    except Retryable as exc:
        tell("keys", "failed", str(exc))
        raise StartupFailed(f"MEXC did not answer the account check ({exc})", 1) from None
    tell("keys", "ok", "signed account read accepted")
    tell("balance", "ok", f"equity {account.equity} {account.currency}, available {account.available}")
    for symbol in venue.symbols:
        try:
            await venue.instrument(symbol)  # apiAllowed = false or a halted contract: monitor-only (venue)
        except ParameterError:
            tell("contracts", "failed", f"{symbol} is not a MEXC contract")
            raise StartupFailed(f"{symbol} (strategy.symbols) is not a MEXC futures contract", 2) from None
    monitor = getattr(venue, "monitor_only", {})
    tell("contracts", "ok", f"{len(venue.symbols)} symbol(s) known")
    for symbol in venue.symbols:
        if symbol in monitor:
            tell("orders", "monitor-only", f"{symbol}: {monitor[symbol]}")
        else:
            tell("orders", "ok", f"{symbol}: API orders allowed")
