"""Bench: MEXC client hot paths - request signing overhead (us/request) and WS frames parsed per second.

No network. Signing = param string / compact body + HMAC-SHA256 + header dict, as done per private
request. Parsing = `parse.parse_frame` (JSON decode + domain events) over a mix of push.deal (list
of 5 trades), push.ticker and push.depth.full frames. Last line: one JSON object with the figures.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

from tui_trader.venues.mexc.auth import Signer, param_string
from tui_trader.venues.mexc.parse import parse_frame
from tui_trader.venues.mexc.web_utils import dumps

KEY, SECRET = "mx0vTESTAPIKEY000001", "TESTSECRET-0123456789abcdef-XYZ"
T0 = 1_700_000_000_000


def per_call_us(fn, n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def bench_sign_get(n: int = 50_000) -> float:
    signer = Signer(KEY, SECRET)
    params = {"symbol": "BTC_USDT", "states": "3,4", "page_num": 1, "page_size": 20, "side": None}
    return per_call_us(lambda: signer.headers(T0, param_string(params)), n)


def bench_sign_post(n: int = 50_000) -> float:
    signer = Signer(KEY, SECRET)
    body = {"symbol": "BTC_USDT", "price": None, "vol": Decimal("50"), "leverage": 3, "side": 3, "type": 5,
            "openType": 1, "externalOid": "fx-0001-e", "stopLossPrice": Decimal("61000.5")}
    return per_call_us(lambda: signer.headers(T0, dumps(body)), n)


def frames() -> list[str]:
    deal = {"channel": "push.deal", "symbol": "BTC_USDT", "ts": T0,
            "data": [{"p": 60000.5 + i, "v": 3, "T": 1 + i % 2, "O": 1, "M": 2, "t": T0 + i} for i in range(5)]}
    ticker = {"channel": "push.ticker", "symbol": "BTC_USDT", "ts": T0, "data": {
        "symbol": "BTC_USDT", "lastPrice": 60000.5, "bid1": 60000.4, "ask1": 60000.6, "fairPrice": 60001.1,
        "indexPrice": 60000.9, "fundingRate": 0.0001, "volume24": 123456, "holdVol": 5555, "timestamp": T0}}
    depth = {"channel": "push.depth.full", "symbol": "BTC_USDT", "ts": T0, "data": {
        "asks": [[60000.6 + i, 10, 1] for i in range(5)], "bids": [[60000.4 - i, 12, 2] for i in range(5)], "version": 99}}
    return [json.dumps(f) for f in (deal, ticker, depth)]


def bench_frames(seconds: float = 2.0) -> float:
    mix = frames()
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for raw in mix:
            parse_frame(raw, T0)
        count += len(mix)
    return count / (time.perf_counter() - start)


def main() -> None:
    get_us, post_us, fps = bench_sign_get(), bench_sign_post(), bench_frames()
    print(f"sign GET with params : {get_us:8.2f} us/request")
    print(f"sign POST order body : {post_us:8.2f} us/request")
    print(f"WS frames parsed     : {fps:10.0f} frames/s (deal x5 / ticker / depth.full mix)")
    print(json.dumps({"sign_get_us": round(get_us, 2), "sign_post_us": round(post_us, 2), "ws_frames_per_s": round(fps)}))


if __name__ == "__main__":
    main()
