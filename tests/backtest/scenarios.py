"""Hand-computable backtest fixtures: tiny candle files and a strategy that enters on the first tick."""

from __future__ import annotations

from pathlib import Path

from tui_trader.backtest.runner import run_backtest
from tui_trader.domain.config import PaperConfig, ReplayConfig, Settings, WatchdogConfig
from tui_trader.domain.strategy.schema import strategy_from_toml

T0 = 1_699_977_300_000  # 5 minutes before a funding settlement (multiple of 8 h since the epoch)
MIN = 60_000

# No spread, no slippage, no watchdog auto-close: every price below is a candle price. (Bars tick
# every 15 s, more than the watchdog's 10 s staleness limit: alert only.)
SETTINGS = Settings(
    replay=ReplayConfig(spread_bps=0), paper=PaperConfig(slippage_bps=0),
    watchdog=WatchdogConfig(autoclose_enabled=False, on_stale="alert"),
)  # fmt: skip

# The 1 s price average is defined one second into the data: S1 fires at T0 + 1 s, Z1 at the next
# 1 s step sends the short, which fills at the next trade tick (T0 + 15 s) at 100.
# Margin = 10 % of 10 000.
STRATEGY = """
strategy_name = "hand"
direction = "SHORT"

[indicators.price]
type = "twpa"
window = [1, 0]

[s1_signal]
conditions = [{{ indicator = "price", operator = ">", value = 0.0 }}]

[z1_entry]
conditions = [{{ indicator = "price", operator = ">", value = 0.0 }}]

[z1_entry.order]
size_pct = 10.0
leverage = {leverage}
stop_loss_pct = {stop_loss_pct}
take_profit_pct = 10.0
fill_timeout_s = 30

[ze1_close]
conditions = [{ze1}]

[emergency_exit]
conditions = [{e1}]
cooldown_s = 1000000

[global_limits]
normal_exit_cooldown_s = 1000000
max_leverage = 10
min_entry_liq_distance_pct = 0.0
"""


def strategy(*, leverage: int = 2, stop_loss_pct: float = 5.0, ze1: str = "", e1: str = ""):
    return strategy_from_toml(STRATEGY.format(leverage=leverage, stop_loss_pct=stop_loss_pct, ze1=ze1, e1=e1))


def candles(tmp_path: Path, bars: list[tuple[float, float, float, float]], name: str = "test_HAND-USDT_1m.csv") -> Path:
    """One-minute candles from T0; bar 0 (entry) is flat at 100 and prepended here."""
    rows = ["timestamp_ms,open,high,low,close,volume"]
    for i, (o, h, low, c) in enumerate([(100, 100, 100, 100), *bars]):
        rows.append(f"{T0 + i * MIN},{o},{h},{low},{c},1")
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n")
    return path


def run(tmp_path: Path, bars, strat=None, **options):
    options.setdefault("equity_every_ms", MIN)
    return run_backtest(strat or strategy(), [candles(tmp_path, bars)], settings=SETTINGS, **options)
