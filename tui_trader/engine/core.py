"""Engine layer: `TraderCore` owns and supervises every long-running task of the console.

Start: each registered service's `run()` becomes a named task. A task that raises is logged and
published as `TaskFailed`; a `restart=True` service is restarted with back-off, a `critical` one
stops the whole core with exit code 1 (never a half-alive app that silently stopped watching
positions). Stop is orderly and bounded: stop hooks first (block entries), then each service's
`shutdown()` in reverse registration order (feeds stop producing, closes and reports finish), then
cancellation of whatever still runs, every task awaited - and only then the `last` services (the
store): nothing can write to a closed database, and the final flush holds every row.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Coroutine, Protocol, runtime_checkable

from tui_trader.domain.errors import TraderError
from tui_trader.domain.events import CoreStateChanged, TaskFailed
from tui_trader.engine.bus import EventBus
from tui_trader.engine.clock import Clock

log = logging.getLogger(__name__)


@runtime_checkable
class Service(Protocol):
    name: str

    async def run(self) -> None: ...


@dataclass
class _Spec:
    service: Service
    critical: bool
    restart: bool
    max_restarts: int
    last: bool = False
    task: asyncio.Task[None] | None = None


class TraderCore:
    """Supervisor of the console's tasks; `async with core:` starts them and stops them in order."""

    def __init__(self, bus: EventBus, clock: Clock, *, mode: str = "paper", stop_timeout_s: float = 1.5,
                 last_stop_timeout_s: float = 15.0) -> None:
        self.bus = bus
        self.clock = clock
        self.mode = mode
        self.stop_timeout_s = stop_timeout_s
        self.last_stop_timeout_s = last_stop_timeout_s  # the store's final flush: rows are not dropped for speed
        self.components: dict[str, Any] = {}  # named parts for the app (store, venue, watchdog...)
        self._specs: list[_Spec] = []
        self._stop_hooks: list[Callable[[], Awaitable[None] | None]] = []
        self._spawned: set[asyncio.Task[Any]] = set()
        self._stop_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        self._state = "new"
        self.exit_code = 0

    # --- set-up ---------------------------------------------------------------------------

    def add(self, service: Service, *, critical: bool = False, restart: bool = False, max_restarts: int = 5,
            last: bool = False) -> None:
        """`last`: shut down only after every other task has ended (the store)."""
        if self._state != "new":
            raise RuntimeError("services must be added before start()")
        self._specs.append(_Spec(service, critical, restart, max_restarts, last))

    def on_stop(self, hook: Callable[[], Awaitable[None] | None]) -> None:
        """Run `hook` first thing when stopping (e.g. block new entries)."""
        self._stop_hooks.append(hook)

    @property
    def state(self) -> str:
        return self._state

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        return [s.task for s in self._specs if s.task is not None] + list(self._spawned)

    # --- life -----------------------------------------------------------------------------

    def _publish_state(self, state: str) -> None:
        self._state = state
        self.bus.publish(CoreStateChanged(self.clock.now_ms(), state=state, mode=self.mode))

    async def start(self) -> None:
        """Start services in registration order. A service with an async `start()` is awaited first,
        so e.g. the strategy has restored its state and subscribed before the feed sends a tick."""
        self._publish_state("starting")
        try:
            for spec in self._specs:
                starter = getattr(spec.service, "start", None)
                if starter is not None:
                    await starter()
                spec.task = asyncio.create_task(self._supervise(spec), name=f"core:{spec.service.name}")
        except BaseException:
            await self.stop()  # what started is stopped in order (the store closed: no thread keeps us alive)
            raise
        self._publish_state("running")

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run a one-off coroutine under supervision: kept referenced, its error reported, cancelled at stop."""
        task = asyncio.create_task(coro, name=f"core:{name}")
        self._spawned.add(task)
        task.add_done_callback(self._spawned_done)
        return task

    def _spawned_done(self, task: asyncio.Task[Any]) -> None:
        self._spawned.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task %s failed: %r", task.get_name(), exc, exc_info=exc)
            self.bus.publish(TaskFailed(self.clock.now_ms(), task=task.get_name(), error=_describe(exc), action="gave up"))

    async def _supervise(self, spec: _Spec) -> None:
        name = spec.service.name
        restarts = 0
        while True:
            try:
                await spec.service.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # task boundary: report, then restart / stop / give up
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # stopping: an error on the way out ends it
                    log.warning("service %s raised while being cancelled: %r", name, exc, exc_info=exc)
                    raise asyncio.CancelledError from exc
                # bad input (a corrupt row, a bad reply) says what is wrong; a traceback only for bugs
                log.error("service %s crashed: %r", name, exc, exc_info=None if isinstance(exc, TraderError) else exc)
                if spec.restart and restarts < spec.max_restarts:
                    action = "restarting"
                elif spec.critical:
                    action = "stopping core"
                else:
                    action = "gave up"
                self.bus.publish(TaskFailed(self.clock.now_ms(), task=name, error=_describe(exc), critical=spec.critical, action=action))
                if action == "restarting":
                    restarts += 1
                    await self.clock.sleep(min(0.1 * 2**restarts, 5.0))
                    continue
                if spec.critical:
                    self.request_stop(exit_code=1)
                return

    def request_stop(self, exit_code: int = 0) -> None:
        """Ask the core to stop (safe from signal handlers and callbacks)."""
        if exit_code and not self.exit_code:
            self.exit_code = exit_code
        self._stop_requested.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    async def wait_stop_requested(self) -> None:
        await self._stop_requested.wait()

    async def stop(self) -> None:
        """Orderly stop, bounded by `stop_timeout_s` per phase. Idempotent."""
        if self._state in ("stopping", "stopped"):
            await self._stopped.wait()
            return
        self._stop_requested.set()
        self._publish_state("stopping")
        for hook in self._stop_hooks:
            await self._bounded(hook(), "stop hook")
        lasts = [spec for spec in self._specs if spec.last]
        for spec in reversed([spec for spec in self._specs if not spec.last]):
            shutdown = getattr(spec.service, "shutdown", None)
            if shutdown is not None:
                await self._bounded(shutdown(), f"{spec.service.name}.shutdown")
        await _cancel([t for t in self.tasks if t not in {spec.task for spec in lasts}])
        for spec in reversed(lasts):
            shutdown = getattr(spec.service, "shutdown", None)
            if shutdown is not None:
                await self._bounded(shutdown(), f"{spec.service.name}.shutdown", self.last_stop_timeout_s)
        await _cancel(self.tasks)
        self._publish_state("stopped")
        self.bus.close()
        self._stopped.set()

    async def _bounded(self, result: Awaitable[None] | None, what: str, timeout_s: float | None = None) -> None:
        if result is None:
            return
        timeout_s = self.stop_timeout_s if timeout_s is None else timeout_s
        try:  # (asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancellation)
            async with asyncio.timeout(timeout_s):
                await result  # type: ignore[misc]
        except TimeoutError:
            log.warning("%s did not finish within %.1fs", what, timeout_s)
        except Exception as exc:
            log.error("%s failed: %r", what, exc, exc_info=exc)

    async def __aenter__(self) -> "TraderCore":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel what still runs and await all of it (none is left pending)."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
