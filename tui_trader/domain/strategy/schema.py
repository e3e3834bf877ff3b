"""Domain layer: the 5-section strategy file format (strategy.md §1) as pydantic models.

Parsing is pure (text in, `Strategy` out); reading the file is the caller's I/O. Every problem
becomes one line of a `StrategyError`: `<key path>: <value> <what is allowed>`, e.g.
`z1_entry.order.leverage: 500 is outside 1..200`. Cross-field rules that pydantic cannot see
(condition names, leverage vs. `global_limits.max_leverage`, direction) are checked after parsing
so that their lines carry the key path too.

Choices where the reference is silent:
* `direction` is required (the original silently defaulted to LONG) and `BOTH` is rejected: one
  machine trades one side, so a two-sided strategy is two files (LONG and SHORT).
* "signal timeout" / "entry window" of the issue = `o1_cancel.timeout_s`; the cooldowns after O1
  and E1 are `o1_cancel.cooldown_s` and `emergency_exit.cooldown_s`; `global_limits.symbols`
  (empty = the symbols the app configures) lists where the strategy runs.
* A stop loss must lie inside the liquidation move of the leverage (`stop_loss_pct < 100 /
  leverage`); the exact liquidation check with the contract's maintenance rate is the
  execution layer's, at entry.
"""

from __future__ import annotations

import json
import tomllib
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from tui_trader.domain.config import MAX_LEVERAGE, MIN_LEVERAGE
from tui_trader.domain.errors import StrategyError
from tui_trader.domain.indicators.rsi import TIMEFRAMES_S
from tui_trader.domain.strategy.original import from_original

Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h"]  # the candle intervals (seconds: TIMEFRAMES_S)
OPERATORS = (">", "<", ">=", "<=")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str):
        return repr(v)
    return str(v)


def between(lo: float, hi: float, *, lo_open: bool = False) -> AfterValidator:
    def check(v: float) -> float:
        if (v <= lo if lo_open else v < lo) or v > hi:
            shown = f"({_fmt(lo)}, {_fmt(hi)}]" if lo_open else f"{_fmt(lo)}..{_fmt(hi)}"
            raise ValueError(f"{_fmt(v)} is outside {shown}")
        return v

    return AfterValidator(check)


def _positive(v: float) -> float:
    if not v > 0:
        raise ValueError(f"{_fmt(v)} must be > 0")
    return v


def _non_negative(v: float) -> float:
    if v < 0:
        raise ValueError(f"{_fmt(v)} must be >= 0")
    return v


def _window(v: tuple[float, float]) -> tuple[float, float]:
    a, b = v
    if not a > b >= 0:
        raise ValueError(f"[{_fmt(a)}, {_fmt(b)}] must be [a, b] seconds ago with a > b >= 0")
    return v


