"""Paper sessions: the eight operations, typed refusals, concurrency, reconciliation, stop/resume."""

from __future__ import annotations

import asyncio
import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from tui_trader.app.sessions import (
    InvalidSessionRequest,
    SessionNotFound,
    SessionRunning,
)
from tui_trader.domain.models import OrderState
from tui_trader.domain.money import cents
from tui_trader.venues.replay import bundled_data_path

PUMP_FROM, PUMP_TO = 1512248000000, 1512260000000  # real NXT/BTC minutes around a pump the default strategy trades
# two trades from PUMP_FROM: a TP exit at +2.0 h, then an entry at +18.5 h stopped out at +18.6 h; the slice
# ends three quiet hours later (the replays below step every simulated second: the hours are the cost)
TWO_TRADES_TO = PUMP_FROM + 22 * 3_600_000


def real_slice(tmp_path: Path, start=PUMP_FROM, end=PUMP_TO) -> Path:
    """A slice of the bundled real NXT/BTC 1 m data."""
    with gzip.open(bundled_data_path(), "rt") as fh:
        lines = fh.read().splitlines()
    out = tmp_path / "bittrex_NXT-BTC_1m_slice.csv"
    out.write_text("\n".join([lines[0]] + [l for l in lines[1:] if start <= int(l.split(",")[0]) <= end]) + "\n")
    return out


async def test_eight_operations(service, tmp_path):
    info = await service.create({"name": "pump", "data_file": real_slice(tmp_path), "starting_balance": 5000})
    assert info.status == "running"
    assert await service.wait(info.id) == "finished"
    [listed] = await service.list()
    assert (listed.id, listed.status, listed.name) == (info.id, "finished", "pump")
    got = await service.get(info.id)
    assert got.cursor_ms >= PUMP_TO - 60_000 and got.positions == []
    orders, fills = await service.orders_and_fills(info.id)
    assert [o.client_id for o in orders] == ["pump_short-NXT-1-O", "pump_short-NXT-1-X"]
    assert all(o.state is OrderState.FILLED for o in orders) and len(fills) == 2
    perf = await service.performance(info.id)
    assert perf.trade_count == 1 and perf.starting_balance == Decimal(5000)
    assert perf.realized_pnl == sum(f.realized_pnl for f in fills)
    assert perf.fees == sum(f.fee for f in fills)
    assert perf.reconciles and len(perf.equity_curve) > 100
    health = await service.health()
    assert health["ok"] and health["schema_version"] >= 2
    stopped = await service.stop(info.id)  # already finished: a no-op
    assert stopped.status == "finished"
    await service.delete(info.id)
    assert await service.list() == []
    assert await service.orders.load_fills(info.id) == []
    with pytest.raises(SessionNotFound):
        await service.get(info.id)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"strategy_file": "/nope/missing.toml"}, "strategy_file"),
        ({"leverage": 0}, "leverage"),
        ({"leverage": 201}, "leverage"),
        ({"starting_balance": -5}, "starting_balance"),
        ({"name": "  "}, "name"),
        ({"data_file": "/nope/data.csv"}, "data_file"),
        ({"funding_file": "/nope/XRP-USDT_funding.csv"}, "its name says XRP_USDT, which the run does not trade (NXT_BTC)"),
        ({"bogus": 1}, "bogus"),
    ],
)
async def test_bad_requests_are_typed_errors_and_change_nothing(service, change, fragment):
    with pytest.raises(InvalidSessionRequest) as err:
        await service.create({"name": "x", **change})
    assert fragment in str(err.value)
    assert await service.list() == []


async def test_unknown_id_and_deleting_a_running_session_are_refused(service, tmp_path):
    with pytest.raises(SessionNotFound):
        await service.performance("nope")
    info = await service.create({"name": "slow", "data_file": real_slice(tmp_path), "speed": 1.0})  # real time: stays running
    with pytest.raises(SessionRunning):
        await service.delete(info.id)
    assert (await service.get(info.id)).status == "running"
    assert (await service.stop(info.id)).status == "stopped"
    await service.delete(info.id)


async def test_twenty_sessions_created_concurrently_share_one_database_init(service):
    infos = await asyncio.gather(*(service.create({"name": f"s{i}"}, start=False) for i in range(20)))
    assert len({i.id for i in infos}) == 20
    assert service.db.opens == 1
    assert len(await service.list()) == 20


