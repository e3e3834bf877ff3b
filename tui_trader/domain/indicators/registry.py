"""Domain layer: builds the market-data indicators a strategy uses, for one symbol.

`IndicatorSet` owns one price log and one volume log shared by every TWPA-based and trade-volume
instance, so each trade is stored once however many windows read it. Only indicators named by a
condition (plus the velocity a `momentum_reversal` reads) are built; `unrealized_pnl_pct` and
`momentum_reversal` belong to the strategy machine (they need its position and signal state).

Feed it `TradeTick` / `BookTick` / `CandleClosed` events of its symbol, then ask `values(now_ms)`.
Values are finite floats or None (undefined): NaN and inf never leave this module.

`bounds(name, now, horizon)` says what an indicator can still become before new data arrives, so
the strategy runner can skip the steps that provably cannot change anything (see
`StrategyMachine.quiet_until`): windowed price indicators bound their averages by the prices in
force over the horizon; candle- and book-driven ones are constant between events; the others
answer "anything" (never skipped on their account). For the conditions found impossible the set
records what keeps them so (`note_blocker` -> `QuietDeps`): trades priced inside a band the
indicator derives from its threshold (`trade_band`), and no book / candle event if a book- or
candle-driven indicator is one of them.
"""

from __future__ import annotations

import math
from typing import Mapping, Protocol

from tui_trader.domain.events import BookTick, CandleClosed, CandlesClosed, Event, TradeTick
from tui_trader.domain.indicators.pump import PumpMagnitude
from tui_trader.domain.indicators.rsi import Rsi
from tui_trader.domain.indicators.series import EventLog, Kind
from tui_trader.domain.indicators.spread import Spread
from tui_trader.domain.indicators.twpa import Twpa
from tui_trader.domain.indicators.velocity import PriceVelocity
from tui_trader.domain.indicators.volume_surge import CandleVolumeSurge, VolumeSurge
from tui_trader.domain.strategy.schema import (
    MACHINE_OWNED,
    Model,
    PumpSpec,
    RsiSpec,
    SpreadSpec,
    Strategy,
    TwpaSpec,
    VelocitySpec,
    VolumeSurgeSpec,
)


UNBOUNDED = (-math.inf, math.inf)
MAX_INPUT = 1e200  # prices and sizes above this are bad data (the exact window sums stop at ~1e269)
_CONSTANT_BETWEEN_EVENTS = (Rsi, CandleVolumeSurge, Spread)  # change only when a candle / book arrives


class QuietDeps:
    """What keeps the impossible conditions noted since `begin_bounds()` impossible: trade prices
    inside [low, high], and no event of the kinds in `kinds` ("book", "candle")."""

    __slots__ = ("low", "high", "kinds")

    def __init__(self) -> None:
        self.low, self.high = -math.inf, math.inf
        self.kinds: set[str] = set()

    @classmethod
    def ending_on_any_event(cls) -> "QuietDeps":
        """A record no market event keeps (an empty trade band, every other kind listed)."""
        deps = cls()
        deps.low, deps.high, deps.kinds = math.inf, -math.inf, {"book", "candle"}
        return deps

    def keeps(self, kind: str, price: float = math.nan) -> bool:
        """Does an event of `kind` (a trade at `price`) leave the noted conditions impossible?"""
        if kind == "trade":
            return self.low <= price <= self.high
        return kind not in self.kinds


class Indicator(Protocol):
    longest_s: float

    def value(self, now_ms: int) -> float | None: ...


