"""Paper sessions as real processes (issue 23): a bad row stops the session (and the console) with one
message, nothing hangs; `sessions stop` from a second process acts within a second; `sessions health`
sees sessions that other processes run. Every wait has a deadline."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.app.test_headless import command, env_for
from tui_trader.venues.replay import bundled_data_path

BAD_LINE = 400  # the corrupt row's line number in the file


def corrupt_copy(folder: Path) -> Path:
    """The bundled NXT/BTC candles with line 400's close replaced by text."""
    with gzip.open(bundled_data_path(), "rt") as fh:
        lines = fh.read().splitlines()[:2000]
    fields = lines[BAD_LINE - 1].split(",")
    fields[4] = "12x"
    lines[BAD_LINE - 1] = ",".join(fields)
    path = folder / "bittrex_NXT-BTC_1m_bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def db_of(tmp: Path) -> Path:
    return tmp / "data" / "tui-trader" / "tui-trader.sqlite"


def test_a_corrupt_row_stops_the_session_with_one_message_and_exit_2(isolated_environment):
    bad = corrupt_copy(isolated_environment)
    env = env_for(isolated_environment)
    started = time.monotonic()
    proc = subprocess.run(command() + ["sessions", "create", "--name", "bad", "--data", str(bad)], capture_output=True,
                          text=True, env=env, cwd=isolated_environment / "cwd", timeout=60, check=False)
    took = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and took < 20
    [message] = [line for line in proc.stderr.splitlines() if "failed" in line or "error" in line]  # one line
    assert f"{bad.name}:{BAD_LINE}" in message and "close" in message
    listed = subprocess.run(command() + ["sessions", "list"], capture_output=True, text=True,
                            env=env | {"COLUMNS": "200"}, cwd=isolated_environment / "cwd", timeout=60, check=False)
    assert "failed" in listed.stdout


def test_a_corrupt_row_stops_the_headless_console_with_exit_1(isolated_environment):
    bad = corrupt_copy(isolated_environment)
    cfg = isolated_environment / "bad.toml"
    cfg.write_text(f'[replay]\nfile = "{bad}"\nspeed = 0\n')
    proc = subprocess.run(command() + ["--config", str(cfg), "--no-ui", "--duration", "60"], capture_output=True,
                          text=True, env=env_for(isolated_environment), cwd=isolated_environment / "cwd", timeout=60,
                          check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and f"{bad.name}:{BAD_LINE}" in proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    failed = [e for e in events if e["type"] == "feed_state" and e["state"] == "failed"]
    assert failed and f":{BAD_LINE}:" in failed[0]["detail"]
    assert events[-1]["type"] == "core_state" and events[-1]["state"] == "stopped"


def test_stop_from_a_second_process_acts_within_a_second_and_health_sees_the_session(isolated_environment):
    env = env_for(isolated_environment)
    cwd = isolated_environment / "cwd"
    db = db_of(isolated_environment)
    runner = subprocess.Popen(command() + ["sessions", "create", "--name", "slow", "--speed", "30"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        sid = None
        deadline = time.monotonic() + 60
        while sid is None:  # running (its owner pid written) - bounded
            assert time.monotonic() < deadline and runner.poll() is None, "the session never started"
            time.sleep(0.05)
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=1) as con:
                        row = con.execute("SELECT id FROM sessions WHERE status = 'running'"
                                          " AND owner_pid IS NOT NULL").fetchone()
                except sqlite3.Error:
                    continue
                sid = row[0] if row else None
        health = subprocess.run(command() + ["sessions", "health"], capture_output=True, text=True, env=env, cwd=cwd,
                                timeout=60, check=False)
        report = json.loads(health.stdout)
        assert report["running"] == 1 and report["sessions"][sid]["pid"] == runner.pid
        stop = subprocess.Popen(command() + ["sessions", "stop", sid], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, cwd=cwd)
        asked = stopped = None
        deadline = time.monotonic() + 30
        while stopped is None:  # the store's status: when the stop was asked, when it took effect
            assert time.monotonic() < deadline, "the session never stopped"
            try:
                with sqlite3.connect(db, timeout=1) as con:
                    status = con.execute("SELECT status FROM sessions WHERE id = ?", (sid,)).fetchone()[0]
            except sqlite3.Error:
                continue
            now = time.monotonic()
            if status == "stopping" and asked is None:
                asked = now
            if status == "stopped":
                stopped = now
            time.sleep(0.01)
        out, _ = stop.communicate(timeout=30)
        runner.communicate(timeout=30)
        assert asked is not None and stopped - asked < 1.0, f"stopped {stopped - asked:.2f} s after it was asked"
        assert f"session {sid}: stopped" in out and runner.returncode == 0
    finally:
        for p in (runner,):
            if p.poll() is None:
                p.kill()


def test_a_live_feed_session_says_what_its_feed_does(isolated_environment):
    """Issue 23: `--live-feed` with no network printed 'created', then 'stopped ... 0 trades' - no feed state, no
    error. Its feed's state now reaches the terminal a line at a time, and `list` names the source."""
    import signal

    cfg_dir = isolated_environment / "cfg" / "tui-trader"
    cfg_dir.mkdir(parents=True)
    (cfg_dir / "config.toml").write_text('[mexc]\nws_url = "ws://127.0.0.1:9/edge"\nrest_base = "http://127.0.0.1:9"\n'
                                         "ws_reconnect_initial_s = 0.05\nws_reconnect_max_s = 0.2\n")
    env, cwd = env_for(isolated_environment), isolated_environment / "cwd"
    proc = subprocess.Popen(command() + ["sessions", "create", "--name", "lf", "--live-feed", "--symbol", "BTC_USDT"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        import queue
        import threading

        got: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [got.put(line) for line in proc.stderr], daemon=True).start()
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while not any("feed mexc: reconnecting - connection failed" in line for line in lines):
            remaining = deadline - time.monotonic()
            assert remaining > 0, "\n".join(lines)
            try:
                lines.append(got.get(timeout=remaining))
            except queue.Empty:
                raise AssertionError("no feed state within 30 s:\n" + "".join(lines)) from None
        listed = subprocess.run(command() + ["sessions", "list"], capture_output=True, text=True,
                                env=env | {"COLUMNS": "200"}, cwd=cwd, timeout=60, check=False)
        assert "MEXC live feed: BTC_USDT" in listed.stdout
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