Positive = Annotated[float, AfterValidator(_positive)]
NonNegative = Annotated[float, AfterValidator(_non_negative)]
Count = Annotated[int, AfterValidator(_positive)]
WindowS = Annotated[tuple[float, float], AfterValidator(_window)]
Pct = Annotated[float, between(0, 100, lo_open=True)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- indicators ------------------------------------------------------------------------------


class TwpaSpec(Model):
    type: Literal["twpa"]
    window: WindowS = (300.0, 0.0)
    min_coverage: Annotated[float, between(0, 1, lo_open=True)] = 0.5


class PumpSpec(Model):
    type: Literal["pump_magnitude_pct"]
    current: WindowS = (10.0, 0.0)
    baseline: WindowS = (60.0, 30.0)
    min_coverage: Annotated[float, between(0, 1, lo_open=True)] = 0.5


class VelocitySpec(Model):
    type: Literal["price_velocity"]
    current: WindowS = (10.0, 0.0)
    baseline: WindowS = (20.0, 10.0)
    min_coverage: Annotated[float, between(0, 1, lo_open=True)] = 0.5


class VolumeSurgeSpec(Model):
    type: Literal["volume_surge_ratio"]
    source: Literal["trades", "candles"] = "trades"
    current: WindowS = (30.0, 0.0)
    baseline: WindowS = (600.0, 30.0)
    bucket_s: Positive = 30.0
    candles: Annotated[int, between(1, 1000)] = 10


class RsiSpec(Model):
    type: Literal["rsi"]
    period: Annotated[int, between(2, 1000)] = 14
    timeframe: Timeframe = "1m"


class SpreadSpec(Model):
    type: Literal["spread_pct"]
    max_age_s: Positive = 5.0


class PnlSpec(Model):
    type: Literal["unrealized_pnl_pct"]


class MomentumReversalSpec(Model):
    type: Literal["momentum_reversal"]
    velocity: str = "price_velocity"
    min_peak: Positive = 0.05


# --- bar-mode indicators (`evaluation = "bar"`): closed candles of the strategy's interval,
# counted not timed; definitions in `domain/indicators/bars.py` --------------------------------

BarField = Literal["open", "high", "low", "close", "volume"]
Bars = Annotated[int, between(1, 100_000)]


class BarRollingSpec(Model):
    """min / max / mean / sum of `field` over the `bars` bars ending `offset` bars before this one."""

    type: Literal["bar_rolling"]
    stat: Literal["min", "max", "mean", "sum"]
    field: BarField = "close"
    bars: Bars
    offset: Annotated[int, between(0, 100_000)] = 0


class BarSmaSpec(Model):
    type: Literal["bar_sma"]
    field: BarField = "close"
    bars: Bars


class BarEmaSpec(Model):
    type: Literal["bar_ema"]
    field: BarField = "close"
    bars: Bars


class BarRsiSpec(Model):
    """Wilder RSI seeded with the simple mean of the first `period` changes."""

    type: Literal["bar_rsi"]
    field: BarField = "close"
    period: Annotated[int, between(2, 1000)] = 14


class BarChangeSpec(Model):
    """`field` now / its min (from_low) or max (from_high) over the `bars` bars before - 1: a
    fraction (0.07 is 7 %), the pump of a close series."""

    type: Literal["bar_change_from_low", "bar_change_from_high"]
    field: BarField = "close"
    bars: Bars


class BarVolumeSurgeSpec(Model):
    """mean of `field` over the last `recent` bars (this one included) / its mean over the `base`
    bars before them; a zero base with volume in the recent bars counts as any surge met."""

    type: Literal["bar_volume_surge"]
    field: BarField = "volume"
    recent: Bars = 5
    base: Bars = 60


BAR_SPECS = (BarRollingSpec, BarSmaSpec, BarEmaSpec, BarRsiSpec, BarChangeSpec, BarVolumeSurgeSpec)
TICK_SPECS = (TwpaSpec, PumpSpec, VelocitySpec, VolumeSurgeSpec, RsiSpec, SpreadSpec, MomentumReversalSpec)

IndicatorSpec = Annotated[
    Union[TwpaSpec, PumpSpec, VelocitySpec, VolumeSurgeSpec, RsiSpec, SpreadSpec, PnlSpec, MomentumReversalSpec,
          BarRollingSpec, BarSmaSpec, BarEmaSpec, BarRsiSpec, BarChangeSpec, BarVolumeSurgeSpec],
    Field(discriminator="type"),
]
SPEC_TYPES: dict[str, type[Model]] = {
    tag: cls
    for cls in (*TICK_SPECS, PnlSpec, *BAR_SPECS)
    for tag in cls.model_fields["type"].annotation.__args__  # type: ignore[union-attr]
}
MACHINE_OWNED = ("unrealized_pnl_pct", "momentum_reversal")  # computed by the machine, not market data


# --- sections --------------------------------------------------------------------------------


class Condition(Model):
    indicator: str
    operator: Literal[">", "<", ">=", "<="]
    value: float
    id: str | None = None


class Section(Model):
    conditions: list[Condition] = []
    match: Literal["all", "any"] = "all"


def _isolated_only(v: str) -> str:
    if v != "isolated":
        raise ValueError("cross margin is not supported: every position is isolated (the watchdog and the"
                         " pre-trade rule measure each position's own margin)")
    return v


class O1Section(Section):
    timeout_s: Positive = 300.0
    cooldown_s: NonNegative = 300.0


class OrderSpec(Model):
    size_pct: Pct
    leverage: Annotated[int, between(MIN_LEVERAGE, MAX_LEVERAGE)]
    margin_mode: Annotated[Literal["isolated", "cross"], AfterValidator(_isolated_only)] = "isolated"
    order_type: Literal["market", "limit"] = "market"
    limit_offset_pct: Annotated[float, between(-50, 50)] = 0.0
    stop_loss_pct: Pct
    take_profit_pct: Positive
    fill_timeout_s: Positive = 10.0


class Z1Section(Section):
    order: OrderSpec


class E1Section(Section):
    cooldown_s: NonNegative = 1800.0
    cancel_pending: bool = True


class GlobalLimits(Model):
    max_open_positions: Annotated[int, between(1, 500)] = 3
    max_positions_per_symbol: Annotated[int, between(1, 1)] = 1
    normal_exit_cooldown_s: NonNegative = 300.0
    max_hold_s: Positive = 7200.0
    max_daily_trades: Annotated[int, between(1, 10_000)] = 20
    daily_loss_limit_pct: Pct = 5.0
    max_leverage: Annotated[int, between(MIN_LEVERAGE, MAX_LEVERAGE)] = 5
    min_entry_liq_distance_pct: Annotated[float, between(0, 100)] = 20.0
    max_stale_data_s: Positive = 10.0
    warmup_s: NonNegative | None = None  # None = the longest S1 indicator window
    symbols: list[str] = []


class Strategy(Model):
    strategy_name: Annotated[str, Field(min_length=1, max_length=64)]
    direction: Literal["LONG", "SHORT", "BOTH"]
    enabled: bool = True
    description: str = ""
    # "tick": stepped every second and on every market event (tick data); "bar": stepped on each
    # closed candle of `bar_interval` and at the machine's own deadlines, entries at the bar's close
    evaluation: Literal["tick", "bar"] = "tick"
    bar_interval: Timeframe = "1m"
    indicators: dict[str, IndicatorSpec] = {}
    s1_signal: Section = Section()
    o1_cancel: O1Section = O1Section()
    z1_entry: Z1Section
    ze1_close: Section = Section()
    emergency_exit: E1Section = E1Section()
    global_limits: GlobalLimits = GlobalLimits()

    @property
    def bar_mode(self) -> bool:
        return self.evaluation == "bar"

    @property
    def bar_interval_s(self) -> int:
        return TIMEFRAMES_S[self.bar_interval]

    def sections(self) -> dict[str, Section]:
        """The five sections by key, in evaluation-table order."""
        return {
            "s1_signal": self.s1_signal,
            "o1_cancel": self.o1_cancel,
            "z1_entry": self.z1_entry,
            "ze1_close": self.ze1_close,
            "emergency_exit": self.emergency_exit,
        }

    def resolve(self, name: str) -> Model:
        """The spec a condition name means: a named instance, else a bare type with defaults."""
        if name in self.indicators:
            return self.indicators[name]
        return SPEC_TYPES[name](type=name)

    def used_indicators(self) -> dict[str, Model]:
        """Every indicator the sections need (plus dependencies), by name: only these are computed."""
        out: dict[str, Model] = {}
        for section in self.sections().values():
            for cond in section.conditions:
                out[cond.indicator] = self.resolve(cond.indicator)
        for spec in list(out.values()):
            if isinstance(spec, MomentumReversalSpec):
                out[spec.velocity] = self.resolve(spec.velocity)
        return out


# --- loading ---------------------------------------------------------------------------------


def strategy_from_toml(text: str) -> Strategy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StrategyError(f"not valid TOML: {exc}") from None
    except RecursionError:
        raise StrategyError("not a strategy: TOML nested too deeply") from None
    return strategy_from_dict(data)


def strategy_from_json(text: str) -> Strategy:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StrategyError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise StrategyError("not a strategy: JSON nested too deeply") from None
    if not isinstance(data, dict):
        kind = {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(data), "number")
        raise StrategyError(f"a strategy must be a JSON object; this file is a JSON {kind}")
    return strategy_from_dict(from_original(data))  # the original's camelCase names, §1.4


def strategy_from_text(text: str, suffix: str) -> Strategy:
    """Parse by file suffix: `.toml` or `.json`."""
    if suffix.lower() == ".json":
        return strategy_from_json(text)
    if suffix.lower() == ".toml":
        return strategy_from_toml(text)
    raise StrategyError(f"unknown strategy file type {suffix!r} (allowed: .toml, .json)")


def strategy_from_dict(data: dict[str, Any]) -> Strategy:
    """Validate a parsed document; every problem is one line of the raised `StrategyError`."""
    try:
        strategy = Strategy.model_validate(data)
    except ValidationError as exc:
        raise StrategyError("\n".join(_error_line(e) for e in exc.errors())) from None
    problems = cross_check(strategy)
    if problems:
        raise StrategyError("\n".join(problems))
    return strategy


def _path(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    if len(parts) > 2 and parts[0] == "indicators" and parts[2] in SPEC_TYPES:
        del parts[2]  # the union tag pydantic inserts
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out or "(document)"


def _error_line(err: Any) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "value_error":
        text = str(ctx.get("error", err["msg"]))
    elif kind == "literal_error":
        text = f"{_fmt(value)} is not allowed (allowed: {ctx.get('expected')})"
    elif kind == "union_tag_invalid":
        text = f"{_fmt(ctx.get('tag'))} is not an indicator type (allowed: {', '.join(SPEC_TYPES)})"
    elif kind == "union_tag_not_found":
        text = f"missing 'type' (allowed: {', '.join(SPEC_TYPES)})"
    elif kind == "missing":
        text = "required key is missing"
    elif kind == "extra_forbidden":
        text = "unknown key"
    else:
        text = f"{_fmt(value)}: {err['msg'][0].lower()}{err['msg'][1:]}"
    return f"{_path(err['loc'])}: {text}"


def _mode_check(s: Strategy) -> list[str]:
    """Bar-mode strategies read bar indicators only, tick-mode ones tick indicators only: a bar
    machine is not stepped on trades, so a tick indicator would be read at bar closes only."""
    problems = []
    for name, spec in s.indicators.items():
        if s.bar_mode and isinstance(spec, TICK_SPECS):
            bar_types = ", ".join(t for t, c in SPEC_TYPES.items() if c in BAR_SPECS)
            problems.append(f"indicators.{name}: {spec.type!r} is a tick indicator; a strategy with"  # type: ignore[attr-defined]
                            f" evaluation = \"bar\" uses the bar_* indicators (allowed: {bar_types})")
        elif not s.bar_mode and isinstance(spec, BAR_SPECS):
            problems.append(  # type: ignore[attr-defined]
                f"indicators.{name}: {spec.type!r} is a bar indicator: it needs evaluation = \"bar\"")
    if s.bar_mode:
        for key, section in s.sections().items():
            for i, cond in enumerate(section.conditions):
                spec_type = SPEC_TYPES.get(cond.indicator)
                if cond.indicator not in s.indicators and spec_type in TICK_SPECS:
                    problems.append(f"{key}.conditions[{i}].indicator: {cond.indicator!r} is a tick indicator;"
                                    " a strategy with evaluation = \"bar\" uses bar_* indicators")
    return problems


def cross_check(s: Strategy) -> list[str]:
    """Rules spanning several keys; one message per problem."""
    problems: list[str] = []
    if s.direction == "BOTH":
        problems.append("direction: 'BOTH' is not supported (allowed: LONG, SHORT; use one file per side)")
    known = sorted(set(s.indicators) | set(SPEC_TYPES))
    for key, section in s.sections().items():
        for i, cond in enumerate(section.conditions):
            if cond.indicator not in s.indicators and cond.indicator not in SPEC_TYPES:
                problems.append(f"{key}.conditions[{i}].indicator: {cond.indicator!r} is not a known indicator (allowed: {', '.join(known)})")
            elif cond.indicator not in s.indicators and SPEC_TYPES[cond.indicator] in BAR_SPECS:
                problems.append(f"{key}.conditions[{i}].indicator: {cond.indicator!r} needs its own"
                                " [indicators.<name>] table (its window has no default)")
    problems += _mode_check(s)
    for name, spec in s.indicators.items():
        if isinstance(spec, MomentumReversalSpec):
            target = s.indicators.get(spec.velocity)
            if not (isinstance(target, VelocitySpec) or (target is None and spec.velocity == "price_velocity")):
                problems.append(f"indicators.{name}.velocity: {spec.velocity!r} is not a price_velocity instance")
    order, limits = s.z1_entry.order, s.global_limits
    if order.leverage > limits.max_leverage:
        problems.append(f"z1_entry.order.leverage: {order.leverage} is above global_limits.max_leverage ({limits.max_leverage})")
    if order.stop_loss_pct >= 100.0 / order.leverage:
        problems.append(
            f"z1_entry.order.stop_loss_pct: {_fmt(order.stop_loss_pct)} is beyond the liquidation move at leverage "
            f"{order.leverage} (must be < {_fmt(100.0 / order.leverage)})"
        )
    return problems
