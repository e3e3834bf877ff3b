"""App layer: headless event output that never blocks the event loop.

Writing JSON lines to stdout from the loop blocked it whenever the reader stalled (issue 20: a
reader that stopped for 12 s froze a 3 s run, watchdog included, for 16 s). Lines now go to a
daemon thread that writes them with `os.write` on the file descriptor; the loop only appends to a
queue. When the reader falls more than `max_pending_bytes` behind, new lines are dropped and counted
(`dropped`; the caller reports them as `EventsDropped`) instead of growing without bound. The thread
uses no Python file object, so a reader that never comes back cannot hold a buffer lock at exit.
Objects without a file descriptor (tests' StringIO) are written directly: they cannot block.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import TextIO

MAX_PENDING_BYTES = 16 * 1024 * 1024


class StdoutWriter:
    def __init__(self, out: TextIO, max_pending_bytes: int = MAX_PENDING_BYTES) -> None:
        self.out, self.max_pending_bytes = out, max_pending_bytes
        self.dropped = 0  # lines not written because the reader was too far behind
        self.broken = False  # the reader went away (EPIPE)
        self._pending = 0
        self._lock = threading.Lock()
        try:
            out.flush()
            self._fd: int | None = out.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        if self._fd is not None:
            self._thread = threading.Thread(target=self._drain, name="headless-stdout", daemon=True)
            self._thread.start()

    def write(self, text: str, lines: int) -> None:
        """Queue `lines` lines of text (never blocks); drops them when the reader is too far behind."""
        if self.broken:
            return
        if self._fd is None:
            self.out.write(text)
            self.out.flush()
            return
        data = text.encode()
        with self._lock:
            if self._pending + len(data) > self.max_pending_bytes:
                self.dropped += lines
                return
            self._pending += len(data)
        self._queue.put(data)

    def _drain(self) -> None:
        assert self._fd is not None
        while True:
            data = self._queue.get()
            if data is None:
                return
            size = len(data)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
            except OSError:  # EPIPE and the like: the reader is gone
                self.broken = True
            finally:
                with self._lock:
                    self._pending -= size

    def close(self, timeout_s: float = 2.0) -> None:
        """Let the thread finish what is queued, for at most `timeout_s` (a stalled reader is left behind)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
