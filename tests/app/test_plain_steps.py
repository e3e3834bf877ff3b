"""Live and paper trading step plainly (issue 22 item 2): the quiet-step accelerator is a
backtest's alone. Every wiring outside `backtest/` leaves the runner's `step_gate` and the feed's
`tick_filter` None, no module outside `backtest/` sets them or reads a bound, and a plain runner
steps a quiet market every simulated second."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

from tests.backtest.conftest import paper_settings
from tui_trader.app.session_runtime import SessionRuntime
from tui_trader.app.sessions import SessionRequest
from tui_trader.app.wiring import build_core
from tui_trader.backtest import quiet_steps
from tui_trader.backtest.runner import run_backtest
from tui_trader.domain.config import Settings, StoreConfig, StrategyConfig
from tui_trader.domain.events import BookTick, TradeTick
from tui_trader.domain.strategy.machine import StrategyMachine
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import SimClock, WallClock
from tui_trader.engine.strategy_runner import load_strategy
from tui_trader.engine.trading import build_trading_stack
from tui_trader.store.db import Database
from tui_trader.store.memory import MemoryStore
from tui_trader.venues.paper.venue import PaperVenue
from tui_trader.venues.replay import bundled_data_path

PKG = Path(__file__).resolve().parents[2] / "tui_trader"
SLICE = Path(__file__).resolve().parents[1] / "data" / "freqtrade_UNITTEST-BTC_1m_20171104-20171114.csv.gz"
# what the accelerator reads to prove a step a no-op: no module of live or paper trading touches it
BOUNDS_API = {"quiet_until", "bounds", "begin_bounds", "note_blocker", "trade_band", "step_changes_nothing",
              "entry_blocked_until", "section_may_fire", "QuietDeps",
              "QuietStepAccelerator", "QuietSteps", "QuietTicks"}
ACCELERATOR = ("tui_trader.backtest.quiet_steps", "tui_trader.backtest.quiet_ticks")
HOOKS = ("step_gate", "tick_filter")


def test_the_console_and_the_sessions_attach_no_accelerator(tmp_path, monkeypatch):
    attached = []
    attach = quiet_steps.QuietStepAccelerator.attach
    monkeypatch.setattr(quiet_steps.QuietStepAccelerator, "attach", lambda self: attached.append(self) or attach(self))

    paper = build_core(paper_settings(tmp_path, bundled_data_path()))  # the console, paper mode
    assert paper.components["stack"].runner.step_gate is None and paper.components["feed"].tick_filter is None

    live = build_core(Settings(mode="live", data_dir=tmp_path, store=StoreConfig(path=tmp_path / "live.sqlite"),
                               strategy=StrategyConfig(enabled=True, symbols=["BTC_USDT"])))  # (nothing connects yet)
    assert live.components["stack"].runner.step_gate is None
    assert getattr(live.components["feed"], "tick_filter", None) is None

    db = Database(tmp_path / "sessions.sqlite")  # (opened on first use: never here)
    for request in (SessionRequest(name="replayed"), SessionRequest(name="live", source="mexc", symbols=["BTC_USDT"])):
        session = SessionRuntime("s1", request.model_dump(mode="json"), Settings(), db, WallClock())
        assert session.stack.runner is not None and session.stack.runner.step_gate is None
        assert getattr(session.feed, "tick_filter", None) is None
    assert attached == []

    run_backtest(None, [SLICE], date_to_ms=1_510_300_000_000, fast_path=False)
    assert attached == []
    run_backtest(None, [SLICE], date_to_ms=1_510_300_000_000)  # a backtest, and only a backtest, attaches it
    assert len(attached) == 1


def test_no_module_outside_the_backtest_sets_the_hooks_or_reads_a_bound():
    """Static: outside `backtest/` the hooks are only ever set to None (the runner's and the feed's
    constructors), and no module of the live engine, the venues, the store or the app names any
    of the bounds API the accelerator uses (the domain defines it)."""
    hooks, names = [], []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith(("backtest/", "domain/")):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                set_to_none = isinstance(node.value, ast.Constant) and node.value.value is None
                hooks += [f"{rel}:{node.lineno}" for target in targets
                          if isinstance(target, ast.Attribute) and target.attr in HOOKS and not set_to_none]
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in BOUNDS_API:
                names.append(f"{rel}:{node.lineno} {name}")
            if isinstance(node, ast.ImportFrom) and node.module in ACCELERATOR:
                names.append(f"{rel}:{node.lineno} imports {node.module}")
    assert hooks == [] and names == []


async def test_a_plain_runner_steps_a_quiet_market_every_second(monkeypatch):
    """The runner every trading stack gets (`build_trading_stack`, as the console and the sessions
    build it), on a flat market: one step per market event, then one per simulated second - N in N
    seconds - while the backtest's accelerator leaves almost all of them out."""
    times: list[int] = []
    on_tick = StrategyMachine.on_tick
    monkeypatch.setattr(StrategyMachine, "on_tick",
                        lambda self, now, *a, **k: times.append(now) or on_tick(self, now, *a, **k))
    n, steps = 600, []
    for accelerated in (False, True):
        bus, clock = EventBus(), SimClock(1_700_000_000_000)
        settings = Settings()
        venue = PaperVenue(bus, paper=settings.paper, fees=settings.fees, starting_balance=Decimal(10_000))
        stack = build_trading_stack(settings, bus, clock, venue, MemoryStore(), MemoryStore(), strategy=load_strategy(),
                                    symbols=["ABC_USDT"])
        runner = stack.runner
        assert runner is not None and runner.step_gate is None
        if accelerated:
            quiet_steps.QuietStepAccelerator(runner).attach()
        await runner.start()
        t0 = clock.now_ms()
        bus.publish(TradeTick(t0, "ABC_USDT", 100.0, 1.0))
        bus.publish(BookTick(t0, "ABC_USDT", 99.9, 100.1))
        times.clear()
        clock.advance(n)
        steps.append(list(times))
        await runner.shutdown()
    plain, accelerated_steps = steps
    assert plain == [1_700_000_000_000 + 1000 * k for k in range(1, n + 1)]  # every second, none left out
    assert len(accelerated_steps) < n / 10
