"""Domain layer: the typed configuration schema, one model per area.

Loading (TOML, env vars, file lookup, error messages) lives in `app/settings.py`; the models live
here so every layer can take its own section without importing the app. All models forbid unknown
keys (a typo in a risk limit must fail, not be ignored) and are frozen. Each field's description
is what `config.example.toml` documents.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

MIN_LEVERAGE, MAX_LEVERAGE = 1, 200  # MEXC's bounds: the config, strategies, session forms and venue check


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class MexcConfig(Section):
    """MEXC futures endpoints, credentials and timeouts."""

    rest_base: str = Field("https://api.mexc.com", description="REST base URL (the host has changed before: keep it configurable).")
    ws_url: str = Field("wss://contract.mexc.com/edge", description="WebSocket URL.")
    order_path: str = Field("/api/v1/private/order/create", description="Place-order path (older accounts: /api/v1/private/order/submit).")
    api_key: SecretStr | None = Field(None, description="API key; prefer env TUI_TRADER_MEXC_API_KEY. Never logged.")
    api_secret: SecretStr | None = Field(None, description="API secret; prefer env TUI_TRADER_MEXC_API_SECRET. Never logged.")
    request_timeout_s: float = Field(10.0, gt=0, le=120, description="Total timeout of one REST request, seconds.")
    connect_timeout_s: float = Field(5.0, gt=0, le=60, description="TCP/TLS connect timeout, seconds.")
    recv_window_s: int = Field(10, ge=1, le=60, description="Recv-Window header, seconds.")
    ws_ping_interval_s: float = Field(15.0, gt=0, le=55, description="Text ping interval on the WebSocket (server drops after 60 s).")
    ws_stall_timeout_s: float = Field(30.0, gt=0, description="No message for this long -> reconnect.")
    ws_data_stall_s: float = Field(10.0, gt=0, description="Public stream: no market data for this long -> stalled, reconnect (pongs do not count).")
    ws_reconnect_initial_s: float = Field(1.0, gt=0, description="First reconnect back-off, seconds (jittered, doubling).")
    ws_reconnect_max_s: float = Field(30.0, gt=0, description="Reconnect back-off cap, seconds.")
    poll_interval_s: float = Field(2.0, gt=0, description="REST polling of positions/orders when private pushes are unavailable.")
    position_audit_s: float = Field(
        10.0, gt=0, description="REST read of positions/orders while pushes flow: a lost push is corrected within this.")
    rate_limit_scale: float = Field(
        1.0, gt=0, le=1, description="Share of MEXC's per-endpoint limits (20 / 2 s) this console uses; closes first.")
    position_mode: Literal["hedge", "one_way"] = Field("hedge", description="The account's MEXC position mode; one_way sends reduceOnly on closes (hedge rejects it).")

    @field_validator("rest_base", "ws_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must start with http://, https://, ws:// or wss://")
        return v.rstrip("/")


class RetryConfig(Section):
    """tenacity retry of retryable venue errors (network, timeout, 5xx, rate limit)."""

    attempts: int = Field(3, ge=1, le=10, description="Attempts in total, the first included.")
    initial_s: float = Field(1.0, ge=0, le=60, description="First wait, seconds.")
    multiplier: float = Field(2.0, ge=1, le=10, description="Each wait is the previous one times this.")
    max_s: float = Field(30.0, ge=0, description="Cap on one wait, seconds.")
    jitter_s: float = Field(0.5, ge=0, description="Random extra wait in [0, jitter_s], seconds.")


class BreakerConfig(Section):
    """pybreaker circuit breaker around private calls (entries). Closes never wait on it."""

    fail_max: int = Field(5, ge=1, le=100, description="Consecutive failures that open the breaker.")
    reset_timeout_s: float = Field(60.0, gt=0, description="Seconds open before a half-open trial call.")
    call_timeout_s: float = Field(10.0, gt=0, description="A call taking longer counts as a failure.")


class WatchdogConfig(Section):
    """Liquidation watchdog: bands, warnings, auto-close."""

    yellow_band_pct: float = Field(20.0, gt=0, le=100, description="Distance (%) at or below which a position is yellow.")
    red_band_pct: float = Field(10.0, gt=0, le=100, description="Distance (%) below which a position is red.")
    warning_thresholds_pct: list[float] = Field([30.0, 20.0, 10.0], description="A LiquidationWarning is emitted when the distance crosses each of these.")
    hysteresis_pct: float = Field(1.0, ge=0, le=10, description="Points the distance must recover past a boundary before the band improves.")
    repeat_s: float = Field(60.0, ge=0, description="While yellow/red, repeat a warning at most this often (timed from the last one sent).")
    autoclose_enabled: bool = Field(True, description="Close a position (reduce-only market) below the auto-close distance.")
    autoclose_distance_pct: float = Field(10.0, gt=0, le=100, description="Auto-close when the distance falls below this (default: the red band).")
    runtime_buffer: float = Field(0.0, ge=0, lt=1, description="Also close when this fraction of the entry-to-liquidation runway is left (0 = off).")
    partial_close: bool = Field(False, description="Reduce only enough to bring the distance back above the threshold.")
    mark_max_age_s: float = Field(3.0, gt=0, description="Older fair price -> fall back to the last trade price (flagged).")
    stale_after_s: float = Field(3.0, gt=0, description="No stream price for a symbol with a position for this long -> read its fair price over REST about every second.")
    max_stale_data_s: float = Field(10.0, gt=0, description="No price at all (stream nor REST) for this long: a position last seen yellow or red -> on_stale; green -> a CRITICAL alert.")
    on_stale: Literal["close", "alert"] = Field("close", description="What to do with a red position whose prices are stale.")
    close_retry_initial_s: float = Field(0.5, gt=0, description="First wait before re-sending a failed close.")
    close_retry_max_s: float = Field(10.0, gt=0, description="Cap on the close retry wait.")

    @model_validator(mode="after")
    def _bands(self) -> "WatchdogConfig":
        if self.red_band_pct >= self.yellow_band_pct:
            raise ValueError(f"red_band_pct ({self.red_band_pct}) must be below yellow_band_pct ({self.yellow_band_pct})")
        return self


class RiskConfig(Section):
    """Risk guard between strategy intents and execution; breaching loss limits trips the kill switch."""

    max_position_pct: float = Field(10.0, gt=0, le=100, description="Largest position margin as % of equity.")
    max_open_positions: int = Field(3, ge=1, le=500, description="Open positions plus pending entries, all strategies.")
    max_leverage: int = Field(20, ge=MIN_LEVERAGE, le=MAX_LEVERAGE, description="Highest leverage an entry may use (1..200).")
    daily_loss_limit_pct: float = Field(5.0, gt=0, le=100, description="Loss since 00:00 UTC (% of that equity) that trips the kill switch.")
    max_drawdown_pct: float = Field(15.0, gt=0, le=100, description="Drawdown from peak equity (%) that trips the kill switch.")


class FeesConfig(Section):
    """Fee rates (fractions). MEXC futures defaults; the contract's own rates win when known."""

    taker_rate: float = Field(0.0006, ge=0, lt=0.1, description="Taker fee, fraction of notional (0.0006 = 0.06 %).")
    maker_rate: float = Field(0.0002, ge=0, lt=0.1, description="Maker fee, fraction of notional.")
    liquidation_fee_rate: float = Field(0.0006, ge=0, lt=0.1, description="Liquidation fee used in the liquidation price (MEXC does not publish it).")


