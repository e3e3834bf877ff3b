"""Headless mode as a real process: JSON lines on stdout, --duration, SIGTERM/SIGINT stop in < 2 s with 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import favour


def command() -> list[str]:
    script = Path(sys.executable).parent / "tui-trader"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tui_trader"]


def env_for(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(tmp / "cfg"), XDG_DATA_HOME=str(tmp / "data"))
    env.pop("TUI_TRADER_MEXC_API_KEY", None)
    env.pop("TUI_TRADER_MEXC_API_SECRET", None)
    return env


def parse_lines(out: str) -> list[dict]:
    events = [json.loads(line) for line in out.splitlines()]
    for e in events:
        assert isinstance(e["type"], str) and isinstance(e["ts_ms"], int)
    return events


def test_duration_replays_bundled_data_and_exits_zero(isolated_environment):
    proc = subprocess.run(command() + ["--no-ui", "--duration", "5"], capture_output=True, text=True, timeout=60,
                          env=env_for(isolated_environment), cwd=isolated_environment / "cwd", check=False)
    assert proc.returncode == 0, proc.stderr
    events = parse_lines(proc.stdout)
    types = [e["type"] for e in events]
    assert types[0] == "core_state" and events[-1] == {**events[-1], "type": "core_state", "state": "stopped"}
    assert any(e["type"] == "feed_state" and e["state"] == "replaying" for e in events)
    trades = [e for e in events if e["type"] == "trade"]
    assert len(trades) >= 10 and trades[0]["symbol"] == "NXT_BTC"
    assert "candle" in types and "mark_price" in types
    db = isolated_environment / "data" / "tui-trader" / "tui-trader.sqlite"
    assert db.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_within_two_seconds(isolated_environment, sig):
    proc = subprocess.Popen(command() + ["--no-ui"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env_for(isolated_environment), cwd=isolated_environment / "cwd")
    favour(proc.pid)
    try:
        first = proc.stdout.readline()  # wait until the core is up and writing
        assert json.loads(first)["type"] == "core_state"
        for _ in range(20):
            line = proc.stdout.readline()
            if '"trade"' in line:
                break
        started = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert elapsed < 2.0
    assert "Traceback" not in err
    last = json.loads(out.splitlines()[-1])
    assert last["type"] == "core_state" and last["state"] == "stopped"


@pytest.mark.slow
def test_full_speed_replay_exits_zero_every_time(isolated_environment):
    """Issue 20: at `replay.speed = 0` the store closed while execution and the state writers still
    wrote ("Cannot operate on a closed database"): exit 1 in 3 of 3 runs. The store now closes after
    every other task has ended."""
    cfg = isolated_environment / "fast.toml"
    cfg.write_text("[replay]\nspeed = 0.0\n")
    # five independent processes (each its own data dir and database) started together, each pipe read as it is
    # written (one thread a process, as communicate() did for one): a run is 3 s of wall time, five take ~one's
    procs = [subprocess.Popen(command() + ["--config", str(cfg), "--no-ui", "--duration", "3"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env_for(isolated_environment / f"run{run}"),
                              cwd=isolated_environment / "cwd") for run in range(5)]
    try:
        with ThreadPoolExecutor(len(procs)) as pool:
            outputs = list(pool.map(lambda proc: proc.communicate(timeout=90), procs))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for run, (proc, (out, err)) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, f"run {run}: {err[-2000:]}"
        assert "closed database" not in err and "crashed" not in err, err[-2000:]
        assert "Traceback" not in err, err[-2000:]  # (CI once: exit 0 after a transaction left open)
        assert parse_lines(out)[-1]["state"] == "stopped"


def test_a_stdout_reader_that_never_reads_does_not_hold_the_run_up(isolated_environment):
    """Issue 20: events were written to stdout on the event loop; a reader that stalled for 12 s froze a
    3 s run (watchdog included) for 16 s. Here nobody reads the pipe until the process has exited."""
    cfg = isolated_environment / "fast.toml"
    cfg.write_text("[replay]\nspeed = 0.0\n")  # thousands of events: far more than a pipe holds
    err = (isolated_environment / "stderr.txt").open("w")
    t0 = time.monotonic()
    proc = subprocess.Popen(command() + ["--config", str(cfg), "--no-ui", "--duration", "3"], stdout=subprocess.PIPE,
                            stderr=err, env=env_for(isolated_environment), cwd=isolated_environment / "cwd")
    try:
        rc = proc.wait(timeout=30)  # stdout is not read meanwhile
    finally:
        proc.kill() if proc.poll() is None else None
        err.close()
    seconds = time.monotonic() - t0
    assert rc == 0, (isolated_environment / "stderr.txt").read_text()[-2000:]
    assert seconds < 15  # the 3 s run ended on time; the unread lines were left behind
    head = proc.stdout.read(65536) if proc.stdout else b""
    proc.stdout.close() if proc.stdout else None
    assert head.startswith(b'{"type":"core_state"')


def test_data_strategy_and_speed_flags_replace_the_config(isolated_environment):
    """Issue 23: replaying another file needed a TOML; now --data / --strategy / --speed do it, and a file that is
    not there is exit 2 naming the flag."""
    data = Path(__file__).resolve().parents[1] / "data" / "bittrex_BCC-BTC_1m_20171104-20171118.csv.gz"
    strategy = isolated_environment / "mine.toml"
    strategy.write_text((Path(__file__).resolve().parents[2] / "tui_trader" / "data" / "pump_short.toml").read_text()
                        .replace('strategy_name = "pump_short"', 'strategy_name = "mine"'))
    env, cwd = env_for(isolated_environment), isolated_environment / "cwd"
    proc = subprocess.run(command() + ["--data", str(data), "--strategy", str(strategy), "--speed", "0", "--no-ui",
                                       "--duration", "2"], capture_output=True, text=True, timeout=60, env=env, cwd=cwd,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    events = parse_lines(proc.stdout)
    [replaying] = [e for e in events if e["type"] == "feed_state" and e["state"] == "replaying"]
    assert data.name in replaying["detail"] and "full speed" in replaying["detail"]
    assert any(e["type"] == "strategy_state" and e["strategy"] == "mine" for e in events)
    missing = subprocess.run(command() + ["--data", str(cwd / "nope.csv"), "--no-ui"], capture_output=True, text=True,
                             timeout=60, env=env, cwd=cwd, check=False)
    assert missing.returncode == 2 and "--data" in missing.stderr and "not found" in missing.stderr
    assert "Traceback" not in missing.stderr
