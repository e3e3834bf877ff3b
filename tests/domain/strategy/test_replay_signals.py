"""The default strategy on real 1-minute candles replayed as ticks (as the replay feed sends them)."""

from __future__ import annotations

from decimal import Decimal


from tests.domain.indicators import naive
from tests.domain.strategy.helpers import BUNDLED
from tui_trader.domain.events import BookTick, CandleClosed, TradeTick
from tui_trader.domain.indicators.registry import IndicatorSet
from tui_trader.domain.intents import ClosePosition, OpenPosition
from tui_trader.domain.models import Position
from tui_trader.domain.strategy.machine import StrategyMachine
from tui_trader.domain.strategy.schema import strategy_from_toml
from tui_trader.domain.strategy.state import Phase


def _replay(name: str, limit: int | None = None) -> tuple[StrategyMachine, list]:
    """Feed candles as 4 trades + book ticks + a closed candle; fill every intent at once."""
    strategy = strategy_from_toml(BUNDLED.read_text())
    ind, m = IndicatorSet.for_strategy(strategy), StrategyMachine(strategy, "NXT_BTC")
    intents: list = []

    def step(now: int, price: float) -> None:
        for intent in m.on_tick(now, ind.values(now), price=price):
            intents.append(intent)
            contracts = 10 if isinstance(intent, OpenPosition) else 0
            if isinstance(intent, (OpenPosition, ClosePosition)):
                pos = Position(m.symbol, m.side, Decimal(contracts), Decimal(1), Decimal(str(price)), 3, tag=m.tag)
                m.on_position_changed(now, pos)

    for row in naive.read_rows(name, limit):
        ts = int(row["timestamp_ms"])
        ticks = naive.replay_ticks([row])
        for t, price, qty in ticks:
            ind.on_event(TradeTick(t, "NXT_BTC", price, qty))
            step(t, price)
            ind.on_event(BookTick(t, "NXT_BTC", price * 0.9995, price * 1.0005))
            step(t, price)
        o, h, lo, c = (float(row[k]) for k in ("open", "high", "low", "close"))
        ind.on_event(CandleClosed(ts + 60_000, "NXT_BTC", ts, 60, o, h, lo, c, float(row["volume"])))
    return m, intents


def test_default_strategy_signals_and_enters_on_pump_data():
    m, intents = _replay("bittrex_NXT-BTC_1m_20171130-20171210.csv")
    transitions = m.drain_transitions()
    signals = [t for t in transitions if t.target is Phase.SIGNAL_DETECTED]
    opens = [i for i in intents if isinstance(i, OpenPosition)]
    assert len(signals) >= 1 and len(opens) >= 1
    assert len(opens) <= len(signals)  # at most one entry per signal
    assert len({o.client_id for o in opens}) == len(opens)
    assert all(o.side.value == "SHORT" and o.ref_price is not None for o in opens)
    closes = [i for i in intents if isinstance(i, ClosePosition)]
    assert len(closes) >= len(opens) - 1  # every position but maybe the last was closed


def test_default_strategy_stays_quiet_without_pumps():
    m, intents = _replay("ftx_BTC-PERP_1m_20211231-20220201.csv", limit=8000)
    assert not any(isinstance(i, OpenPosition) for i in intents)
