"""Domain layer: evaluating a section's conditions against indicator values (strategy.md §1.1).

A condition on a missing, None, NaN or infinite value is false and never raises; an empty section
never fires; `match = "all"` ANDs the conditions, `match = "any"` ORs them.
"""

from __future__ import annotations

import math
import operator
from typing import Callable, Mapping

from tui_trader.domain.strategy.schema import Condition, Section

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


def section_fires(section: Section, values: Mapping[str, float | None]) -> bool:
    if not section.conditions:
        return False
    hits = (condition_true(c, values) for c in section.conditions)
    return all(hits) if section.match == "all" else any(hits)
