"""Test support: the fake MEXC's table of public subscriptions per WebSocket, and how a frame is routed.

MEXC sends a public channel's pushes only to the sockets that subscribed to that channel for that
symbol (mexc.md §8.1-8.2): `sub.<x> {symbol, ...}` starts `push.<x>` of that symbol on that socket,
`unsub.<x>` (`usub.depth.full` as the docs spell it) stops it. `push.kline` is per interval as well.
Private channels (`push.personal.*`) go to the sockets logged in to the account; the fake keeps that
set itself. A frame the fake cannot read (not JSON, no channel) has nothing to route by and goes to
every socket - only tests send such frames, to check that a client survives them.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

SUBSCRIBE, UNSUBSCRIBE = ("sub.",), ("unsub.", "usub.")
PRIVATE_PREFIX = "push.personal."

Sub = tuple[str, str | None, str | None]  # push channel, symbol (None: `sub.tickers`), kline interval


def push_channel(name: str) -> str:
    """The push channel of a method or channel name: `sub.deal`, `unsub.deal`, `deal`, `push.deal` -> `push.deal`."""
    for prefix in (*SUBSCRIBE, *UNSUBSCRIBE, "push."):
        if name.startswith(prefix):
            return "push." + name[len(prefix):]
    return "push." + name


def read_frame(frame: dict[str, Any] | str | bytes) -> dict[str, Any] | None:
    """The JSON object a frame carries (binary frames may be gzip, as MEXC's are), or None when unreadable."""
    if isinstance(frame, dict):
        return frame
    try:
        raw = gzip.decompress(frame) if isinstance(frame, bytes) and frame[:2] == b"\x1f\x8b" else frame
        msg = json.loads(raw)
    except (ValueError, OSError, EOFError, zlib.error):
        return None
    return msg if isinstance(msg, dict) else None


class Subscriptions:
    """Public subscriptions per socket (any hashable key); a socket's entries go when it closes."""

    def __init__(self) -> None:
        self._by_socket: dict[Any, set[Sub]] = {}

    def apply(self, socket: Any, method: str, param: Any) -> bool:
        """Record a `sub.` / `unsub.` / `usub.` message; False for any other method."""
        param = param if isinstance(param, dict) else {}
        symbol = param.get("symbol")
        interval = param.get("interval")
        sub: Sub = (push_channel(method), None if symbol is None else str(symbol),
                    None if interval is None else str(interval))
        if method.startswith(SUBSCRIBE):
            self._by_socket.setdefault(socket, set()).add(sub)
        elif method.startswith(UNSUBSCRIBE):
            held = self._by_socket.get(socket, set())
            held -= {s for s in held if s[:2] == sub[:2] and (sub[2] is None or s[2] == sub[2])}
        else:
            return False
        return True

    def drop(self, socket: Any) -> None:
        self._by_socket.pop(socket, None)

    def of(self, socket: Any) -> set[Sub]:
        return set(self._by_socket.get(socket, ()))

    def holders(self, channel: str, symbol: str | None) -> list[Any]:
        """The sockets subscribed to `channel` (any name form, see `push_channel`) for `symbol`."""
        want = push_channel(channel)
        return [sock for sock, subs in self._by_socket.items() if any(s[:2] == (want, symbol) for s in subs)]

    def wants(self, socket: Any, msg: dict[str, Any]) -> bool:
        """Whether `socket` subscribed to this public push: its channel, its symbol and, for a kline, its interval
        (a frame without an interval - a test's malformed kline - goes to every kline subscriber of the symbol)."""
        data = msg.get("data")
        symbol = msg.get("symbol") or (data.get("symbol") if isinstance(data, dict) else None)
        interval = data.get("interval") if isinstance(data, dict) else None
        for channel, sym, iv in self._by_socket.get(socket, ()):
            same = channel == msg.get("channel") and sym == (None if symbol is None else str(symbol))
            if same and (iv is None or interval is None or iv == str(interval)):
                return True
        return False

    def describe(self) -> str:
        subs = sorted(f"{c} {s or ''} {i or ''}".strip() for held in self._by_socket.values() for c, s, i in held)
        return ", ".join(subs) or "nothing"
