"""A bar-mode strategy trades live against the fake on pushed klines (issue 22 acceptance).

The live stack (`build_mexc` + `build_trading_stack`, the public feed, the private stream, history at
start: what `app/wiring.py` runs for `--live`) trades a bar-mode strategy file written here: short the
close of a 1-minute bar 5 % above the lowest close of the 3 bars before it, RSI(2) read at the entry
(Z1, always true once defined), out after 180 s. The exchange's candles reach it as MEXC sends them:
`push.kline` repeats the candle in progress and a candle is closed by the first push of the next
window. Deals, tickers and book snapshots flow in between.

It proves that in bar mode (1) nothing between two closes steps the machine - an intrabar spike past
the threshold (deals, book, the candle in progress at +10 %) sends nothing, and nor does a whole
minute at the pumped price until its kline closes; (2) S1 and Z1 are decided at the one close that
meets the pump and the entry goes out at that close - one market OPEN_SHORT with its client id,
filled by the exchange, pushed back, POSITION_ACTIVE; (3) the machine is stepped at its own deadline
without any new kline: max hold closes the short at exactly t_open + 180 s with one close order, and
the position ends flat at the exchange and in the engine's cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.live.filling_fake import SHORT, FillingMexc
from tests.live.rig import SYM, LiveRig
from tui_trader.domain.events import CandleClosed, StrategyStateChanged, TradeTick
from tui_trader.domain.models import Side
from tui_trader.domain.strategy.state import Phase
from tui_trader.engine.strategy_runner import load_strategy

MIN_MS = 60_000
BASE, PUMP = 60_000.0, 66_000.0  # +10 %: over the 5 % threshold
MAX_HOLD_S = 180
HISTORY_BARS = 10

STRATEGY = f"""
strategy_name = "bar_live"
direction = "SHORT"
evaluation = "bar"
bar_interval = "1m"

[indicators.pump]
type = "bar_change_from_low"
field = "close"
bars = 3

[indicators.rsi]
type = "bar_rsi"
period = 2

[s1_signal]
conditions = [{{ indicator = "pump", operator = ">=", value = 0.05 }}]

[o1_cancel]
timeout_s = 60
cooldown_s = 0

[z1_entry]
conditions = [{{ indicator = "rsi", operator = ">=", value = 0.0 }}]

[z1_entry.order]
size_pct = 10.0
leverage = 3
order_type = "market"
stop_loss_pct = 10.0
take_profit_pct = 10.0
fill_timeout_s = 10

[global_limits]
max_open_positions = 1
normal_exit_cooldown_s = 0
max_hold_s = {MAX_HOLD_S}
"""


async def wait_for(predicate: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    """Poll a condition until it holds; fail at the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def _history(fake: FillingMexc, m0_s: int) -> None:
    """Closed 1 m candles before `m0_s` zig-zagging +-30 around 60 000 (RSI(2) defined, no pump), and the
    candle in progress at `m0_s` (the loader leaves it to the stream)."""
    bars = []
    for i in range(HISTORY_BARS, 0, -1):
        o, c = (BASE + 30, BASE - 30) if i % 2 else (BASE - 30, BASE + 30)
        bars.append((m0_s - 60 * i, o, max(o, c) + 5, min(o, c) - 5, c, 600.0))
    bars.append((m0_s, BASE, BASE, BASE, BASE, 10.0))
    fake.klines[SYM] = bars


