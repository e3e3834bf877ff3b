"""App layer: the `tui-trader` command. Parses options, loads settings, runs the UI or headless core.

Exit codes: 0 clean stop, 1 a critical task failed, 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from tui_trader import __version__
from tui_trader.domain.config import Settings
from tui_trader.domain.errors import ConfigError, DataError, StrategyError, TraderError

DESCRIPTION = """\
Terminal trading console for MEXC USDT-margined perpetual futures.

With no options it opens the dashboard in PAPER mode, replaying the bundled real market data
(no network, no API keys needed). Live trading needs mode = "live" in the config AND --live.
"""

EPILOG = """\
examples:
  tui-trader                          dashboard, paper mode, bundled data
  tui-trader --no-ui --duration 60    same core headless: one JSON event per line on stdout
  tui-trader --config my.toml         use a config file (see config.example.toml)
  tui-trader --screenshot shot.svg    the dashboard once a position is open (at most --duration, 12 s), as SVG
  tui-trader strategy check FILE      validate a strategy file and print its sections
  tui-trader sessions list            paper-trading sessions (create, list, show, orders, stop, delete)
  tui-trader backtest --data FILE     backtest a strategy on recorded candles
  tui-trader data import FILE...      parse and check candle files once into the columnar cache
  tui-trader trading reset            reset the kill switch (HALTED -> ACTIVE) after a breach

