"""Domain layer: the strategy machine's own values (P&L, momentum reversal) laid over the market
values - a read-only mapping whose `get` is the one hot operation of a step."""

from __future__ import annotations

from collections.abc import Mapping

_MISSING = object()


class Overlay(Mapping):
    """The machine's own values over the market values; `get` is the only hot operation."""

    __slots__ = ("base", "own")

    def __init__(self, own: dict, base: Mapping) -> None:
        self.own, self.base = own, base

    def get(self, key, default=None):
        value = self.own.get(key, _MISSING)
        return self.base.get(key, default) if value is _MISSING else value

    def __getitem__(self, key):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __iter__(self):
        return iter({**dict.fromkeys(self.base), **self.own})

    def __len__(self) -> int:
        return len({**dict.fromkeys(self.base), **self.own})
