"""Soak: the live engine against the fake MEXC with a fault mix and price spikes, in real time.

    python bench/soak.py --minutes 10        # default 10; the suite runs a 1-minute version

The stack is the live one (`tests/live/rig.py`: build_mexc + build_trading_stack, SQLite store,
private stream) on a wall clock. A market driver trades BTC_USDT and ETH_USDT every 250 ms (random
walk, a +6 % pump every ~20 s that a short strategy enters on, a spike now and then); a fault
driver injects, every ~3 s, one of: create answered HTTP 500 / 502 HTML / 503 HTML, create held
after processing (reply lost), connection dropped after the order is placed, 510 rate limit, a
failing externalOid lookup, private pushes lost or late for a while, a WebSocket drop. The fake
never deduplicates externalOid. The last 15 s run without faults, so every order can settle.

Prints the figures and, as the last line, one JSON object: orders sent, externalOids with more than
one order, peak holdVol per symbol against the largest single intended entry, liquidations,
breaker openings and recoveries, private-stream reconnects, machines stuck in a pending phase,
RSS growth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live.filling_fake import FillingMexc
from tests.live.rig import FAST, LiveRig
from tui_trader.domain.events import BookTick, MarkPriceTick, TradeTick
from tui_trader.domain.strategy.state import Phase
from tui_trader.engine.clock import WallClock

SYMBOLS = {"BTC_USDT": 60000.0, "ETH_USDT": 3000.0}
PENDING = (Phase.SIGNAL_DETECTED, Phase.ENTRY_PENDING, Phase.EXIT_PENDING)
SETTLE_S = 15.0


def rss_mib() -> float:
    """Peak RSS so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def market(rig: LiveRig, stop: asyncio.Event, rng: random.Random) -> None:
    prices = dict(SYMBOLS)
    t0 = time.monotonic()
    pump_at = {s: 12.0 + i * 9 for i, s in enumerate(prices)}
    while not stop.is_set():
        now = time.monotonic() - t0
        for sym, base in SYMBOLS.items():
            p = prices[sym] * (1 + rng.gauss(0, 0.0004))
            if now >= pump_at[sym]:  # a pump: +6 % over 2 s, then back down over ~8 s
                p = prices[sym] * 1.015
                if now >= pump_at[sym] + 2:
                    pump_at[sym] = now + rng.uniform(16, 24)
            elif p > base * 1.001:
                p = max(base, p * 0.994)
            if rng.random() < 0.002:  # a spike
                p *= rng.choice((0.97, 1.03))
            prices[sym] = p
            rig.trade(p, symbol=sym)
        await asyncio.sleep(0.25)


async def faults(fake: FillingMexc, stop: asyncio.Event, rng: random.Random, counts: Counter[str]) -> None:
    kinds = ["http500", "html", "http503", "hang_after", "drop_after", "hold_before", "code510", "lookup500",
             "push_loss", "push_late", "ws_drop", "ws_stall"]
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(2.0, 4.0))
        if stop.is_set():
            break
        kind = rng.choice(kinds)
        counts[kind] += 1
        if kind in ("http500", "html", "http503", "hang_after", "drop_after"):
            fake.fault("create", kind)
        elif kind == "hold_before":  # processed late, after the client gave up (or refused: window passed)
            fake.fault("create", "hold_before", hold_s=rng.uniform(3.0, 12.0))
        elif kind == "code510":
            fake.fault("create", "code", code=510, message="Requests are too frequent")
        elif kind == "lookup500":
            fake.fault("external", "http500", times=2)
        elif kind == "push_loss":
            fake.push_loss = True
            await asyncio.sleep(rng.uniform(2.0, 6.0))
            fake.push_loss = False
        elif kind == "push_late":
            fake.push_delay_s = rng.uniform(0.5, 3.0)
            await asyncio.sleep(rng.uniform(2.0, 6.0))
            fake.push_delay_s = 0.0
        elif kind == "ws_drop":
            await fake.close_ws()
        elif kind == "ws_stall":  # the socket stays open but says nothing: no pongs, no pushes
            fake.ws_stalled = True
            await asyncio.sleep(rng.uniform(2.0, 8.0))
            fake.ws_stalled = False
    fake.faults.clear()
    fake.push_loss, fake.push_delay_s, fake.ws_stalled = False, 0.0, False
    fake.release_held()