config lookup: --config PATH, else ./tui-trader.toml, else $XDG_CONFIG_HOME/tui-trader/config.toml,
else built-in defaults. API keys: env TUI_TRADER_MEXC_API_KEY / TUI_TRADER_MEXC_API_SECRET.
keys in the dashboard: 1-4 screens, q quit, K close every position (type CLOSE), R reset the kill switch,
? every key; ctrl+p every action by name. Move a key: [ui] keys in the config.
headless: kill -USR1 <pid> closes every position.
"""

CHECK_HELP = (
    "Validate a strategy file and print its sections. Exit 0 when valid, 2 when not. A valid strategy that can"
    " never trade (disabled, or an S1 or Z1 section that can never fire: no conditions, or conditions that"
    " exclude each other) is reported as a warning on stderr and still exits 0: it is a valid file, and an inert"
    " one may be meant (one that only watches)."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-trader", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"tui-trader {__version__}")
    parser.add_argument("--config", type=Path, metavar="PATH", help="TOML config file (default: see 'config lookup' below)")
    parser.add_argument("--no-ui", action="store_true", help="run headless: JSON-lines events on stdout, logs on stderr")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop cleanly after this many seconds")
    parser.add_argument("--live", action="store_true", help="confirm live trading (also needs mode = \"live\" in the config)")
    parser.add_argument("--yes-live", action="store_true",
                        help="with --no-ui --live: confirm that a headless console may send real orders (not needed"
                             " with --monitor-only, which sends no entries)")
    parser.add_argument("--monitor-only", action="store_true",
                        help="with --live: watch and guard every position of the account, open none (no strategy"
                             " entries; closes you ask for and the watchdog's auto-close still go)")
    parser.add_argument("--data", type=Path, metavar="FILE",
                        help="paper mode: replay this candle file (CSV or MEXC kline JSON, .gz too)"
                             " instead of [replay] file")
    parser.add_argument("--strategy", type=Path, metavar="FILE", help="the strategy file instead of [strategy] file")
    parser.add_argument("--speed", type=float, metavar="N",
                        help="paper mode: replay speed instead of [replay] speed"
                             " (0 = as fast as possible, 1 = real time)")
    parser.add_argument("--screenshot", type=Path, metavar="FILE.svg",
                        help="run the dashboard without a terminal until a position is open (at most --duration"
                             " seconds, default 12), write what it shows to FILE.svg and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    strat = sub.add_parser("strategy", help="strategy file tools")
    strat_sub = strat.add_subparsers(dest="strategy_command", metavar="ACTION", required=True)
    check = strat_sub.add_parser("check", help="validate a strategy file and print its sections",
                                 description=CHECK_HELP)
    check.add_argument("file", type=Path)
    # Each further command lives in its own module: register(subparsers) adds its parser and
    # sets `handler(args, settings) -> exit code`.
    from tui_trader.app import backtest_cli, data_cli, sessions_cli, trading_cli

    sessions_cli.register(sub)
    backtest_cli.register(sub)
    trading_cli.register(sub)
    data_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be > 0")
    try:
        if args.command == "strategy":
            from tui_trader.app.commands import strategy_check

            return strategy_check(args.file)
        from tui_trader.app.settings import check_input_files, load_settings

        settings, config_path = load_settings(args.config)
        handler = getattr(args, "handler", None)
        if handler is not None:
            return handler(args, settings)
        settings = with_overrides(settings, args)
        check_mode(settings, args.live)
        if args.monitor_only:
            if settings.mode != "live":
                raise ConfigError("--monitor-only watches a live account: it needs --live and mode = \"live\"")
            settings = settings.model_copy(update={"monitor_only": True})
        if settings.mode == "live" and args.no_ui and not settings.monitor_only and not args.yes_live:
            raise ConfigError("--no-ui --live trades real money with no screen to watch it: add --yes-live to confirm"
                              " (or --monitor-only, which sends no entries)")
        given = (("replay.file", "--data", args.data), ("strategy.file", "--strategy", args.strategy))
        flags = {key: flag for key, flag, value in given if value is not None}
        check_input_files(settings, config_path, flags)
    except ConfigError as exc:
        problems = str(exc).splitlines()  # one problem: one line; several: one line each under a heading
        shown = f" {problems[0]}" if len(problems) == 1 else f"\n{_indent(str(exc))}"
        print(f"tui-trader: configuration error:{shown}", file=sys.stderr)
        return 2
    except TraderError as exc:
        print(f"tui-trader: {exc}", file=sys.stderr)
        return 2
    return run(settings, no_ui=args.no_ui, duration_s=args.duration, screenshot=args.screenshot)


def with_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    """--data / --strategy / --speed over the config (their files are checked with the config's:
    check_input_files)."""
    if args.speed is not None and args.speed < 0:
        raise ConfigError(f"--speed {args.speed:g}: must be >= 0 (0 = as fast as possible)")
    replay = {k: v for k, v in (("file", args.data), ("speed", args.speed)) if v is not None}
    update: dict[str, object] = {}
    if replay:
        update["replay"] = settings.replay.model_copy(update=replay)
    if args.strategy is not None:
        update["strategy"] = settings.strategy.model_copy(update={"file": args.strategy})
    return settings.model_copy(update=update) if update else settings


def check_mode(settings: Settings, live_flag: bool) -> None:
    """Live trading is explicit: mode = "live" in the config and --live, plus API keys."""
    if settings.mode == "live" and not live_flag:
        raise ConfigError('mode = "live" needs --live on the command line to confirm real-money trading')
    if live_flag and settings.mode != "live":
        raise ConfigError('--live given but the config has mode = "paper"; set mode = "live" to trade for real')
    if settings.mode == "live" and (settings.mexc.api_key is None or settings.mexc.api_secret is None):
        raise ConfigError("mode = \"live\" needs mexc.api_key and mexc.api_secret (or env TUI_TRADER_MEXC_API_KEY / _SECRET)")


def run(settings: Settings, *, no_ui: bool, duration_s: float | None, screenshot: Path | None = None) -> int:
    from tui_trader.app.wiring import build_core

    _setup_logging(settings, to_stderr=no_ui)

    async def go() -> int:
        core = build_core(settings)
        if no_ui:
            from tui_trader.app.headless import run_headless

            return await run_headless(core, duration_s=duration_s)
        if screenshot is not None:
            from tui_trader.app.tui.app import save_screenshot

            return await save_screenshot(core, screenshot, after_s=duration_s or 12.0)
        from tui_trader.app.tui.app import run_tui

        return await run_tui(core, duration_s=duration_s)

    from tui_trader.venues.mexc.startup import StartupFailed

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:
        return 0
    except StartupFailed as exc:
        print(f"tui-trader: live start-up failed: {exc}", file=sys.stderr)
        return exc.exit_code
    except ConfigError as exc:  # found while building (the dashboard's [ui] keys)
        print(f"tui-trader: configuration error: {exc}", file=sys.stderr)
        return 2
    except (DataError, StrategyError) as exc:  # an input file the core is built from (the reader names it)
        print(f"tui-trader: {exc}", file=sys.stderr)
        return 2


def _setup_logging(settings: Settings, *, to_stderr: bool) -> None:
    # the dashboard owns the terminal: it logs to a file beside the database
    handler = logging.StreamHandler(sys.stderr) if to_stderr else file_log_handler(settings)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def file_log_handler(settings: Settings) -> logging.Handler:
    """The log file beside the database, `<data_dir>/tui-trader.log` (the dashboard's and backtest's)."""
    assert settings.data_dir is not None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(settings.data_dir / "tui-trader.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