async def test_bar_strategy_enters_at_the_pumped_close_and_leaves_at_its_max_hold_deadline(fake, tmp_path):
    path = tmp_path / "bar_live.toml"
    path.write_text(STRATEGY, encoding="utf-8")
    strategy = load_strategy(path)
    assert strategy.bar_mode and strategy.bar_interval_s == 60
    rig = LiveRig(fake, tmp_path / "live.sqlite", strategy=strategy, pushes=True, feed=True, history=True)
    rig.advance(-rig.clock.now_ms() % MIN_MS / 1000 + 1)  # one second into a minute: windows and clock agree
    m0 = rig.clock.now_ms() // MIN_MS * MIN_MS  # the candle in progress at start, ms
    _history(fake, m0 // 1000)
    await rig.start()
    try:
        runner = rig.stack.runner
        assert runner is not None and runner.bar_mode
        bars = runner.bars[SYM]
        await fake.wait_ws(lambda f: len(f.ws_logged_in) == 1
                           and any(m.get("method") == "sub.kline" for m in f.ws_received))
        warm = bars.bars
        assert warm >= 4 and bars.values()["pump"] is not None and bars.values()["rsi"] is not None  # from history
        candle: dict[int, list[float]] = {}  # window ms -> the candle in progress: o, h, l, c, volume
        book_version = [0]

        async def market(price: float, *, kline: bool = True) -> None:
            """This second's market at `price`: the exchange's price, the candle in progress of the clock's
            window (unless `kline` is False), the ticker, a book snapshot and a deal - all delivered (the
            deal goes last on the socket: when its tick is out, the frames before it have been handled)."""
            now = rig.clock.now_ms()
            fake.set_price(SYM, price)
            if kline:
                window = now // MIN_MS * MIN_MS
                c = candle.setdefault(window, [price, price, price, price, 0.0])
                c[1], c[2], c[3], c[4] = max(c[1], price), min(c[2], price), price, c[4] + 10.0
                await fake.push_kline(SYM, window // 1000, *c)
            book_version[0] += 1
            await fake.push({"channel": "push.ticker", "symbol": SYM, "ts": now, "data": {
                "symbol": SYM, "lastPrice": price, "fairPrice": price, "bid1": price - 0.5, "ask1": price + 0.5}})
            await fake.push({"channel": "push.depth.full", "symbol": SYM, "ts": now, "data": {
                "asks": [[price + 0.5, 10, 1]], "bids": [[price - 0.5, 12, 1]], "version": book_version[0]}})
            seen = len(rig.of(TradeTick))
            await fake.push({"channel": "push.deal", "symbol": SYM, "ts": now,
                             "data": [{"p": price, "v": 10, "T": 1, "O": 1, "M": 2, "t": now}]})
            await wait_for(lambda: len(rig.of(TradeTick)) == seen + 1, "the deal from the public socket")
            await rig.idle_or_waiting()

        def to(ms: int) -> None:
            rig.advance((ms - rig.clock.now_ms()) / 1000)

        def entries() -> list[dict]:
            return [o for o in fake.orders if o["side"] == 3]

        def closes() -> list[dict]:
            return [o for o in fake.orders if o["side"] == 2]

        def states(phase: Phase) -> list[StrategyStateChanged]:
            return [e for e in rig.of(StrategyStateChanged) if e.state == phase.value]

        def quiet_machine() -> None:
            assert fake.calls["create"] == 0 and not fake.orders
            assert rig.machine.phase is Phase.MONITORING and not states(Phase.SIGNAL_DETECTED)

        # --- minute m0: an intrabar spike past the threshold that is gone by the close ------------
        await market(BASE)
        to(m0 + 20_000)
        await market(PUMP)  # deals, book and the candle in progress all at +10 %: nothing is stepped
        quiet_machine()
        assert bars.bars == warm and not rig.of(CandleClosed)
        to(m0 + 40_000)
        await market(BASE)
        to(m0 + MIN_MS)
        await market(BASE, kline=False)  # the next minute's first deal: still no close
        assert not rig.of(CandleClosed)
        await market(BASE)  # its first kline push closes m0, at 60 000 (high 66 000): no pump at the close
        [closed0] = rig.of(CandleClosed)
        assert (closed0.open_ms, closed0.high, closed0.close) == (m0, PUMP, BASE)
        assert bars.bars == warm + 1 and bars.values()["pump"] < 0.05
        quiet_machine()

        # --- minute m1: the pump, a whole minute at +10 %; no order until its kline closes -------
        m1, m2 = m0 + MIN_MS, m0 + 2 * MIN_MS
        for second in range(10, 60, 10):
            to(m1 + second * 1000)
            await market(PUMP)
            quiet_machine()
        to(m2)
        await market(PUMP, kline=False)
        quiet_machine()
        assert bars.bars == warm + 1 and len(rig.of(CandleClosed)) == 1
        await market(PUMP)  # the first push of m2 closes m1 at 66 000: S1 and Z1, the entry goes out now
        await fake.wait_until(lambda f: bool(entries()))
        closed1 = rig.of(CandleClosed)[-1]
        assert (closed1.open_ms, closed1.ts_ms, closed1.close) == (m1, m2, PUMP)
        [signal] = states(Phase.SIGNAL_DETECTED)
        [pending] = states(Phase.ENTRY_PENDING)
        assert signal.ts_ms == pending.ts_ms == m2 and signal.reason == "S1" and pending.reason == "Z1"
        assert rig.clock.now_ms() == m2  # sent at that close, no time passed
        [entry] = entries()
        assert fake.calls["create"] == 1 and len(fake.orders) == 1
        assert entry["orderType"] == 5 and entry["vol"] > 0 and entry["leverage"] == 3  # a market open short
        assert entry["externalOid"] and entry["externalOid"] == rig.machine.state.entry_client_id

        # --- the fill, at the exchange and pushed back ---------------------------------------------
        await wait_for(lambda: rig.machine.phase is Phase.POSITION_ACTIVE, "POSITION_ACTIVE")
        assert entry["state"] == 3 and entry["dealAvgPrice"] == PUMP
        held = fake.position(SYM, SHORT)
        assert held is not None and held["holdVol"] == entry["vol"]
        pushed = [(p["channel"], p["data"].get("orderId")) for p in fake.private_pushes]
        assert ("push.personal.order", entry["orderId"]) in pushed and ("push.personal.position", None) in pushed
        position = rig.stack.cache.position(SYM, Side.SHORT)
        assert position is not None and position.contracts == entry["vol"]
        [active] = states(Phase.POSITION_ACTIVE)
        assert active.ts_ms == m2
        due = active.ts_ms + MAX_HOLD_S * 1000
        assert runner.timer_due_ms == due  # the deadline timer, on the machine's max hold

        # --- the hold: ticks and book every second, no kline; out at the deadline ---------------
        candles = len(rig.of(CandleClosed))
        while rig.clock.now_ms() < due - 1000:
            rig.advance(1.0)
            await market(PUMP + (50.0 if rig.clock.now_ms() // 1000 % 2 else -50.0), kline=False)
            assert not closes() and rig.machine.phase is Phase.POSITION_ACTIVE
        rig.advance(1.0)  # crosses t_open + max hold: the deadline step, with no market event at all
        await fake.wait_until(lambda f: bool(closes()))
        assert rig.clock.now_ms() == due and len(rig.of(CandleClosed)) == candles and bars.bars == warm + 2
        [exiting] = states(Phase.EXIT_PENDING)
        assert exiting.ts_ms == due and exiting.reason == "TIME"
        [close] = closes()
        assert close["orderType"] == 5 and close["vol"] == entry["vol"]  # side 2: close short, reduce-only at MEXC
        assert close["externalOid"] and close["externalOid"] != entry["externalOid"]
        assert fake.calls["create"] == 2

        # --- flat everywhere --------------------------------------------------------------------------
        await wait_for(lambda: rig.machine.phase is Phase.MONITORING, "MONITORING after the close")
        assert close["state"] == 3 and fake.position(SYM, SHORT) is None and len(fake.closed_positions) == 1
        await wait_for(lambda: rig.stack.cache.position(SYM, Side.SHORT) is None, "flat in the cache")
        [back] = [e for e in states(Phase.MONITORING) if e.ts_ms >= due]
        assert back.reason == "TIME"
        assert len(entries()) == 1 and len(closes()) == 1
    finally:
        await rig.stop()