class PaperConfig(Section):
    """Paper venue: simulated fills, funding and liquidation."""

    starting_balance: float = Field(10_000.0, gt=0, description="USDT a new paper session starts with.")
    slippage_bps: float = Field(5.0, ge=0, le=1000, description="Market orders fill this many basis points worse than the reference price.")
    latency_ms: int = Field(100, ge=0, le=60_000, description="Delay between an order and its fill (paper; backtests use 0).")
    funding_rate: float = Field(0.0001, ge=-0.05, le=0.05, description="Funding rate per interval when no funding series is given.")
    funding_interval_h: int = Field(8, ge=1, le=24, description="Hours between funding settlements.")
    maintenance_margin_rate: float = Field(0.01, gt=0, lt=0.5, description="mmr for symbols without contract details (small caps are higher than BTC's 0.4 %).")


class ReplayConfig(Section):
    """Replay of recorded candles as ticks (the default market data: no network, no keys)."""

    file: Path | None = Field(None, description="Candle CSV (timestamp_ms,open,high,low,close[,volume]); empty = the bundled sample.")
    symbol: str | None = Field(None, description="Symbol name for the replayed data; empty = derived from the file name.")
    speed: float = Field(60.0, ge=0, le=1_000_000, description="1 = real time, 60 = a minute per second, 0 = as fast as possible.")
    ticks_per_candle: int = Field(4, ge=1, le=4, description="Trade ticks per candle: 4 = open, high/low, low/high, close.")
    spread_bps: float = Field(10.0, ge=0, le=1000, description="Synthetic bid/ask spread around replayed prices (bar data has no order book).")
    loop: bool = Field(False, description="Start again from the first candle at the end of the file.")
    paced_from: datetime | None = Field(
        None, description="UTC data time from which `speed` applies; the candles before it replay at full speed (the"
                          " strategy warms up and trades on them). Empty = from the first candle; the bundled sample"
                          " starts paced five minutes before its first entry.")


