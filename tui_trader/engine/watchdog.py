"""Engine layer: the liquidation watchdog - every open position's distance to liquidation, on every tick.

Why: the original computed a liquidation price that nobody watched (liquidation.md §9). This is an
inline bus subscriber on fair-price ticks (falling back to trade ticks, flagged `last`, when the
fair price is older than `mark_max_age_s`). Per position it precomputes, whenever its state changes,
the price window inside which nothing can change (band, crossed thresholds, auto-close), so the
tick path is one or two float comparisons per position on that symbol and allocates nothing
(liquidation.md §8). Comparisons use a signed price `key` (price for a short, -price for a long):
a larger key is always nearer to liquidation.

Crossing out of the window re-evaluates the position: band (green/yellow/red/liquidated) and
warning thresholds worsen at once and improve only `hysteresis_pct` past the boundary; each change
is one `LiquidationWarning`. Below `autoclose_distance_pct` (or past the runway trigger) one
reduce-only market close goes through the execution close lane (no risk gate, breaker, back-off or
cooldown; a close already running for the position is joined). Execution retries it until flat or
raises a permanent refusal loudly; a failed close is not re-sent on every tick, but again after
`FAILED_RETRY_S` while the position is still held past the threshold (or at once when it changes).
A 1 s timer repeats warnings (at most once per `repeat_s`, timed from the last one sent) and
escalates red positions whose prices are older than `max_stale_data_s` (`on_stale`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from decimal import Decimal
from functools import partial

from tui_trader.domain.config import WatchdogConfig
from tui_trader.domain.events import (
    ErrorRaised,
    Event,
    LiquidationWarning,
    ManualActionRequired,
    MarkPriceTick,
    PositionChanged,
    TradeTick,
)
from tui_trader.domain.intents import ClosePosition, make_client_id
from tui_trader.domain.liquidation import (
    Band,
    LiqForm,
    band_edge_price_fast,
    band_for,
    buffered_liquidation_price_fast,
    distance_pct,
    liquidation_price,
    maintenance_margin_rate,
)
from tui_trader.domain.models import Instrument, Position, Side
from tui_trader.domain.money import ceil_to_unit, to_decimal
from tui_trader.engine.bus import EventBus
from tui_trader.engine.cache import Cache
from tui_trader.engine.clock import Clock, TimerHandle
from tui_trader.engine.execution import Execution
from tui_trader.engine.price_fallback import RestPriceFallback
from tui_trader.engine.ports import VenueClient

log = logging.getLogger(__name__)

SANE_FACTOR = Decimal(2)  # the formula's entry-to-liquidation gap vs the exchange's, at most this far apart
TAKEOVER_GRACE_MS = 2_000  # past the exchange's liquidation price: its own report is awaited this long
FAILED_RETRY_S = 10.0  # a failed auto-close is tried again this long after, while the position is held

INF = math.inf
DEFAULT_MMR = Decimal("0.01")  # until the contract's tiers are known: small caps are above BTC's 0.4 %
FORMULA_MISMATCH_PCT = 0.5
_SEVERITY_BANDS = (Band.GREEN, Band.YELLOW, Band.RED, Band.LIQUIDATED)


class _Watch:
    """What the watchdog keeps per position, across position updates (defect §9: state kept)."""

    __slots__ = ("symbol", "side", "short", "tag", "pid", "liq", "entry", "margin", "coins_per_contract", "contracts",
                 "k", "vol_unit", "rt_key", "worse_key", "better_key", "band", "level", "closing", "failed",
                 "partial_done", "episode", "last_warn_ms", "stale_alert_ms", "alive", "venue_liq", "through_ms",
                 "failed_ms", "since_ms")

    def __init__(self, symbol: str, side: Side, since_ms: int = 0) -> None:
        self.symbol, self.side, self.short = symbol, side, side is Side.SHORT
        self.since_ms = since_ms  # watched since (our clock): a price's age is never counted from before it
        self.tag, self.pid = "", ""
        self.liq: float | None = None
        self.entry = self.margin = self.coins_per_contract = self.contracts = self.k = 0.0
        self.vol_unit = Decimal(1)
        self.rt_key = INF
        self.worse_key, self.better_key = -INF, -INF  # -INF: evaluate at the next tick
        self.band, self.level = Band.GREEN, 0
        self.closing = self.failed = self.partial_done = False
        self.failed_ms = 0  # when the last auto-close failed (re-armed FAILED_RETRY_S later)
        self.episode = 0
        self.last_warn_ms = self.stale_alert_ms = 0
        self.alive = True
        self.venue_liq: float | None = None  # the exchange's own liquidatePrice, when it reports one
        self.through_ms = 0  # since when the fair price is at/through it (the exchange is taking over)

    def key(self, price: float) -> float:
        return price if self.short else -price


class LiquidationWatchdog:
    """Watches every open position; `closes_sent` counts auto-close requests (tests, bench)."""

    name = "watchdog"

    def __init__(self, bus: EventBus, clock: Clock, cache: Cache, execution: Execution, config: WatchdogConfig, *,
                 venue: VenueClient | None = None, liquidation_fee_rate: float = 0.0006, subscribe: bool = True) -> None:
        self.bus, self.clock, self.cache, self.execution, self.cfg, self.venue = bus, clock, cache, execution, config, venue
        self.fee_rate = to_decimal(liquidation_fee_rate)
        self.thresholds = sorted(set(config.warning_thresholds_pct), reverse=True)
        self.watches: dict[tuple[str, Side], _Watch] = {}
        self._by_symbol: dict[str, list[_Watch]] = {}
        self._instruments: dict[str, Instrument] = {}
        self._fetching: set[asyncio.Task[None]] = set()
        self._timer: TimerHandle | None = None
        self._mark_age_ms = round(config.mark_max_age_s * 1000)
        self.rest_prices = RestPriceFallback(bus, clock, cache, venue, config.stale_after_s)
        self.closes_sent = 0
        self._unsubscribe = []
        if subscribe:
            self._unsubscribe = [bus.subscribe(self.on_mark, [MarkPriceTick], name="watchdog.mark"),
                                 bus.subscribe(self.on_trade, [TradeTick], name="watchdog.trade"),
                                 bus.subscribe(self.on_position, [PositionChanged], name="watchdog.position")]

    def close(self) -> None:
        """Stop watching (unsubscribe, cancel the timer)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.rest_prices.close()

    # --- tick path ------------------------------------------------------------------------

    def on_mark(self, ev: Event) -> None:
        watches = self._by_symbol.get(ev.symbol)  # type: ignore[attr-defined]
        if watches:
            self._scan(watches, ev.price, "mark", ev.ts_ms)  # type: ignore[attr-defined]

    def on_trade(self, ev: Event) -> None:
        watches = self._by_symbol.get(ev.symbol)  # type: ignore[attr-defined]
        if not watches:
            return
        mark = self.cache.mark.get(ev.symbol)  # type: ignore[attr-defined]
        if mark is not None and ev.ts_ms - mark[1] <= self._mark_age_ms:
            return  # the fair price is fresh: it decides
        self._scan(watches, ev.price, "last", ev.ts_ms)  # type: ignore[attr-defined]

    def _scan(self, watches: list, p: float, source: str, ts_ms: int) -> None:
        """One comparison per position: evaluate only those whose price left their quiet window."""
        for w in watches:
            k = p if w.short else -p
            if k >= w.worse_key or k <= w.better_key:
                self._evaluate(w, p, source, ts_ms)

    # --- positions ------------------------------------------------------------------------

    def on_position(self, ev: Event) -> None:
        assert isinstance(ev, PositionChanged)
        pos = ev.position
        key = (pos.symbol, pos.side)
        w = self.watches.get(key)
        if pos.is_flat:
            if w is not None:
                self._forget(w)
            return
        if w is None:
            w = self.watches[key] = _Watch(pos.symbol, pos.side, self.clock.now_ms())
            self._by_symbol.setdefault(pos.symbol, []).append(w)
            self._arm_timer()
        self._update(w, pos)
        price, source = self.best_price(pos.symbol, ev.ts_ms)
        if price is not None:
            self._evaluate(w, price, source, ev.ts_ms)

    def _forget(self, w: _Watch) -> None:
        w.alive = False
        self.watches.pop((w.symbol, w.side), None)
        watches = self._by_symbol.get(w.symbol, [])
        if w in watches:
            watches.remove(w)
        if not watches:
            self._by_symbol.pop(w.symbol, None)

    def _update(self, w: _Watch, pos: Position) -> None:
        """Recompute what a tick compares against: liquidation price, runway trigger, window."""
        w.tag, w.pid = pos.tag, str(pos.position_id or pos.opened_ms)
        w.failed = False  # a changed position re-arms a close that failed permanently
        instr = self._instrument(pos.symbol)
        mmr = maintenance_margin_rate(instr, pos.contracts) if instr else DEFAULT_MMR
        w.k = float(mmr + self.fee_rate)
        w.vol_unit = instr.vol_unit if instr else Decimal(1)
        w.entry, w.contracts, w.coins_per_contract = float(pos.entry_price), float(pos.contracts), float(pos.contract_size)
        margin = pos.margin if pos.margin > 0 else pos.notional / max(1, pos.leverage)
        w.margin = float(margin)
        w.liq = self._liq_used(pos, margin, mmr)
        w.venue_liq = float(pos.liquidation_price) if pos.liquidation_price and pos.liquidation_price > 0 else None
        b = self.cfg.runtime_buffer
        if w.liq is not None and b > 0:
            w.rt_key = w.key(buffered_liquidation_price_fast(w.short, w.entry, w.liq, b))
        else:
            w.rt_key = INF
        w.worse_key = -INF  # evaluate at the next price

    def _liq_used(self, pos: Position, margin: Decimal, mmr: Decimal) -> float | None:
        """The venue's liquidation price if it has one, else the tiered formula; both known and
        more than 0.5 % apart -> the more conservative one (nearer to the market), logged."""
        formula = None
        if pos.qty_coins > 0 and margin > 0:
            formula = liquidation_price(pos.side, pos.entry_price, pos.qty_coins, margin, mmr, self.fee_rate, LiqForm.CONSERVATIVE)
        venue = pos.liquidation_price if pos.liquidation_price and pos.liquidation_price > 0 else None
        if venue is None:
            return float(formula) if formula is not None else None
        if formula is None or pos.symbol not in self._instruments:
            return float(venue)
        if not _sane(pos.side, pos.entry_price, formula, venue):  # a wrong size or tier: the exchange's value
            self.bus.publish(ErrorRaised(self.clock.now_ms(), "watchdog", f"{pos.symbol} {pos.side.value}: the"
                                         f" formula's liquidation price {formula:.6g} is not sane next to the"
                                         f" exchange's {venue} (entry {pos.entry_price}): using the exchange's",
                                         level="WARNING"))
            return float(venue)
        if abs(venue - formula) / venue * 100 > FORMULA_MISMATCH_PCT:
            chosen = min(venue, formula) if pos.side is Side.SHORT else max(venue, formula)
            log.warning("%s %s: venue liquidation price %s and formula %s differ; using %s",
                        pos.symbol, pos.side.value, venue, formula, chosen)
            return float(chosen)
        return float(venue)

    def _instrument(self, symbol: str) -> Instrument | None:
        instr = self._instruments.get(symbol)
        if instr is None and self.venue is not None and not any(t.get_name() == symbol for t in self._fetching):
            task = asyncio.get_running_loop().create_task(self._fetch_instrument(symbol), name=symbol)
            self._fetching.add(task)
            task.add_done_callback(self._fetching.discard)
        return instr

    async def _fetch_instrument(self, symbol: str) -> None:
        from tui_trader.domain.errors import VenueError

        try:
            self._instruments[symbol] = await self.venue.instrument(symbol)  # type: ignore[union-attr]
        except VenueError as exc:
            log.warning("watchdog: contract details of %s unavailable (%s); default mmr %s", symbol, exc, DEFAULT_MMR)
            return
        for side in (Side.LONG, Side.SHORT):
            w, pos = self.watches.get((symbol, side)), self.cache.position(symbol, side)
            if w is not None and pos is not None:
                self._update(w, pos)

    def best_price(self, symbol: str, now_ms: int) -> tuple[float | None, str]:
        """Fair price when fresh, else the last trade price (flagged `last`), else a stale fair price."""
        mark, last = self.cache.mark.get(symbol), self.cache.last.get(symbol)
        if mark is not None and (now_ms - mark[1] <= self._mark_age_ms or last is None or last[1] <= mark[1]):
            return mark[0], "mark"
        if last is not None:
            return last[0], "last"
        return None, "none"

    # --- evaluation -----------------------------------------------------------------------

    def _evaluate(self, w: _Watch, price: float, source: str, ts_ms: int) -> None:
        if w.liq is None:  # cannot be liquidated (1x long): nothing can change
            w.worse_key, w.better_key = INF, -INF
            return
        d = distance_pct(w.side, price, w.liq)
        band, level = self._band(d, w.band), self._level(d, w.level)
        worse = band.severity > w.band.severity or level > w.level
        changed = band is not w.band or level != w.level
        w.band, w.level = band, level
        if self._taken_over(w, price, d, source, ts_ms):
            pass
        elif self._should_close(w, price, d):
            self._autoclose(w, price, d, source, ts_ms, "LIQ")
        elif changed:
            kind = ("CRITICAL" if band.severity >= Band.RED.severity else "WARNING") if worse else "INFO"
            self._warn(w, d, price, source, ts_ms, kind)
        self._window(w)

    def _band(self, d: float, current: Band) -> Band:
        """Worsen at once; improve only once the distance is `hysteresis_pct` past the boundary."""
        cfg = self.cfg
        raw = band_for(d, cfg.yellow_band_pct, cfg.red_band_pct)
        if raw.severity >= current.severity:
            return raw
        h = cfg.hysteresis_pct
        if d >= cfg.yellow_band_pct + h:
            sev = 0
        elif d >= cfg.red_band_pct + h:
            sev = 1
        elif d >= h:
            sev = 2
        else:
            sev = 3
        return _SEVERITY_BANDS[sev] if sev < current.severity else current

    def _level(self, d: float, current: int) -> int:
        """How many warning thresholds the distance is below (with hysteresis when recovering)."""
        raw = sum(1 for t in self.thresholds if d < t)
        if raw >= current:
            return raw
        recovered = sum(1 for t in self.thresholds if d < t + self.cfg.hysteresis_pct)
        return max(raw, min(current, recovered))

    def _taken_over(self, w: _Watch, price: float, d: float, source: str, ts_ms: int) -> bool:
        """The fair price at or through the exchange's own liquidation price: the exchange is taking the
        position over at its price, and a close now only races it (and fails "position not exist"). The
        position is re-read at once and its report awaited for TAKEOVER_GRACE_MS; still held after
        that -> closed as usual."""
        v = w.venue_liq
        if source != "mark" or v is None or (price < v if w.short else price > v):
            w.through_ms = 0
            return False
        if w.through_ms == 0:
            w.through_ms = ts_ms
            self._warn(w, d, price, source, ts_ms, "CRITICAL")
            self.execution.reconciler.refresh_soon(w.symbol, w.side)
        return ts_ms - w.through_ms < TAKEOVER_GRACE_MS

    def _should_close(self, w: _Watch, price: float, d: float) -> bool:
        if not self.cfg.autoclose_enabled or w.closing or w.failed:
            return False
        return d < self.cfg.autoclose_distance_pct or w.key(price) >= w.rt_key

    def _window(self, w: _Watch) -> None:
        """Precompute the keys past which the next evaluation is needed (liquidation.md §8)."""
        cfg, sev, n = self.cfg, w.band.severity, len(self.thresholds)
        worse_d = (cfg.yellow_band_pct, cfg.red_band_pct, 0.0, -INF)[sev]
        if w.level < n:
            worse_d = max(worse_d, self.thresholds[w.level])
        armed = cfg.autoclose_enabled and not w.closing and not w.failed
        if armed:
            worse_d = max(worse_d, cfg.autoclose_distance_pct)
        w.worse_key = self._edge_key(w, worse_d) if worse_d > -INF else INF
        if armed:
            w.worse_key = min(w.worse_key, w.rt_key)
        h = cfg.hysteresis_pct
        better_d = (INF, cfg.yellow_band_pct + h, cfg.red_band_pct + h, h)[sev]
        if w.level > 0:
            better_d = min(better_d, self.thresholds[w.level - 1] + h)
        w.better_key = self._edge_key(w, better_d) if better_d < INF else -INF

    @staticmethod
    def _edge_key(w: _Watch, d: float) -> float:
        """Key of the price at which the distance equals `d` %."""
        assert w.liq is not None
        price = band_edge_price_fast(w.short, w.liq, d)
        return price if w.short else -price

    def _warn(self, w: _Watch, d: float, price: float, source: str, ts_ms: int, level: str) -> None:
        w.last_warn_ms = self.clock.now_ms()
        self.bus.publish(LiquidationWarning(ts_ms, w.symbol, w.side.value, d, w.band.value, level, price,
                                            w.liq or 0.0, source, w.tag))

    # --- auto-close -----------------------------------------------------------------------

    def _autoclose(self, w: _Watch, price: float, d: float, source: str, ts_ms: int, reason: str) -> None:
        w.closing = True
        w.episode += 1
        qty = None
        if self.cfg.partial_close and not w.partial_done:
            qty = self.partial_qty(w, price)
            w.partial_done = qty is not None
        cid = make_client_id("L", w.pid, w.symbol, w.side.value[0], w.episode)
        self._warn(w, d, price, source, ts_ms, "AUTOCLOSE")
        why = getattr(self.venue, "monitor_only", {}).get(w.symbol)
        if why is not None:  # the order will be refused: the trader must close it by hand, now
            self._alarm(w, d, qty, ts_ms, why)
        self.closes_sent += 1
        task = self.execution.close(ClosePosition(ts_ms, w.tag, w.symbol, w.side, cid, reason, qty))
        task.add_done_callback(partial(self._close_done, w))

    def _alarm(self, w: _Watch, d: float, qty: float | None, ts_ms: int, why: str) -> None:
        contracts = qty if qty is not None else w.contracts
        count = f"{contracts:g} contract{'s' if contracts != 1 else ''}"
        action = (f"close {w.symbol} {w.side.value.lower()} {count} on the exchange now:"
                  f" {d:.1f} % to liquidation")
        log.critical("%s (monitor-only: %s)", action, why)
        self.bus.publish(ManualActionRequired(ts_ms, w.symbol, w.side.value, contracts, d, action, why))

    def partial_qty(self, w: _Watch, price: float) -> float | None:
        """Contracts to close so that, if the venue keeps the isolated margin with the position, the
        distance is back at the threshold plus hysteresis; None = close all of it. Only one partial
        close per episode: if the distance is still below after it, the next trigger closes all."""
        a = (self.cfg.autoclose_distance_pct + self.cfg.hysteresis_pct) / 100.0
        if w.short:
            denom = price * (1 + a) * (1 + w.k) - w.entry
        else:
            denom = w.entry - price * (1 - a) * (1 - w.k)
        if denom <= 0 or w.coins_per_contract <= 0:
            return None
        keep = w.margin / denom / w.coins_per_contract
        reduce = ceil_to_unit(to_decimal(max(0.0, w.contracts - keep)), w.vol_unit)
        if reduce <= 0 or reduce >= to_decimal(w.contracts):
            return None
        return float(reduce)

    def _close_done(self, w: _Watch, task: asyncio.Task) -> None:
        w.closing = False
        if not w.alive or task.cancelled():  # cancelled: the console is stopping - not a reason to close again
            return
        if task.exception() is not None:
            w.failed, w.failed_ms = True, self.clock.now_ms()
            self.bus.publish(ErrorRaised(self.clock.now_ms(), "watchdog",
                                         f"AUTO-CLOSE of {w.symbol} {w.side.value} failed: {task.exception()} - "
                                         "the position is unprotected, close it by hand", level="CRITICAL"))
        self._reevaluate(w, self.clock.now_ms())

    def _reevaluate(self, w: _Watch, now: int) -> None:
        """Re-check now and at the next price: still below the threshold -> close again."""
        w.worse_key = -INF
        price, source = self.best_price(w.symbol, now)
        if price is not None:
            self._evaluate(w, price, source, now)

    # --- timer: repeats and stale data ----------------------------------------------------

    def _arm_timer(self) -> None:
        if self._timer is None:
            self._timer = self.clock.call_later(1.0, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            now = self.clock.now_ms()
            self.rest_prices.check(self._by_symbol.keys())
            stale_ms, repeat_ms = self.cfg.max_stale_data_s * 1000, self.cfg.repeat_s * 1000
            retry_ms = FAILED_RETRY_S * 1000
            green = Band.GREEN
            for symbol, watches in list(self._by_symbol.items()):  # (per symbol: this runs beside the tick path)
                mark, last = self.cache.mark.get(symbol), self.cache.last.get(symbol)
                priced_ms = max(mark[1] if mark else 0, last[1] if last else 0)
                for w in list(watches):
                    age_ms = now - max(priced_ms, w.since_ms)  # never priced: blind since it is watched
                    if w.failed and now - w.failed_ms >= retry_ms:
                        w.failed = False  # the refusal may have been the exchange's moment (an outage, a 1002
                        self._reevaluate(w, now)  # lifted); a held position past the threshold is unprotected
                    if age_ms > stale_ms:
                        self._blind(w, now, age_ms / 1000, self.cache.fair_price(symbol) or 0.0)
                    if w.band is not green and now - w.last_warn_ms >= repeat_ms:  # yellow or worse
                        self._repeat(w, now)
        except Exception as exc:  # timer boundary: report and keep watching
            log.exception("watchdog timer failed")
            self.bus.publish(ErrorRaised(self.clock.now_ms(), "watchdog", f"{type(exc).__name__}: {exc}", level="CRITICAL"))
        finally:
            if self.watches:
                self._arm_timer()

    def _repeat(self, w: _Watch, now: int) -> None:
        price, source = self.best_price(w.symbol, now)
        if price is not None and w.liq is not None:
            level = "CRITICAL" if w.band.severity >= Band.RED.severity else "WARNING"
            self._warn(w, distance_pct(w.side, price, w.liq), price, source, now, level)

    def _blind(self, w: _Watch, now: int, age_s: float, price: float) -> None:
        """No price at all for `max_stale_data_s` (`age_s`; `price` the last one known, 0 if none)."""
        if w.closing:
            return
        near = w.band.severity >= Band.YELLOW.severity  # blind: close what was last seen yellow or red, warn on green
        if near and self.cfg.on_stale == "close" and not w.failed:
            self._autoclose(w, price, distance_pct(w.side, price, w.liq) if price else 0.0, "stale", now, "STALE")
            self._window(w)
        elif now - w.stale_alert_ms >= self.cfg.repeat_s * 1000 or not w.stale_alert_ms:
            w.stale_alert_ms = now
            self.bus.publish(ErrorRaised(now, "watchdog", f"STALE PRICES: no price for {w.symbol} for {age_s:.0f} s "
                                         f"while its {w.side.value} position is {w.band.value}", level="CRITICAL"))


def _sane(side: Side, entry: Decimal, formula: Decimal, venue: Decimal) -> bool:
    """The formula may be more conservative than the exchange, never absurd: on the loss side of entry,
    and its distance from entry within [1/SANE_FACTOR, SANE_FACTOR] of the exchange's."""
    f_gap, v_gap = (formula - entry, venue - entry) if side is Side.SHORT else (entry - formula, entry - venue)
    if f_gap <= 0 or v_gap <= 0:
        return v_gap <= 0  # an exchange value on the wrong side is no better: keep the usual rule
    return v_gap / SANE_FACTOR <= f_gap <= v_gap * SANE_FACTOR
