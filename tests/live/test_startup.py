"""Live start-up checks as a user meets them: the real `tui-trader --live --no-ui` process against the
fake MEXC on 127.0.0.1 (issue 20). Before: a wrong key ran on failing every 2 s, an unknown symbol gave
only a subscription error, an unreachable host printed a traceback and hung."""

from __future__ import annotations

import asyncio
import json
import socket
import time

from tests.app.test_headless import command, env_for
from tests.live.filling_fake import SHORT as SHORT_SIDE
from tests.venues.mexc.fake_exchange import API_KEY, SECRET

HIDDEN = (API_KEY, SECRET, "WRONG-KEY-do-not-print", "WRONG-SECRET-do-not-print")


def live_config(tmp_path, rest_base: str, ws_url: str, symbols=("BTC_USDT", "ETH_USDT")):
    cfg = tmp_path / "live.toml"
    cfg.write_text(f'mode = "live"\n[mexc]\nrest_base = "{rest_base}"\nws_url = "{ws_url}"\n'
                   f'request_timeout_s = 2.0\nconnect_timeout_s = 1.0\n'
                   f'[strategy]\nsymbols = {json.dumps(list(symbols))}\nenabled = false\n')
    return cfg


async def run_live(tmp_path, cfg, *, key=API_KEY, secret=SECRET, duration="3", timeout=60.0):
    env = env_for(tmp_path)
    env.update(TUI_TRADER_MEXC_API_KEY=key, TUI_TRADER_MEXC_API_SECRET=secret)
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *command(), "--config", str(cfg), "--no-ui", "--live", "--yes-live", "--duration", duration,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path / "cwd")
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode(), time.monotonic() - t0


def checks(out: str) -> list[dict]:
    return [e for e in map(json.loads, out.splitlines()) if e["type"] == "startup_check"]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in HIDDEN:
            assert secret not in text


async def test_a_wrong_key_exits_2_naming_the_key_variable(fake, tmp_path):
    cfg = live_config(tmp_path, fake.url, fake.ws_url)
    rc, out, err, _ = await run_live(tmp_path, cfg, key="WRONG-KEY-do-not-print", secret="WRONG-SECRET-do-not-print")
    assert rc == 2, err[-2000:]
    assert "TUI_TRADER_MEXC_API_KEY" in err and "refused the API key" in err
    assert "Traceback" not in err
    assert [c["status"] for c in checks(out) if c["check"] == "keys"] == ["failed"]
    assert_no_secret(out, err)


async def test_an_unknown_symbol_exits_2_naming_it(fake, tmp_path):
    cfg = live_config(tmp_path, fake.url, fake.ws_url, symbols=("BTC_USDT", "NOPE_USDT"))
    rc, _out, err, _ = await run_live(tmp_path, cfg)
    assert rc == 2, err[-2000:]
    assert "NOPE_USDT" in err and "not a MEXC futures contract" in err and "Traceback" not in err


async def test_an_unreachable_exchange_exits_1_within_30_s(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = live_config(tmp_path, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/edge")
    rc, _out, err, seconds = await run_live(tmp_path, cfg, timeout=45.0)
    assert rc == 1, err[-2000:]
    assert seconds < 30 and "unreachable" in err and "Traceback" not in err


async def test_api_not_allowed_on_one_symbol_makes_it_monitor_only_and_the_other_trades(fake, tmp_path):
    fake.contracts["ETH_USDT"]["apiAllowed"] = False
    cfg = live_config(tmp_path, fake.url, fake.ws_url)
    rc, out, err, _ = await run_live(tmp_path, cfg)
    assert rc == 0, err[-2000:]
    orders = {c["detail"].split(":")[0]: c["status"] for c in checks(out) if c["check"] == "orders"}
    assert orders == {"BTC_USDT": "ok", "ETH_USDT": "monitor-only"}
    assert [c["check"] for c in checks(out) if c["status"] == "ok"][:3] == ["clock", "keys", "balance"]
    assert_no_secret(out, err)


async def test_no_key_or_secret_in_any_log_file_the_database_or_the_events_of_a_faulty_run(fake, tmp_path):
    """Issue 20: a live run with faults (5xx, HTML pages, a 602 refusal, a 1002 symbol) leaves the key
    and the secret nowhere: stdout (every event), stderr (every log line), and every file it wrote."""
    from tests.venues.mexc.fake_exchange import Fault

    fake.contracts["ETH_USDT"]["apiAllowed"] = False
    fake.not_allowed.add("ETH_USDT")
    for route in ("positions", "open_orders", "assets"):
        fake.faults[route].extend([Fault("http500"), Fault("html")])
    fake.faults["open_orders"].append(Fault("code", code=602))  # a signature refusal after start
    fake.open_position("BTC_USDT", SHORT_SIDE, 10, 60000.0, leverage=3)
    cfg = live_config(tmp_path, fake.url, fake.ws_url)
    rc, out, err, _ = await run_live(tmp_path, cfg, duration="4")
    assert rc == 0, err[-2000:]
    assert any(json.loads(line)["type"] == "position" for line in out.splitlines())  # it did run and watch
    assert_no_secret(out, err)
    written = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in written)
    for path in written:
        data = path.read_bytes()
        for secret in (API_KEY, SECRET):
            assert secret.encode() not in data, f"{secret[:4]}... found in {path.name}"


async def test_chosen_monitor_only_watches_every_position_of_the_account_and_opens_none(fake, tmp_path):
    """`--live --monitor-only`: the bundled strategy is not run, every exchange position is adopted and
    watched (ETH too, though only BTC is configured), and no order is sent."""
    fake.open_position("BTC_USDT", SHORT_SIDE, 10, 60000.0, leverage=3)
    fake.open_position("ETH_USDT", SHORT_SIDE, 5, 3000.0, leverage=5)
    cfg = live_config(tmp_path, fake.url, fake.ws_url, symbols=("BTC_USDT",))
    cfg.write_text(cfg.read_text().replace("enabled = false", "enabled = true"))  # the strategy would run
    env = env_for(tmp_path)
    env.update(TUI_TRADER_MEXC_API_KEY=API_KEY, TUI_TRADER_MEXC_API_SECRET=SECRET)
    proc = await asyncio.create_subprocess_exec(
        *command(), "--config", str(cfg), "--no-ui", "--live", "--monitor-only", "--duration", "4",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path / "cwd")
    out_b, err_b = await asyncio.wait_for(proc.communicate(), 60)
    out, err = out_b.decode(), err_b.decode()
    assert proc.returncode == 0, err[-2000:]
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e["type"] == "core_state" and e["mode"] == "live monitor-only" for e in events)
    assert any(c["check"] == "mode" and c["status"] == "monitor-only" for c in checks(out))
    watched = {e["position"]["symbol"] for e in events if e["type"] == "position" and e["position"]["contracts"] != "0"}
    assert watched == {"BTC_USDT", "ETH_USDT"}
    assert not any(e["type"] == "strategy_state" for e in events)  # no strategy machine at all
    assert [o for o in fake.orders if o["externalOid"]] == []  # and nothing was sent (the two are the site's)
