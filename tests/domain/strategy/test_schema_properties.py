"""Any strategy text (TOML or JSON, this format or the original's camelCase names) ends in a `Strategy`
or a `StrategyError` - never another exception (issue 23: deep nesting and odd shapes crashed)."""

from __future__ import annotations

import copy
import json
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.domain.strategy.helpers import BUNDLED
from tests.toml_text import toml_value
from tui_trader.domain.errors import StrategyError
from tui_trader.domain.strategy.schema import Strategy, strategy_from_text

BASE = tomllib.loads(BUNDLED.read_text())
ORIGINAL_KEYS = ["indicatorId", "logic", "timeoutSeconds", "cooldownMinutes", "actions", "positionSize", "stopLoss",
                 "takeProfit", "leverage", "riskAdjustedPricing", "normal_exit_cooldown_minutes", "conditions", "order",
                 "signal_cancellation_cooldown_minutes", "emergency_exit_cooldown_minutes", "offsetPercent", "type"]

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                    st.text(max_size=6), st.sampled_from(["LONG", "SHORT", "any", "OR", ">=", "rsi", "percentage"]))
_value = st.recursive(_scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.sampled_from(ORIGINAL_KEYS) | st.text(max_size=5), c, max_size=4), max_leaves=10)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(BASE) if p]


@st.composite
def _documents(draw):
    """The bundled strategy with a few fields replaced, removed or added (shapes the schema must refuse)."""
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            action = draw(st.sampled_from(["set", "delete", "add"]))
            if action == "delete" and isinstance(node, dict):
                node.pop(path[-1], None)
            elif action == "add" and isinstance(node, dict):
                node[draw(st.sampled_from(ORIGINAL_KEYS))] = draw(_value)
            else:
                node[path[-1]] = draw(_value)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier change removed or replaced the parent
    return doc


def to_toml(doc: dict) -> str:
    """Top-level `key = value` lines with inline tables (TOML has no null: None values are left out)."""
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items() if v is not None)


def _parsed(text: str, suffix: str) -> Strategy | None:
    try:
        strategy = strategy_from_text(text, suffix)
    except StrategyError as exc:
        assert str(exc).strip(), "an error says what is wrong"
        return None
    assert isinstance(strategy, Strategy)
    return strategy


def test_the_generators_round_trip_the_bundled_strategy():
    assert _parsed(to_toml(BASE), ".toml") == _parsed(json.dumps(BASE), ".json") is not None


@settings(max_examples=300, deadline=None)
@given(_documents(), st.sampled_from([".toml", ".json"]))
def test_any_document_gives_a_strategy_or_a_strategy_error(doc, suffix):
    _parsed(to_toml(doc) if suffix == ".toml" else json.dumps(doc), suffix)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | _value.map(json.dumps), st.sampled_from([".toml", ".json", ".yaml", ""]))
def test_any_text_gives_a_strategy_or_a_strategy_error(text, suffix):
    _parsed(text, suffix)


@pytest.mark.parametrize("text, suffix, message", [
    ("a = " + "[" * 5000, ".toml", "nested too deeply"),
    ("[" * 100_000, ".json", "nested too deeply"),
    ("[1, 2]", ".json", "is a JSON list"),
    (json.dumps({**BASE, "z1_entry": {**BASE["z1_entry"], "order": [1], "leverage": 3}}), ".json", "z1_entry.order"),
    (json.dumps({**BASE, "s1_signal": {"conditions": 5}}), ".json", "s1_signal.conditions"),
    (json.dumps({**BASE, "global_limits": {"signal_cancellation_cooldown_minutes": 5}, "o1_cancel": []}), ".json", "o1_cancel"),
], ids=["deep-toml", "deep-json", "json-list", "order-list", "conditions-number", "section-list"])
def test_odd_shapes_are_strategy_errors_naming_the_key(text, suffix, message):
    with pytest.raises(StrategyError, match=message):
        strategy_from_text(text, suffix)
