"""OrderTracker: untagged venue reports are matched to our orders by client id, fills derived once."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

from tui_trader.domain.models import ClientOrderId, Order, OrderSide, OrderState, OrderType, Position, Side, VenueOrderId
from tui_trader.engine.cache import Cache
from tui_trader.engine.order_tracker import EXTERNAL_TAG, OrderTracker

TAG = "pump:BTC_USDT"


def ours(**over) -> Order:
    o = Order(ClientOrderId("s-1-O"), "BTC_USDT", OrderSide.OPEN_SHORT, OrderType.MARKET, D(100), leverage=20,
              state=OrderState.SUBMITTED, reason="Z1", tag=TAG, created_ms=1000, updated_ms=1000,
              stop_loss_price=D("61000"))
    return replace(o, **over)


def report(**over) -> Order:
    """What MEXC says about it: no tag, no reason, no stop-loss fields we set."""
    o = Order(ClientOrderId("s-1-O"), "BTC_USDT", OrderSide.OPEN_SHORT, OrderType.MARKET, D(100), leverage=20,
              state=OrderState.SUBMITTED, venue_order_id=VenueOrderId("7001"), updated_ms=2000)
    return replace(o, **over)


def tracker() -> tuple[OrderTracker, Cache]:
    cache = Cache()
    cache.apply_order(ours())
    return OrderTracker(cache), cache


def test_report_takes_our_tag_reason_and_prices_and_the_exchange_state():
    t, _ = tracker()
    merged, fill = t.merge_order(report(state=OrderState.FILLED, filled_contracts=D(100), avg_fill_price=D("60000.5"),
                                        fee=D("3.6"), realized_pnl=D(0)), 2000)
    assert merged.tag == TAG and merged.reason == "Z1" and merged.stop_loss_price == D("61000")
    assert merged.state is OrderState.FILLED and merged.venue_order_id == "7001"
    assert fill is not None and fill.qty_contracts == D(100) and fill.price == D("60000.5") and fill.fee == D("3.6")
    assert fill.fill_id == "7001:100"


def test_partial_fills_become_one_fill_each_with_the_incremental_price():
    t, cache = tracker()
    first, f1 = t.merge_order(report(state=OrderState.PARTIALLY_FILLED, filled_contracts=D(40),
                                     avg_fill_price=D(100), fee=D(1)), 2000)
    cache.apply_order(first)
    second, f2 = t.merge_order(report(state=OrderState.FILLED, filled_contracts=D(100),
                                      avg_fill_price=D(106), fee=D("2.5")), 3000)
    assert f1 is not None and f2 is not None
    assert (f1.qty_contracts, f1.price, f1.fee) == (D(40), D(100), D(1))
    assert (f2.qty_contracts, f2.price, f2.fee) == (D(60), D(110), D("1.5"))  # 40*100 + 60*110 = 100*106
    assert f1.fill_id != f2.fill_id


def test_the_same_report_by_two_paths_gives_the_same_fill_id():
    t, _ = tracker()
    _, by_poll = t.merge_order(report(state=OrderState.FILLED, filled_contracts=D(100), avg_fill_price=D(5)), 2000)
    _, by_push = t.merge_order(report(state=OrderState.FILLED, filled_contracts=D(100), avg_fill_price=D(5),
                                      updated_ms=2500), 2500)
    assert by_poll is not None and by_push is not None and by_poll.fill_id == by_push.fill_id


def test_states_only_move_forward():
    t, cache = tracker()
    filled, _ = t.merge_order(report(state=OrderState.FILLED, filled_contracts=D(100), avg_fill_price=D(5)), 2000)
    cache.apply_order(filled)
    stale, fill = t.merge_order(report(state=OrderState.OPEN), 3000)
    assert stale.state is OrderState.FILLED and stale.filled_contracts == D(100) and fill is None


def test_matched_by_venue_order_id_when_the_report_has_no_external_oid():
    t, cache = tracker()
    cache.apply_order(ours(venue_order_id=VenueOrderId("7001")))
    merged, _ = t.merge_order(report(client_id=ClientOrderId(""), state=OrderState.CANCELLED), 2000)
    assert merged.client_id == "s-1-O" and merged.tag == TAG and merged.state is OrderState.CANCELLED


def test_unknown_external_oid_is_an_external_order():
    t, _ = tracker()
    merged, fill = t.merge_order(report(client_id=ClientOrderId("web-123"), state=OrderState.FILLED,
                                        filled_contracts=D(3), avg_fill_price=D(7)), 2000)
    assert merged.tag == EXTERNAL_TAG and merged.client_id == "web-123" and fill is not None


def test_tagged_reports_pass_unchanged_and_paper_fills_are_not_derived():
    cache = Cache()
    t = OrderTracker(cache, derive_fills=False)
    paper = ours(state=OrderState.FILLED, filled_contracts=D(100), avg_fill_price=D(5))
    merged, fill = t.merge_order(paper, 2000)
    assert merged is paper and fill is None


def position(**over) -> Position:
    p = Position("BTC_USDT", Side.SHORT, D(100), D("0.0001"), D("60000.5"), 20)
    return replace(p, **over)


def test_position_takes_the_tag_of_our_entry_order_else_external():
    t, cache = tracker()
    assert t.attribute_position(position()).tag == TAG
    assert t.attribute_position(position(side=Side.LONG)).tag == EXTERNAL_TAG
    assert t.attribute_position(position(symbol="ETH_USDT")).tag == EXTERNAL_TAG


def test_position_keeps_the_tag_it_has_in_the_cache():
    t, cache = tracker()
    cache.apply_position(position(tag="other:BTC_USDT"))
    assert t.attribute_position(position(contracts=D(0))).tag == "other:BTC_USDT"  # the flat report too


def test_a_rejected_entry_owns_no_position():
    cache = Cache()
    cache.apply_order(ours(state=OrderState.REJECTED))
    assert OrderTracker(cache).attribute_position(position()).tag == EXTERNAL_TAG