async def soak(seconds: float, seed: int = 7) -> dict[str, object]:
    rng = random.Random(seed)
    fake = FillingMexc()
    await fake.start()
    strategy = {  # FAST, trading often: short cooldowns and holds so a minute sees several round trips
        **FAST, "o1_cancel": {**FAST["o1_cancel"], "cooldown_s": 3},
        "emergency_exit": {**FAST["emergency_exit"], "cooldown_s": 3},
        "global_limits": {"warmup_s": 0, "symbols": list(SYMBOLS), "normal_exit_cooldown_s": 3, "max_hold_s": 15,
                          "max_daily_trades": 10_000},
    }
    with tempfile.TemporaryDirectory() as tmp:
        rig = await LiveRig(fake, Path(tmp) / "soak.sqlite", pushes=True, strategy=strategy, clock=WallClock(),
                            symbols=list(SYMBOLS)).start()
        if os.environ.get("SOAK_TRACE"):  # every non-market event, for a post-mortem
            t_start = time.monotonic()
            rig.bus.subscribe(lambda e: None if isinstance(e, (TradeTick, BookTick, MarkPriceTick)) else
                              print(f"T+{time.monotonic() - t_start:7.2f} {e!r}"[:400]), name="soak.trace")
        rss0 = rss_mib()
        stop_market, stop_faults = asyncio.Event(), asyncio.Event()
        counts: Counter[str] = Counter()
        tasks = [asyncio.create_task(market(rig, stop_market, rng)),
                 asyncio.create_task(faults(fake, stop_faults, rng, counts))]
        await asyncio.sleep(max(1.0, seconds - SETTLE_S))
        stop_faults.set()
        await asyncio.sleep(min(SETTLE_S, seconds))
        stop_market.set()
        await asyncio.gather(*tasks)
        await rig.quiesce(30.0)
        machines = rig.stack.runner.machines if rig.stack.runner else {}
        deadline = time.monotonic() + 30.0  # an exit sent in the last second resolves by the order poll (2 s)
        while any(m.phase in PENDING for m in machines.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        intended = await rig.rows("SELECT symbol, MAX(CAST(qty AS REAL)) AS q FROM orders"
                                  " WHERE reduce_only = 0 AND session_id = '' GROUP BY symbol")
        transitions = rig.parts.venue.client.breaker.transitions
        result: dict[str, object] = {
            "seconds_s": seconds,
            "orders_sent": len(fake.orders),
            "entries_sent": sum(1 for o in fake.orders if int(o["side"]) in (1, 3)),
            "external_oids_with_duplicates": sum(1 for n in Counter(o["externalOid"] for o in fake.orders).values()
                                                 if n > 1),
            "peak_hold_vol": {f"{s}:{t}": float(v) for (s, t), v in fake.peak_hold_vol.items()},
            "largest_intended_entry": {r["symbol"]: r["q"] for r in intended},
            "liquidations": len(fake.liquidations),
            "breaker_openings": sum(1 for _, new in transitions if new == "open"),
            "breaker_recoveries": sum(1 for old, new in transitions if old != "closed" and new == "closed"),
            "ws_reconnects": max(0, rig.parts.user_stream.connects - 1),
            "faults_injected": dict(counts),
            "machines_pending_at_end": sorted(s for s, m in machines.items() if m.phase in PENDING),
            "machine_phases_at_end": {s: m.phase.value for s, m in machines.items()},
            "exchange_positions_at_end": {f"{s}:{t}": float(p["holdVol"]) for (s, t), p in fake._live.items()},
            "rss_growth_mib": round(rss_mib() - rss0, 1),
        }
        over = {k: v for k, v in result["peak_hold_vol"].items()  # type: ignore[union-attr]
                if v > (result["largest_intended_entry"].get(k.split(":")[0]) or 0)}  # type: ignore[union-attr]
        result["symbols_over_intended"] = sorted(over)
        if over:  # the evidence: every order the fake holds for those symbols
            for o in fake.orders:
                if any(k.startswith(o["symbol"]) for k in over):
                    print("ORDER", o["externalOid"], o["side"], o["vol"], o["state"], o["dealVol"], o["createTime"])
        await rig.stop()
    await fake.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    result = asyncio.run(soak(args.minutes * 60, args.seed))
    for key, value in result.items():
        print(f"{key:32} {value}")
    print(json.dumps(result, default=str))
    bad = result["external_oids_with_duplicates"] or result["symbols_over_intended"] or result["machines_pending_at_end"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
