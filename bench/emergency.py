"""Kill switch under exchange faults: time from the close-all request to the last close sent, and to flat.

    python bench/emergency.py            # each scenario 3 times

The live stack (`tests/live/rig.py`, wall clock, private pushes on) on the fake MEXC holding three positions (BTC short
and long, ETH short), with: no fault; open orders answering HTTP 500 throughout; the entry breaker
open; about 30 % of creates answered by an HTML 502 page. Prints one line per scenario and, last,
one JSON object: `<scenario>_last_close_sent_ms` and `<scenario>_flat_ms` (medians), `runs`.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live.filling_fake import LONG, SHORT, FillingMexc
from tests.live.rig import LiveRig
from tests.venues.mexc.fake_exchange import Fault
from tui_trader.engine.clock import WallClock

SYMBOLS = ["BTC_USDT", "ETH_USDT"]


async def one(scenario: str, seed: int) -> tuple[float, float]:
    fake = FillingMexc()
    await fake.start()
    try:
        fake.open_position("BTC_USDT", SHORT, 40, 60000.0)
        fake.open_position("BTC_USDT", LONG, 30)
        fake.open_position("ETH_USDT", SHORT, 9, 3000.0)
        with tempfile.TemporaryDirectory() as tmp:
            rig = await LiveRig(fake, Path(tmp) / "b.sqlite", symbols=SYMBOLS, strategy=None, clock=WallClock(),
                                pushes=True).start()
            try:
                await fake.wait_ws(lambda f: len(f.ws_logged_in) == 1)
                if scenario == "open_orders_500":
                    fake.fault("open_orders", "http500", times=1000)
                elif scenario == "breaker_open":
                    rig.parts.venue.client.breaker._cb.open()
                elif scenario == "create_502_30pct":
                    rng = random.Random(seed)
                    fake.faults["create"].extend(Fault("html") for _ in range(40) if rng.random() < 0.3)
                assert rig.stack.emergency is not None
                t0 = fake.now_ms()
                flat = await asyncio.wait_for(rig.stack.emergency.request_close_all("BENCH"), 60.0)
                done = fake.now_ms()
                assert flat and all(fake.position(s, t) is None for s in SYMBOLS for t in (LONG, SHORT))
                last = max(o["createTime"] for o in fake.orders if o["side"] in (2, 4) and o["externalOid"])
                return float(last - t0), float(done - t0)
            finally:
                await rig.stop()
    finally:
        await fake.stop()


async def main() -> dict[str, object]:
    out: dict[str, object] = {"runs": 3, "positions": 3}
    for scenario in ("no_fault", "open_orders_500", "breaker_open", "create_502_30pct"):
        sent, flat = zip(*[await one(scenario, seed) for seed in range(3)])
        out[f"{scenario}_last_close_sent_ms"] = round(statistics.median(sent), 1)
        out[f"{scenario}_flat_ms"] = round(statistics.median(flat), 1)
        print(f"{scenario:18} last close sent {statistics.median(sent):7.1f} ms (max {max(sent):.1f}),"
              f" flat {statistics.median(flat):7.1f} ms")
    return out


if __name__ == "__main__":
    result = asyncio.run(main())
    print(json.dumps(result))