async def test_stop_then_resume_continues_without_duplicate_fills(service, tmp_path):
    data = real_slice(tmp_path, PUMP_FROM, TWO_TRADES_TO)
    info = await service.create({"name": "resumable", "data_file": data})
    runtime = service.runtimes[info.id]
    while runtime.feed.candles_published < 400:  # stop part-way, after the first trade
        await asyncio.sleep(0)
    await service.stop(info.id)
    stopped = await service.get(info.id)
    assert stopped.status == "stopped" and stopped.cursor_ms > 0
    before = {f.fill_id: f for f in (await service.orders_and_fills(info.id))[1]}
    await service.resume(info.id)
    assert await service.wait(info.id) == "finished"
    after = (await service.orders_and_fills(info.id))[1]
    assert all(before[k] == f for k, f in ((f.fill_id, f) for f in after) if k in before)
    assert set(before) <= {f.fill_id for f in after}
    perf = await service.performance(info.id)
    assert perf.reconciles
    # the resumed run made exactly the decisions an uninterrupted run makes
    straight = await service.create({"name": "straight", "data_file": data})
    assert await service.wait(straight.id) == "finished"
    reference = (await service.orders_and_fills(straight.id))[1]
    key = lambda f: (f.client_id, f.ts_ms, f.price, f.qty_contracts, f.fee, f.realized_pnl)
    assert len(reference) >= 4 and [key(f) for f in after] == [key(f) for f in reference]


@pytest.mark.slow  # a full-speed replay stepped every simulated second (CI runs it)
async def test_default_strategy_on_real_data_reconciles_to_the_cent(service):
    """The whole bundled NXT/BTC file (10 days, 14 323 real 1 m candles, pump-positive)."""
    info = await service.create({"name": "full", "starting_balance": 10_000})
    assert await service.wait(info.id) == "finished"
    perf = await service.performance(info.id)
    _, fills = await service.orders_and_fills(info.id)
    funding = sum((Decimal(r["amount"]) for r in await service.db.fetchall(
        "SELECT amount FROM session_funding WHERE session_id = ?", (info.id,))), Decimal(0))
    assert perf.trade_count >= 3
    assert perf.unrealized_pnl == 0  # flat at the end
    realized = sum(f.realized_pnl for f in fills)
    fees = sum(f.fee for f in fills)
    assert cents(Decimal(10_000) + realized - fees - funding) == cents(perf.equity)


@pytest.fixture
def taken(monkeypatch):
    """Every checkpoint a session writes, as the JSON that is stored."""
    import json

    from tui_trader.app import session_runtime

    recorded = []
    original = session_runtime.SessionRuntime.checkpoint

    def recording(self):
        data = original(self)
        recorded.append(json.loads(json.dumps(data)))
        return data

    monkeypatch.setattr(session_runtime.SessionRuntime, "checkpoint", recording)
    return recorded


@pytest.mark.slow  # a full-speed replay stepped every simulated second (CI runs it)
async def test_resuming_from_any_checkpoint_reproduces_the_uninterrupted_run(service, tmp_path, taken):
    """A crash can happen after any checkpoint: resuming from each one (including those taken
    with a position open) must make exactly the fills of a run that never stopped."""
    data = real_slice(tmp_path, PUMP_FROM, TWO_TRADES_TO)
    info = await service.create({"name": "straight", "data_file": data})
    await service.wait(info.id)
    reference = (await service.orders_and_fills(info.id))[1]
    key = lambda f: (f.client_id, f.ts_ms, f.price, f.qty_contracts, f.fee)
    busy = [c for c in taken[:-1] if c["venue"]["positions"] or any(m["state"]["phase"] != "MONITORING" for m in c["machines"].values())]
    sample = busy[:4] + taken[1:-1:12]
    assert busy, "no checkpoint with a position open: the slice no longer exercises the hard case"
    assert len(reference) >= 4, "the slice should hold two trades: resumes before, between and inside them"
    for i, checkpoint in enumerate(sample):
        again = await service.create({"name": f"resume-{i}", "data_file": data}, start=False)
        await service.start(again.id, again.config, checkpoint)
        assert await service.wait(again.id) == "finished"
        got = (await service.orders_and_fills(again.id))[1]
        assert [key(f) for f in got] == [key(f) for f in reference if f.ts_ms > checkpoint["cursor_ms"]]


async def test_emergency_stop_all_flattens_and_stops_every_running_session(service, tmp_path):
    data = real_slice(tmp_path, 1512252400000, PUMP_TO)  # 45 min of warm-up before the pump's entry
    infos = [await service.create({"name": f"e{i}", "data_file": data, "speed": 600.0}) for i in range(2)]
    runtimes = [service.runtimes[i.id] for i in infos]
    while not all(rt.venue.ledger.positions for rt in runtimes):  # both short the pump (real data, 10 min/s)
        await asyncio.sleep(0.01)
    stopped = await service.emergency_stop_all()
    assert sorted(stopped) == sorted(i.id for i in infos)
    for info, rt in zip(infos, runtimes):
        got = await service.get(info.id)
        assert got.status == "stopped" and got.positions == []
        orders, _ = await service.orders_and_fills(info.id)
        closes = [o for o in orders if o.reduce_only]
        assert closes and all(o.state is OrderState.FILLED for o in closes)
        assert rt.stack.risk.state.value == "HALTED"


