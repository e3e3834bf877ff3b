"""App layer: `--no-ui` mode. The same core, one JSON object per event on stdout.

Logs go to stderr (stdout belongs to the event stream). SIGINT and SIGTERM stop the core in order
and exit 0; `--duration` stops it after that many seconds. SIGUSR1 runs the emergency close-all
(`kill -USR1 <pid>` flattens a headless instance from a shell; trading then stays HALTED until
reset). No Textual import on this path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable
from typing import TextIO

from tui_trader.app.facade import ConsoleFacade, NotAvailable
from tui_trader.app.stdout_writer import StdoutWriter
from tui_trader.domain.events import EventsDropped, event_to_dict
from tui_trader.engine.bus import Policy
from tui_trader.engine.core import TraderCore

log = logging.getLogger(__name__)


async def run_headless(core: TraderCore, *, duration_s: float | None = None, out: TextIO | None = None) -> int:
    """Run `core` until a signal, `duration_s`, or a critical failure; returns the exit code."""
    out = out or sys.stdout
    sub = core.bus.subscribe_queue("headless", Policy.EVERY, maxsize=100_000)
    loop = asyncio.get_running_loop()
    installed = []
    handlers: dict[signal.Signals, Callable[[], None]] = {signal.SIGINT: core.request_stop,
                                                           signal.SIGTERM: core.request_stop}
    facade = ConsoleFacade(core)

    def close_all() -> None:  # SIGUSR1: the dashboard's K, through the same facade
        try:  # the emergency closer keeps the task and reports its failure
            facade.close_all("SIGUSR1")
        except NotAvailable as exc:
            log.warning("SIGUSR1 ignored: %s", exc)

    if hasattr(signal, "SIGUSR1"):
        handlers[signal.SIGUSR1] = close_all
    for sig, handler in handlers.items():
        try:
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread / no signals here
            pass

    stdout = StdoutWriter(out)  # a stalled reader never blocks the loop (stdout_writer.py)

    async def write_events() -> None:
        reported = 0
        async for batch in sub:
            stdout.write("".join(json.dumps(event_to_dict(e), default=str, separators=(",", ":")) + "\n"
                                 for e in batch), len(batch))
            if stdout.broken:  # reader went away (e.g. `| head`): stop in order
                core.request_stop()
                _silence_stdout(out)
                return
            if stdout.dropped > reported:
                core.bus.publish(EventsDropped(core.clock.now_ms(), "headless-stdout", stdout.dropped - reported))
                reported = stdout.dropped

    writer = asyncio.create_task(write_events(), name="headless-writer")
    timer = loop.call_later(duration_s, core.request_stop) if duration_s else None
    try:
        async with core:
            await core.wait_stop_requested()
    finally:
        if timer is not None:
            timer.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
        sub.close()
        await writer
        stdout.close()
    return core.exit_code


def _silence_stdout(out: TextIO) -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    if out is sys.stdout:
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
