"""Strategy file schema: the bundled file loads; bad files name the key path, value and the rule."""

from __future__ import annotations

import json
import tomllib

import pytest

from tests.domain.strategy.helpers import BUNDLED
from tui_trader.domain.errors import StrategyError
from tui_trader.domain.strategy.schema import (
    SPEC_TYPES,
    PumpSpec,
    strategy_from_dict,
    strategy_from_json,
    strategy_from_text,
    strategy_from_toml,
)
from tui_trader.domain.strategy.warmup import warmup_s


def _doc() -> dict:
    return tomllib.loads(BUNDLED.read_text())


def _error(data: dict) -> str:
    with pytest.raises(StrategyError) as exc:
        strategy_from_dict(data)
    return str(exc.value)


def test_bundled_strategy_loads_with_reference_values():
    s = strategy_from_toml(BUNDLED.read_text())
    assert (s.strategy_name, s.direction) == ("pump_short", "SHORT")
    assert [(c.indicator, c.operator, c.value) for c in s.s1_signal.conditions][:2] == [("pump", ">=", 7.0), ("vsurge", ">=", 3.5)]
    o = s.z1_entry.order
    assert (o.size_pct, o.leverage, o.stop_loss_pct, o.take_profit_pct) == (10.0, 3, 5.0, 25.0)
    assert s.emergency_exit.match == "any" and s.emergency_exit.cooldown_s == 1800 and s.o1_cancel.cooldown_s == 300
    assert set(s.used_indicators()) == {"pump", "vsurge", "velocity", "mri", "rsi", "spread", "unrealized_pnl_pct"}
    assert warmup_s(s) == 1800  # the longest S1 window


def test_json_loads_the_same_document():
    assert strategy_from_json(json.dumps(_doc())) == strategy_from_toml(BUNDLED.read_text())
    assert strategy_from_text(json.dumps(_doc()), ".json").strategy_name == "pump_short"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("z1_entry", "order", "leverage"), 500, "z1_entry.order.leverage: 500 is outside 1..200"),
        (("z1_entry", "order", "size_pct"), 0, "z1_entry.order.size_pct: 0 is outside (0, 100]"),
        (("z1_entry", "order", "stop_loss_pct"), -5.0, "z1_entry.order.stop_loss_pct: -5 is outside (0, 100]"),
        (("o1_cancel", "timeout_s"), 0, "o1_cancel.timeout_s: 0 must be > 0"),
        (("emergency_exit", "cooldown_s"), -1, "emergency_exit.cooldown_s: -1 must be >= 0"),
        (("indicators", "pump", "baseline"), [30, 60], "indicators.pump.baseline: [30, 60] must be [a, b] seconds ago with a > b >= 0"),
        (("indicators", "pump", "typo"), 1, "indicators.pump.typo: unknown key"),
        (("direction",), "BOTH", "direction: 'BOTH' is not supported (allowed: LONG, SHORT"),
        (("direction",), "UP", "direction: 'UP' is not allowed (allowed: 'LONG', 'SHORT' or 'BOTH')"),
        (("z1_entry", "order", "leverage"), 10, "z1_entry.order.leverage: 10 is above global_limits.max_leverage (5)"),
    ],
)
def test_bad_values_name_path_value_and_rule(path, value, expected):
    data = _doc()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert expected in _error(data)


def test_unknown_operator_lists_the_allowed_ones():
    data = _doc()
    data["s1_signal"]["conditions"][1]["operator"] = "=="
    assert "s1_signal.conditions[1].operator: '==' is not allowed (allowed: '>', '<', '>=' or '<=')" in _error(data)


def test_unknown_indicator_lists_the_allowed_ones():
    data = _doc()
    data["z1_entry"]["conditions"][0]["indicator"] = "momentum"
    msg = _error(data)
    assert "z1_entry.conditions[0].indicator: 'momentum' is not a known indicator (allowed: " in msg
    assert "mri" in msg and "pump_magnitude_pct" in msg


def test_unknown_indicator_type_lists_the_types():
    data = _doc()
    data["indicators"]["rsi"]["type"] = "stoch"
    msg = _error(data)
    assert msg.startswith("indicators.rsi: 'stoch' is not an indicator type (allowed: ")
    assert all(t in msg for t in SPEC_TYPES)


def test_every_problem_is_one_line_and_missing_keys_are_named():
    data = _doc()
    del data["z1_entry"]["order"]["leverage"]
    data["s1_signal"]["conditions"][0]["value"] = float("inf")
    lines = _error(data).splitlines()
    assert "z1_entry.order.leverage: required key is missing" in lines
    assert any(line.startswith("s1_signal.conditions[0].value: inf") for line in lines)
    assert len(lines) == 2


def test_empty_section_is_allowed_and_bare_types_resolve_to_defaults():
    data = _doc()
    data["ze1_close"] = {}
    data["s1_signal"]["conditions"].append({"indicator": "pump_magnitude_pct", "operator": ">", "value": 1})
    s = strategy_from_dict(data)
    assert s.ze1_close.conditions == []
    assert s.resolve("pump_magnitude_pct") == PumpSpec(type="pump_magnitude_pct")


def test_not_toml_and_unknown_suffix():
    with pytest.raises(StrategyError, match="not valid TOML"):
        strategy_from_toml("strategy_name = ")
    with pytest.raises(StrategyError, match="unknown strategy file type"):
        strategy_from_text("", ".yaml")


def test_original_json_names_are_translated():
    doc = _doc()
    doc["s1_signal"]["conditions"][0] = {"id": "c1", "indicatorId": "pump", "operator": ">=", "value": 7.0}
    doc["emergency_exit"] = {"logic": "OR", "cooldownMinutes": 30, "actions": {"cancelPending": False, "closePosition": True},
                             "conditions": doc["emergency_exit"]["conditions"]}  # fmt: skip
    doc["o1_cancel"]["timeoutSeconds"] = doc["o1_cancel"].pop("timeout_s")
    order = doc["z1_entry"].pop("order")
    doc["z1_entry"].update(positionSize={"type": "percentage", "value": 10}, stopLoss={"offsetPercent": -5}, takeProfit={"offsetPercent": 25},
                           leverage=order["leverage"])  # fmt: skip
    doc["global_limits"]["normal_exit_cooldown_minutes"] = 5
    del doc["global_limits"]["normal_exit_cooldown_s"]
    s = strategy_from_json(json.dumps(doc))
    assert s.s1_signal.conditions[0].indicator == "pump" and s.s1_signal.conditions[0].id == "c1"
    assert (s.emergency_exit.match, s.emergency_exit.cooldown_s, s.emergency_exit.cancel_pending) == ("any", 1800, False)
    assert s.o1_cancel.timeout_s == 300
    assert (s.z1_entry.order.size_pct, s.z1_entry.order.stop_loss_pct, s.z1_entry.order.take_profit_pct) == (10, 5, 25)
    assert s.global_limits.normal_exit_cooldown_s == 300
