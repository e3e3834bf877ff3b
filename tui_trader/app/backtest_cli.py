"""App layer: `tui-trader backtest ...` (see the backtest issue; registered by `cli.build_parser`)."""

from __future__ import annotations

import argparse

from tui_trader.domain.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("backtest", help="backtest a strategy on recorded candles")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace, settings: Settings) -> int:
    print("tui-trader: backtest is not available yet")
    return 2
