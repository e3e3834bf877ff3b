"""Domain layer: maps the original system's JSON strategy names onto this format (strategy.md §1.4).

Applied to JSON documents before validation, so a strategy exported from the original loads (or
fails with the usual key-path messages). Renames: condition `indicatorId` -> `indicator`,
`timeoutSeconds` -> `timeout_s`, `cooldownMinutes` x 60 -> `cooldown_s`, `actions.cancelPending`
-> `cancel_pending`, `positionSize {type: percentage, value}` -> `order.size_pct`,
`stopLoss` / `takeProfit` `offsetPercent` -> positive `order.stop_loss_pct` / `take_profit_pct`,
section `logic` "OR" / "AND" -> `match` "any" / "all", `*_cooldown_minutes` limits -> seconds.
Not carried over (dropped): `riskAdjustedPricing`, `risk_adjustment_points`, `actions.closePosition`
and `actions.logEvent` (closing and logging are not optional here).
"""

from __future__ import annotations

import copy
from typing import Any

SECTIONS = ("s1_signal", "o1_cancel", "z1_entry", "ze1_close", "emergency_exit")
_MINUTE_LIMITS = {
    "normal_exit_cooldown_minutes": ("global_limits", "normal_exit_cooldown_s"),
    "signal_cancellation_cooldown_minutes": ("o1_cancel", "cooldown_s"),
    "emergency_exit_cooldown_minutes": ("emergency_exit", "cooldown_s"),
}


def from_original(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` with the original's names translated; other keys are left for validation."""
    doc = copy.deepcopy(data)
    for key in SECTIONS:
        section = doc.get(key)
        if isinstance(section, dict):
            _section(section)
    z1 = doc.get("z1_entry")
    if isinstance(z1, dict):
        _order(z1)
    limits = doc.get("global_limits")
    if isinstance(limits, dict):
        limits.pop("risk_adjustment_points", None)
        for old, (section_key, new) in _MINUTE_LIMITS.items():
            if old not in limits:
                continue
            target = doc.setdefault(section_key, {})
            if isinstance(target, dict):  # (not a table: validation names the section)
                target[new] = _minutes(limits.pop(old))
    return doc


def _minutes(value: Any) -> Any:
    return value * 60 if isinstance(value, (int, float)) else value


def _section(section: dict[str, Any]) -> None:
    conditions = section.get("conditions")
    for cond in conditions if isinstance(conditions, list) else []:  # (not a list: validation says so)
        if isinstance(cond, dict) and "indicatorId" in cond:
            cond.setdefault("indicator", cond.pop("indicatorId"))
    logic = section.pop("logic", None)
    if isinstance(logic, str) and "match" not in section:
        section["match"] = "any" if logic.upper() == "OR" else "all"
    if "timeoutSeconds" in section:
        section["timeout_s"] = section.pop("timeoutSeconds")
    if "cooldownMinutes" in section:
        section["cooldown_s"] = _minutes(section.pop("cooldownMinutes"))
    actions = section.pop("actions", None)
    if isinstance(actions, dict) and "cancelPending" in actions:
        section["cancel_pending"] = actions["cancelPending"]
    section.pop("riskAdjustedPricing", None)


def _order(z1: dict[str, Any]) -> None:
    order = z1.setdefault("order", {}) if any(k in z1 for k in ("positionSize", "stopLoss", "takeProfit", "leverage")) else None
    if not isinstance(order, dict):  # nothing to map, or `order` is not a table (validation names it)
        return
    size = z1.pop("positionSize", None)
    if isinstance(size, dict) and size.get("type", "percentage") == "percentage":
        order["size_pct"] = size.get("value")
    elif size is not None:
        order["size_pct"] = size  # anything else fails validation under its new name
    for old, new in (("stopLoss", "stop_loss_pct"), ("takeProfit", "take_profit_pct")):
        value = z1.pop(old, None)
        if isinstance(value, dict) and isinstance(value.get("offsetPercent"), (int, float)):
            order[new] = abs(value["offsetPercent"])
        elif value is not None:
            order[new] = value
    if "leverage" in z1:
        order["leverage"] = z1.pop("leverage")
