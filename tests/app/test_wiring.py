"""The composition root: paper mode on the replay with a data clock; live mode on the MEXC parts."""

from __future__ import annotations

from tui_trader.app.settings import load_settings
from tui_trader.app.wiring import build_core
from tui_trader.domain.config import Settings
from tui_trader.engine.clock import SimClock
from tui_trader.venues.paper.venue import PaperVenue


def test_paper_mode_runs_the_stack_on_a_data_clock(isolated_environment):
    settings, _ = load_settings(None)
    core = build_core(settings)
    c = core.components
    assert isinstance(c["venue"], PaperVenue) and isinstance(c["data_clock"], SimClock)
    assert c["stack"].risk is not None and c["stack"].watchdog is not None and c["stack"].emergency is not None
    assert c["execution"].risk is c["stack"].risk
    assert c["feed"].backpressure is c["execution"]
    names = [s.service.name for s in core._specs]
    assert names[0] == "store" and names[-1] == "replay"  # the store shuts down last, the feed starts last


def test_live_mode_wires_the_mexc_venue_and_streams(isolated_environment):
    base, _ = load_settings(None)
    settings = Settings.model_validate({
        **base.model_dump(exclude={"mexc"}), "mode": "live",
        "mexc": {"rest_base": "http://127.0.0.1:9", "ws_url": "ws://127.0.0.1:9/edge", "api_key": "k", "api_secret": "s"},
        "strategy": {"symbols": ["BTC_USDT"]},
    })
    core = build_core(settings)
    venue = core.components["venue"]
    assert type(venue).__name__ == "MexcVenue"
    names = [s.service.name for s in core._specs]
    assert "mexc-venue" in names and names.index("mexc-venue") < names.index("execution")
    assert core.components["feed"].name.startswith("mexc")


async def test_a_second_console_launch_trades_its_own_fresh_paper_account(isolated_environment, tmp_path):
    """Same replay, same deterministic client ids: the second launch's fills must still be stored and shown."""
    import asyncio

    from tests.app.test_sessions import real_slice
    from tui_trader.domain.events import OrderFilled

    base, _ = load_settings(None)
    settings = base.model_copy(update={"replay": base.replay.model_copy(update={"speed": 0.0, "file": real_slice(tmp_path)})})
    for launch in range(2):
        core = build_core(settings)
        fills = []
        core.bus.subscribe(fills.append, [OrderFilled])
        async with core:
            while core.components["feed"].state != "finished":
                await asyncio.sleep(0.01)
            await core.components["execution"].idle()
        assert len(fills) == 2, f"launch {launch}"


def test_live_mode_refuses_a_bar_strategy_on_candles_the_feed_does_not_stream(isolated_environment, tmp_path):
    import pytest

    from tui_trader.domain.errors import ConfigError
    from tui_trader.engine.strategy_runner import bundled_strategy_path

    five = tmp_path / "five.toml"
    five.write_text(bundled_strategy_path("bar_pump_short.toml").read_text().replace('bar_interval = "1m"',
                                                                                     'bar_interval = "5m"'))
    base, _ = load_settings(None)
    settings = Settings.model_validate({
        **base.model_dump(exclude={"mexc"}), "mode": "live",
        "mexc": {"rest_base": "http://127.0.0.1:9", "ws_url": "ws://127.0.0.1:9/edge", "api_key": "k", "api_secret": "s"},
        "strategy": {"symbols": ["BTC_USDT"], "file": str(five)},
    })
    with pytest.raises(ConfigError, match=r"bar_interval '5m' - the live feed streams 1-minute klines only"):
        build_core(settings)