@pytest.mark.slow  # a full-speed replay stepped every simulated second (CI runs it)
async def test_resuming_over_a_later_stored_state_changes_nothing(service, tmp_path, taken, monkeypatch):
    """The crash case: the dead process wrote orders, fills, strategy and kill-switch state after its
    last checkpoint. Resuming the same session from that checkpoint must reproduce them exactly."""
    from tui_trader.app import session_runtime

    monkeypatch.setattr(session_runtime, "CHECKPOINT_EVERY", 10)  # a crash can follow any checkpoint closely
    data = real_slice(tmp_path, PUMP_FROM, TWO_TRADES_TO)
    info = await service.create({"name": "crashy", "data_file": data})
    await service.wait(info.id)
    orders, fills = await service.orders_and_fills(info.id)
    key = lambda f: (f.fill_id, f.client_id, f.ts_ms, f.price, f.qty_contracts, f.fee, f.realized_pnl)
    with_position = [c for c in taken[:-1] if c["venue"]["positions"]]
    entries = [f.ts_ms for f in fills if f.client_id.endswith("-O")]
    just_before_entry = [c for c in taken[:-1] if any(0 < e - c["data_now_ms"] < 1_800_000 for e in entries)]  # inside the warm-up span
    assert with_position and just_before_entry
    for checkpoint in (with_position[:2] + just_before_entry[:3] + taken[2:-1:60]):
        await service.start(info.id, info.config, checkpoint)
        assert await service.wait(info.id) == "finished"
        again_orders, again = await service.orders_and_fills(info.id)
        assert [key(f) for f in again] == [key(f) for f in fills]
        assert [(o.client_id, o.state, o.filled_contracts) for o in again_orders] == [(o.client_id, o.state, o.filled_contracts) for o in orders]


async def test_a_crash_before_the_first_candle_checkpoint_resumes_to_the_uninterrupted_run(service, tmp_path, taken,
                                                                                           monkeypatch):
    """Issue 23: killed after its entry filled but before the first 60-candle checkpoint, a session resumed to
    0 trades and 10 000.00 with an orphan filled entry (the dead process's machine states steered the fresh
    start). Now a checkpoint is written at start and after every order or position change; resuming over
    everything the dead process stored - from the start, from no checkpoint at all (an older session), from
    the first checkpoint with a position open - gives the same orders, fills, trades and equity."""
    from tui_trader.app import session_runtime

    monkeypatch.setattr(session_runtime, "CHECKPOINT_EVERY", 10**9)  # only the start and the changes checkpoint
    data = real_slice(tmp_path, 1512252400000, PUMP_TO)
    info = await service.create({"name": "early", "data_file": data})
    assert await service.wait(info.id) == "finished"
    orders, fills = await service.orders_and_fills(info.id)
    perf = await service.performance(info.id)
    assert perf.trade_count >= 1 and perf.reconciles
    start, rest = taken[0], taken[1:-1]
    assert start["cursor_ms"] == 0 and not start["venue"]["positions"]
    with_position = [c for c in rest if c["venue"]["positions"]]
    assert rest and with_position, "no checkpoint after an order or position change"
    for checkpoint in (start, None, with_position[0]):
        await service.start(info.id, info.config, checkpoint)
        assert await service.wait(info.id) == "finished"
        again_orders, again = await service.orders_and_fills(info.id)
        again_perf = await service.performance(info.id)
        same = lambda fs: [(f.fill_id, f.ts_ms, f.price, f.fee) for f in fs]
        assert same(again) == same(fills)
        assert [(o.client_id, o.state) for o in again_orders] == [(o.client_id, o.state) for o in orders]
        assert (again_perf.trade_count, again_perf.equity) == (perf.trade_count, perf.equity) and again_perf.reconciles


async def test_reconciles_says_no_when_the_store_and_the_account_disagree(service, tmp_path, taken):
    """`reconciles` is computed from the stored orders and fills against the account: a fill the account
    never saw (what a crash after the last checkpoint leaves) makes it say no, and says where."""
    data = real_slice(tmp_path, 1512252400000, PUMP_TO)
    info = await service.create({"name": "audit", "data_file": data})
    await service.wait(info.id)
    assert (await service.performance(info.id)).reconciles
    await service.db.execute_durable("UPDATE sessions SET checkpoint_json = ? WHERE id = ?",
                                     (__import__("json").dumps(taken[0]), info.id))  # the account as it was at start
    perf = await service.performance(info.id)
    assert not perf.reconciles and any("fills" in d for d in perf.disagreements)
