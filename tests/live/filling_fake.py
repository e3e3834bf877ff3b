"""Test support: the fake MEXC with its account model switched on (`FakeMexc(fills=True)`).

The account (fills, hedge positions, liquidation on the fair price, private pushes, faults) lives in
`tests/venues/mexc/fake_exchange.py`, one model for every test and for `bench/soak.py`; this module
only names the switched-on variant the live end-to-end tests use.
"""

from __future__ import annotations

from tests.venues.mexc.fake_exchange import FakeMexc

LONG, SHORT = 1, 2


class FillingMexc(FakeMexc):
    def __init__(self) -> None:
        super().__init__(fills=True)

    def release_held(self) -> None:
        """Let every held reply ('hang' / 'hold_*' faults) go."""
        self._release.set()
