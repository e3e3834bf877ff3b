"""App layer: `tui-trader sessions ...` - paper-trading sessions from the shell."""

from __future__ import annotations

import argparse

from tui_trader.domain.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sessions", help="paper-trading sessions: create, list, show, orders, stop, delete")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace, settings: Settings) -> int:
    print("tui-trader: sessions are not available yet")
    return 2
