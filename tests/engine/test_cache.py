"""Cache: the entry orders' stop-loss / take-profit index answers what a fold over every order answers."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trader.domain.models import (
    ClientOrderId,
    Order,
    OrderSide,
    OrderState,
    OrderType,
    Side,
)
from tui_trader.engine.cache import Cache

SYMBOLS, TAGS = ("AAA_USDT", "BBB_USDT"), ("s1", "s2")
PRICES = st.sampled_from([None, D(0), D(1), D(2), D("3.5")])  # D(0) sets nothing, as None


def folded(orders: Iterable[Order]) -> dict[tuple[str, Side, str], tuple[D | None, D | None]]:
    """The rule, written as the scan the dashboard used to run at every repaint: oldest first, a later
    entry's target wins, each target on its own, closes and orders without a target skipped."""
    found: dict[tuple[str, Side, str], tuple[D | None, D | None]] = {}
    for o in orders:
        if o.reduce_only or not (o.stop_loss_price or o.take_profit_price):
            continue
        key = (o.symbol, o.side.position_side, o.tag)
        sl, tp = found.get(key, (None, None))
        found[key] = (o.stop_loss_price or sl, o.take_profit_price or tp)
    return found


orders = st.builds(
    lambda n, symbol, side, tag, reduce_only, sl, tp, state: Order(
        ClientOrderId(f"c-{n}"), symbol, side, OrderType.MARKET, D(1), reduce_only=reduce_only, state=state,
        stop_loss_price=sl, take_profit_price=tp, tag=tag),
    st.integers(0, 6), st.sampled_from(SYMBOLS), st.sampled_from(list(OrderSide)), st.sampled_from(TAGS),
    st.booleans(), PRICES, PRICES, st.sampled_from([OrderState.SUBMITTED, OrderState.FILLED]))


@settings(max_examples=300, deadline=None)
@given(st.lists(orders, max_size=40))
def test_entry_targets_equal_a_fold_over_every_order_after_each_change(changes):
    cache = Cache()
    for order in changes:  # new orders and updates of known ones: targets set, changed, dropped, moved
        cache.apply_order(order)
        expected = folded(cache.orders.values())
        for symbol in SYMBOLS:
            for side in Side:
                for tag in TAGS:
                    assert cache.entry_targets(symbol, side, tag) == expected.get((symbol, side, tag), (None, None))


def test_an_update_without_targets_leaves_the_previous_entry_targets_in_force():
    cache = Cache()
    first = Order(ClientOrderId("a"), "AAA_USDT", OrderSide.OPEN_SHORT, OrderType.MARKET, D(1), tag="s1",
                  stop_loss_price=D(110), take_profit_price=D(90))
    second = Order(ClientOrderId("b"), "AAA_USDT", OrderSide.OPEN_SHORT, OrderType.MARKET, D(1), tag="s1",
                   stop_loss_price=D(120))
    cache.apply_order(first)
    cache.apply_order(second)
    assert cache.entry_targets("AAA_USDT", Side.SHORT, "s1") == (D(120), D(90))
    # the exchange reports the newest order without our targets: the older entry's stop-loss counts again
    cache.apply_order(second.with_state(OrderState.FILLED, 5, stop_loss_price=None))
    assert cache.entry_targets("AAA_USDT", Side.SHORT, "s1") == (D(110), D(90))
    assert cache.entry_targets("AAA_USDT", Side.LONG, "s1") == (None, None)
