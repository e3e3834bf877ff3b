"""Domain layer: evaluating a section's conditions against indicator values (strategy.md §1.1).

A condition on a missing, None, NaN or infinite value is false and never raises; an empty section
never fires; `match = "all"` ANDs the conditions, `match = "any"` ORs them.

`section_may_fire` answers the same question for ranges instead of values: given the range each
indicator can still take over a horizon, can the section fire at all? "No" must be certain (the
runner skips steps on it), so ranges are widened by a relative `BOUND_SLACK` far above float
rounding of the window sums, and an unknown range (-inf, inf) always "may".
"""

from __future__ import annotations

import math
import operator
from typing import Callable, Mapping

from tui_trader.domain.strategy.schema import Condition, Section, Strategy

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def condition_true(cond: Condition, values: Mapping[str, float | None]) -> bool:
    v = values.get(cond.indicator)
    if v is None or not math.isfinite(v):
        return False
    return _OPS[cond.operator](v, cond.value)


# Sections compiled to (match_all, ((indicator, op, value), ...)): this runs on every strategy step,
# so it avoids model attribute access and generator overhead. Keyed by id() with the section kept
# alive alongside, so an id can never be reused for another section.
_COMPILED: dict[int, tuple[Section, bool, tuple[tuple[str, Callable[[float, float], bool], float], ...]]] = {}


def _compiled(section: Section) -> tuple[bool, tuple[tuple[str, Callable[[float, float], bool], float], ...]]:
    entry = _COMPILED.get(id(section))
    if entry is None or entry[0] is not section:
        conds = tuple((c.indicator, _OPS[c.operator], c.value) for c in section.conditions)
        entry = _COMPILED[id(section)] = (section, section.match == "all", conds)
    return entry[1], entry[2]


BOUND_SLACK = 1e-9

_MAY: dict[str, Callable[[float, float, float], bool]] = {  # (low, high, threshold) -> can op hold?
    ">": lambda lo, hi, v: hi > v,
    ">=": lambda lo, hi, v: hi >= v,
    "<": lambda lo, hi, v: lo < v,
    "<=": lambda lo, hi, v: lo <= v,
}


def section_may_fire(section: Section, bounds: Callable[[str], "tuple[float, float] | None"],
                     blocker: Callable[[Condition], None] | None = None) -> bool:
    """Can `section` fire for some values within `bounds(indicator)` (None: undefined throughout)?

    When it cannot, `blocker` is told the conditions that make it so: the first impossible one of
    an "all" section, every one of an "any" section."""
    conds = section.conditions
    if not conds:
        return False
    match_all = section.match == "all"
    for c in conds:
        rng = bounds(c.indicator)
        if rng is None:
            may = False
        else:
            slack = BOUND_SLACK * max(1.0, abs(rng[0]), abs(rng[1]))
            may = _MAY[c.operator](rng[0] - slack, rng[1] + slack, c.value)
        if not may and blocker is not None:
            blocker(c)
        if may is not match_all:
            return may
    return match_all


def section_fires(section: Section, values: Mapping[str, float | None]) -> bool:
    """AND (`match = "all"`) or OR of the conditions; an empty section never fires; a missing or
    non-finite value makes its condition false. Stops at the first condition that decides."""
    match_all, conds = _compiled(section)
    if not conds:
        return False
    get = values.get
    for name, op, value in conds:
        v = get(name)
        hit = v is not None and math.isfinite(v) and op(v, value)
        if hit is not match_all:
            return hit
    return match_all


# What each indicator type can ever be (inclusive ends; None: unbounded): a condition outside this
# range can never hold. Only types whose range is certain are listed.
TYPE_RANGES: dict[str, tuple[float, float]] = {
    "rsi": (0.0, 100.0), "volume_surge_ratio": (0.0, math.inf), "spread_pct": (0.0, math.inf),
    "pump_magnitude_pct": (-100.0, math.inf), "twpa": (0.0, math.inf),
}


def _holds_somewhere(conds: list[Condition], lo: float, hi: float) -> bool:
    """Is there a value in [lo, hi] for which every condition of `conds` (one indicator) holds?"""
    lo_open = hi_open = False
    for c in conds:
        if c.operator in (">", ">=") and (c.value > lo or (c.value == lo and c.operator == ">")):
            lo, lo_open = c.value, c.operator == ">"
        elif c.operator in ("<", "<=") and (c.value < hi or (c.value == hi and c.operator == "<")):
            hi, hi_open = c.value, c.operator == "<"
    return lo < hi or (lo == hi and not lo_open and not hi_open)


def section_never_fires(section: Section, type_of: Callable[[str], str]) -> str | None:
    """Why `section` can never fire whatever the market does (None: it may): it is empty, or (match
    "all") conditions on one indicator exclude each other or its range, or (match "any") each does."""
    if not section.conditions:
        return "it has no conditions (an empty section never fires)"
    groups: dict[str, list[Condition]] = {}
    for c in section.conditions:
        groups.setdefault(c.indicator, []).append(c)
    for name, conds in groups.items():
        lo, hi = TYPE_RANGES.get(type_of(name), (-math.inf, math.inf))
        if section.match == "all" and not _holds_somewhere(conds, lo, hi):
            shown = " and ".join(f"{c.indicator} {c.operator} {c.value:g}" for c in conds)
            within = f" ({name} is always within {lo:g}..{hi:g})" if (lo, hi) != (-math.inf, math.inf) else ""
            return f"{shown} can never all hold{within}"
    if section.match == "any":
        ranges = {c.indicator: TYPE_RANGES.get(type_of(c.indicator), (-math.inf, math.inf)) for c in section.conditions}
        if not any(_holds_somewhere([c], *ranges[c.indicator]) for c in section.conditions):
            return "none of its conditions can ever hold (" + ", ".join(
                f"{c.indicator} is always within {ranges[c.indicator][0]:g}..{ranges[c.indicator][1]:g}"
                for c in section.conditions) + ")"
    return None


def never_trades(s: Strategy) -> list[str]:
    """Why `s` can never open a position (empty: it may): it is disabled, or S1 or Z1 can never fire.
    A valid file that is inert is easy to write by mistake (issue 23) and silent in a backtest."""
    reasons = [] if s.enabled else ["enabled = false"]
    for key, section in (("s1_signal", s.s1_signal), ("z1_entry", s.z1_entry)):
        why = section_never_fires(section, lambda name: str(getattr(s.resolve(name), "type", "")))
        if why is not None:
            reasons.append(f"{key}: {why}")
    return reasons
