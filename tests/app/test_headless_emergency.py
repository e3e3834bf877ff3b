"""Headless emergency close as a real process: SIGUSR1 flattens, events on stdout, then SIGTERM exits 0."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading

from tests.app.test_headless import command, env_for

TIMEOUT_S = 20.0


def _reader(stream, lines: "queue.Queue[str | None]") -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _wait_for(lines: "queue.Queue[str | None]", seen: list[dict], predicate) -> dict:
    while True:
        line = lines.get(timeout=TIMEOUT_S)  # queue.Empty fails the test instead of hanging it
        assert line is not None, "the process ended early"
        event = json.loads(line)
        seen.append(event)
        if predicate(event):
            return event


def test_sigusr1_closes_all_then_sigterm_exits_zero(isolated_environment):
    proc = subprocess.Popen(command() + ["--no-ui"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env_for(isolated_environment), cwd=isolated_environment / "cwd")
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    seen: list[dict] = []
    try:
        _wait_for(lines, seen, lambda e: e["type"] == "trade")  # the core is up and replaying
        proc.send_signal(signal.SIGUSR1)
        done = _wait_for(lines, seen, lambda e: e["type"] == "emergency_close" and e["stage"] in ("done", "failed"))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert done["stage"] == "done" and done["open_positions"] == 0 and done["scope"] == "all"
    stages = [e["stage"] for e in seen if e["type"] == "emergency_close"]
    assert stages == ["started", "cancelled_orders", "done"] or stages[:3] == ["started", "cancelled_orders", "closing"]
    assert "SIGUSR1" in next(e for e in seen if e["type"] == "emergency_close")["detail"]
    trading = [e["state"] for e in seen if e["type"] == "trading_state"]
    assert trading[0] == "ACTIVE" and trading[-2:] == ["REDUCING", "HALTED"]