class IndicatorSet:
    """The market-data indicators of one (strategy, symbol)."""

    def __init__(self, specs: Mapping[str, Model]) -> None:
        self.prices = EventLog(Kind.STEP)
        self.volumes = EventLog(Kind.POINT)
        self.indicators: dict[str, Indicator] = {}
        self._on_book: list[Spread] = []
        self._on_candle: list[Rsi | CandleVolumeSurge] = []
        for name, spec in specs.items():
            if spec.type not in MACHINE_OWNED:  # type: ignore[attr-defined]
                self.indicators[name] = self._build(spec)
        self.deps = QuietDeps()
        self.last_price: float | None = None
        self.last_event_ms: int | None = None
        self.first_event_ms: int | None = None

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("deps", QuietDeps())  # checkpoints from before the quiet steps

    @classmethod
    def for_strategy(cls, strategy: Strategy) -> "IndicatorSet":
        return cls(strategy.used_indicators())

    def _build(self, spec: Model) -> Indicator:
        if isinstance(spec, TwpaSpec):
            return Twpa(self.prices, spec.window, spec.min_coverage)
        if isinstance(spec, PumpSpec):
            return PumpMagnitude(self.prices, spec.current, spec.baseline, spec.min_coverage)
        if isinstance(spec, VelocitySpec):
            return PriceVelocity(self.prices, spec.current, spec.baseline, spec.min_coverage)
        if isinstance(spec, VolumeSurgeSpec) and spec.source == "trades":
            return VolumeSurge(self.volumes, spec.current, spec.baseline, spec.bucket_s)
        if isinstance(spec, VolumeSurgeSpec):
            surge = CandleVolumeSurge(spec.candles)
            self._on_candle.append(surge)
            return surge
        if isinstance(spec, RsiSpec):
            rsi = Rsi(spec.period, spec.timeframe)
            self._on_candle.append(rsi)
            return rsi
        if isinstance(spec, SpreadSpec):
            spread = Spread(spec.max_age_s)
            self._on_book.append(spread)
            return spread
        raise ValueError(f"no market-data indicator for {spec!r}")

    @property
    def longest_s(self) -> float:
        return max((i.longest_s for i in self.indicators.values()), default=0.0)

    def on_event(self, event: Event) -> None:
        """Feed one market event of this set's symbol (other event types are ignored)."""
        if isinstance(event, TradeTick):
            self.on_trade(event.ts_ms, event.price, event.qty)
        elif isinstance(event, BookTick):
            self.on_book(event.ts_ms, event.bid, event.ask)
        elif isinstance(event, CandleClosed):
            self._seen(event.ts_ms)
            for ind in self._on_candle:
                if isinstance(ind, Rsi):
                    ind.on_candle(event.interval_s, event.close)
                else:
                    ind.on_candle(event.interval_s, event.volume)
        elif isinstance(event, CandlesClosed):
            if event.candles:
                self._seen(event.candles[0][0] + event.interval_s * 1000)  # the first close
            self._seen(event.ts_ms)
            for ind in self._on_candle:
                on_candle, interval, col = ind.on_candle, event.interval_s, 4 if isinstance(ind, Rsi) else 5
                for candle in event.candles:
                    on_candle(interval, candle[col])

    def on_book(self, ts_ms: int, bid: float, ask: float) -> None:
        self._seen(ts_ms)
        for spread in self._on_book:
            spread.on_book(ts_ms, bid, ask)

    def on_trade(self, ts_ms: int, price: float, qty: float) -> None:
        if not (0 < price < MAX_INPUT and 0 <= qty < MAX_INPUT):
            return  # a bad print (nan, inf, absurd) must not poison every window
        self._seen(ts_ms)
        self.prices.add(ts_ms, price)
        self.volumes.add(ts_ms, qty)
        self.last_price = price

    def on_trades(self, times: list[int], prices: list[float], qtys: list[float]) -> None:
        """Many trades in time order, as `on_trade` one by one would record them (the logs take
        them in one `extend`; a batch holding a bad print goes one by one, dropping it)."""
        if not times:
            return
        sane = 0 < min(prices) and max(prices) < MAX_INPUT and 0 <= min(qtys) and max(qtys) < MAX_INPUT
        if not (sane and math.isfinite(sum(prices)) and math.isfinite(sum(qtys))):  # (min / max skip a nan)
            for ts, price, qty in zip(times, prices, qtys):
                self.on_trade(ts, price, qty)
            return
        self._seen(times[0])
        self._seen(max(times))
        self.prices.extend(times, prices)
        self.volumes.extend(times, qtys)
        self.last_price = prices[-1]

    def _seen(self, ts_ms: int) -> None:
        if self.first_event_ms is None:
            self.first_event_ms = ts_ms
        if self.last_event_ms is None or ts_ms > self.last_event_ms:
            self.last_event_ms = ts_ms

    def begin_bounds(self) -> QuietDeps:
        """Start recording what the next `bounds` calls depend on (returns the record)."""
        deps = self.deps = QuietDeps()
        return deps

    def bounds(self, name: str, now_ms: int, horizon_ms: int) -> tuple[float, float] | None:
        """(low, high) that indicator `name` stays within over `[now, now + horizon]` if no market
        event arrives meanwhile; None = undefined throughout. Reads the events held, not the
        windows' cursors, so it may also be asked for an earlier `now` (the runner re-checks a
        quiet from the step that started it, with newer events included)."""
        ind = self.indicators[name]
        if isinstance(ind, _CONSTANT_BETWEEN_EVENTS):
            v = ind.value(now_ms)
            return None if v is None or not math.isfinite(v) else (v, v)
        bounds = getattr(ind, "bounds", None)
        return UNBOUNDED if bounds is None else bounds(now_ms, horizon_ms)

    def note_blocker(self, name: str, now_ms: int, horizon_ms: int, op: str, threshold: float) -> None:
        """Record in `deps` what keeps `name op threshold` impossible over the horizon (it is now,
        by `bounds`). Names that are not market indicators (the machine's own) are skipped."""
        ind = self.indicators.get(name)
        if ind is None:
            return
        deps = self.deps
        if isinstance(ind, _CONSTANT_BETWEEN_EVENTS):
            deps.kinds.add("book" if isinstance(ind, Spread) else "candle")
            return
        band = getattr(ind, "trade_band", None)
        low, high = band(now_ms, horizon_ms, op, threshold) if band is not None else (math.inf, -math.inf)
        deps.low, deps.high = max(deps.low, low), min(deps.high, high)

    def values(self, now_ms: int) -> "LazyValues":
        """The indicators at `now_ms` (never earlier than a previous call: windows only slide).

        Values are computed when a condition reads them and cached for this step: a section stops
        at its first false condition, so a quiet step costs one indicator, not all of them."""
        self.prices.advance(now_ms)
        self.volumes.advance(now_ms)
        return LazyValues(self.indicators, now_ms)


class LazyValues(Mapping[str, "float | None"]):
    """Read-only view of a step's indicator values, each computed on first access (None if undefined)."""

    __slots__ = ("_indicators", "_now", "_cache")

    def __init__(self, indicators: dict, now_ms: int) -> None:
        self._indicators = indicators
        self._now = now_ms
        self._cache: dict[str, float | None] = {}

    def __getitem__(self, name: str) -> float | None:
        try:
            return self._cache[name]
        except KeyError:
            pass
        v = self._indicators[name].value(self._now)  # KeyError for an unknown name, as a dict
        v = v if v is not None and math.isfinite(v) else None
        self._cache[name] = v
        return v

    def get(self, name: str, default: float | None = None) -> float | None:  # the hot path: no KeyError dance
        if name in self._cache:
            return self._cache[name]
        if name not in self._indicators:
            return default
        return self[name]

    def __iter__(self):
        return iter(self._indicators)

    def __len__(self) -> int:
        return len(self._indicators)
