"""kill -9 during a running replay session: after a restart it is listed with the same orders, fills
and positions, resumes from its checkpoint to the end, and no fill is duplicated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.app.test_headless import command, env_for
from tests.app.test_sessions import PUMP_FROM, real_slice

# 92 h of the bundled NXT/BTC from PUMP_FROM: two trades by +18.6 h (the kill comes after them, with 73 h
# still to replay), two more at +89.5 h and +90.3 h that only the resumed run makes. The whole file (240 h:
# 60 h of warm-up before the first trade) cost 2.6 times the replay for nothing the test asserts.
SLICE_TO = PUMP_FROM + 92 * 3_600_000


def run_cli(args, env, cwd, timeout=120):
    return subprocess.run(command() + args, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout,
                          check=False)


def snapshot(db: Path) -> tuple[dict, list, str]:
    con = sqlite3.connect(db)
    fills = {r[0]: r[1:] for r in con.execute("SELECT fill_id, client_id, qty, price, fee, realized_pnl, ts_ms FROM fills")}
    orders = sorted(con.execute("SELECT client_id, state, filled FROM orders WHERE state IN ('filled','cancelled','rejected')"))
    status = con.execute("SELECT status FROM sessions").fetchone()[0]
    con.close()
    return fills, orders, status


@pytest.mark.slow  # a full-speed replay stepped every simulated second (CI runs it)
def test_kill_9_then_resume(isolated_environment):
    env = env_for(isolated_environment)
    env["COLUMNS"] = "200"
    cwd = isolated_environment / "cwd"
    db = isolated_environment / "data" / "tui-trader" / "tui-trader.sqlite"
    data = real_slice(isolated_environment, PUMP_FROM, SLICE_TO)
    proc = subprocess.Popen(command() + ["sessions", "create", "--name", "crash-me", "--data", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # wait (bounded) until it has traded and checkpointed past a fill
            time.sleep(0.2)
            if db.exists():
                try:
                    con = sqlite3.connect(db, timeout=1)
                    row = con.execute("SELECT (SELECT COUNT(*) FROM fills), cursor_ms, checkpoint_json IS NOT NULL FROM sessions").fetchone()
                    first_fill = con.execute("SELECT MIN(ts_ms) FROM fills").fetchone()[0]
                    con.close()
                except sqlite3.Error:
                    continue
                if row and row[0] >= 4 and row[2] and first_fill and row[1] > first_fill:
                    break
        else:
            raise AssertionError("the session never traded")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    fills_before, orders_before, status = snapshot(db)
    assert status == "running"  # what the dead process left

    listed = run_cli(["sessions", "list"], env, cwd)
    assert listed.returncode == 0 and "interrupted" in listed.stdout, listed.stdout + listed.stderr
    sid = sqlite3.connect(db).execute("SELECT id FROM sessions").fetchone()[0]
    shown = run_cli(["sessions", "orders", sid], env, cwd)
    assert shown.returncode == 0 and "pump_short-NXT-1-O" in shown.stdout

    resumed = run_cli(["sessions", "resume", sid], env, cwd, timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "finished" in resumed.stdout
    fills_after, orders_after, status = snapshot(db)
    assert status == "finished"
    for fill_id, row in fills_before.items():  # nothing stored before the crash changed or vanished
        assert fills_after[fill_id] == row
    executions = [(r[0], r[5]) for r in fills_after.values()]  # (client id, time): one fill each
    assert len(executions) == len(set(executions))
    assert set(orders_before) <= set(orders_after)
    assert len(fills_after) > len(fills_before)  # the resumed run traded on (the slice's 3rd and 4th trades)
    show = run_cli(["sessions", "show", sid], env, cwd)
    assert "reconciles" in show.stdout and "yes" in show.stdout.split("reconciles")[1].splitlines()[0]
