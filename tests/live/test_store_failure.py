"""A failing disk never blocks a close (issue 19, item 4). Before: the reduce-only close was written
durably before it was sent; when the write raised, the close was never sent and the watchdog marked
the position failed. Now the close is sent first and the store follows; a failed write is a CRITICAL
event and an in-memory journal that is flushed when the store recovers."""

from __future__ import annotations

from tests.live.filling_fake import SHORT
from tests.live.rig import SYM, LiveRig
from tui_trader.domain.events import ErrorRaised, OrderUpdated
from tui_trader.domain.models import OrderState, Side


async def test_with_every_store_write_failing_the_auto_close_is_sent_and_the_position_ends_flat(fake, tmp_path):
    fake.open_position(SYM, SHORT, 40, 60000.0, leverage=3)
    rig = await LiveRig(fake, tmp_path / "live.sqlite", strategy=None).start()
    repo = rig.stack.execution.store.inner
    saved = {name: getattr(repo, name) for name in ("save_order", "save_fill", "save_position")}

    async def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    try:
        for name in saved:
            setattr(repo, name, disk_full)
        await rig.hold(60000.0, 2)
        await rig.until(lambda: fake.position(SYM, SHORT) is None, price=73000.0, max_s=20)  # ~9 % from liq: red
        await rig.hold(73000.0, 3)
        assert rig.stack.cache.position(SYM, Side.SHORT) is None
        closes = [o for o in fake.orders if o["side"] == 2]
        assert len(closes) == 1 and closes[0]["externalOid"]
        assert any(e.level == "CRITICAL" and "STORE WRITE FAILED" in e.message for e in rig.of(ErrorRaised))
        assert not any("AUTO-CLOSE" in e.message and "failed" in e.message for e in rig.of(ErrorRaised))
        assert rig.stack.execution.store.pending  # everything waits in memory
        rows = await rig.rows("SELECT client_id FROM orders WHERE client_id = ?", closes[0]["externalOid"])
        assert rows == []

        for name, fn in saved.items():  # the disk recovers: the next write replays the journal first
            setattr(repo, name, fn)
        cid = closes[0]["externalOid"]
        order = next(e.order for e in reversed(rig.of(OrderUpdated)) if e.order.client_id == cid)
        await rig.stack.execution.store.save_order(order, "")
        assert not rig.stack.execution.store.pending
        [row] = await rig.rows("SELECT state FROM orders WHERE client_id = ?", cid)
        assert row["state"] == OrderState.FILLED.value
        fills = await rig.rows("SELECT client_id FROM fills WHERE client_id = ?", cid)
        assert len(fills) == 1
    finally:
        for name, fn in saved.items():
            setattr(repo, name, fn)
        await rig.stop()