class StrategyConfig(Section):
    """Which strategy the core runs and on which symbols."""

    file: Path | None = Field(None, description="Strategy file (TOML or JSON); empty = the bundled pump_short.")
    symbols: list[str] = Field(default_factory=list, description="Symbols to trade; empty = the replayed symbol.")
    enabled: bool = Field(True, description="Run the strategy (off = market data, watchdog and manual actions only).")


class StoreConfig(Section):
    """SQLite store."""

    path: Path | None = Field(None, description="Database file; empty = <data_dir>/tui-trader.sqlite.")
    batch_size: int = Field(500, ge=1, le=100_000, description="Rows the background writer commits at once.")
    flush_interval_ms: int = Field(200, ge=1, le=60_000, description="Longest a queued row waits before it is committed.")
    record_market_data: bool = Field(False, description="Also store market data (ticks, candles, funding rates) in the events table (large).")


class UiConfig(Section):
    """Dashboard."""

    refresh_hz: float = Field(10.0, gt=0, le=60, description="Repaints per second at most (events are coalesced in between).")
    log_lines: int = Field(10_000, ge=10, le=1_000_000,
                           description="Events the log screen keeps in memory (the database keeps all of them).")
    keys: dict[str, str] = Field(
        default_factory=dict,
        description='Key overrides by binding id, e.g. { "positions.close" = "x", "app.close-all" = "ctrl+k" };'
                    ' the help screen (?) lists every id.')


class Settings(Section):
    """The whole configuration. Built-in defaults run paper trading on the bundled replay data."""

    mode: Literal["paper", "live"] = Field("paper", description="paper (default) or live. Live also needs --live on the command line.")
    monitor_only: bool = Field(
        False, description="Live: watch and guard every position of the account, open none (also --monitor-only).")
    data_dir: Path | None = Field(None, description="Where the database and exports go; empty = $XDG_DATA_HOME/tui-trader.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level (logs go to stderr / the log file, never stdout).")
    mexc: MexcConfig = MexcConfig()
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    watchdog: WatchdogConfig = WatchdogConfig()
    risk: RiskConfig = RiskConfig()
    fees: FeesConfig = FeesConfig()
    paper: PaperConfig = PaperConfig()
    replay: ReplayConfig = ReplayConfig()
    strategy: StrategyConfig = StrategyConfig()
    store: StoreConfig = StoreConfig()
    ui: UiConfig = UiConfig()
