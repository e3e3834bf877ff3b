"""The headless writer: never blocks the caller; drops and counts once the reader is too far behind."""

from __future__ import annotations

import io
import os
import time

from tui_trader.app.stdout_writer import StdoutWriter


def test_writes_never_block_and_overflow_is_counted():
    r, w = os.pipe()
    out = os.fdopen(w, "w")
    writer = StdoutWriter(out, max_pending_bytes=256 * 1024)
    line = "x" * 1023 + "\n"
    t0 = time.monotonic()
    for _ in range(2000):  # 2 MB into a pipe nobody reads (it holds ~64 KB)
        writer.write(line, 1)
    assert time.monotonic() - t0 < 1.0  # the caller was never held up
    assert writer.dropped >= 2000 - (256 + 128)  # what did not fit was dropped, and counted
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < 64 * 1024 and time.monotonic() < deadline:  # the reader comes back: lines flow again
        got += os.read(r, 65536)
    assert got.startswith(b"x" * 1023 + b"\n")
    writer.close(timeout_s=0.5)
    out.close()
    os.close(r)


def test_a_plain_text_object_is_written_directly():
    buf = io.StringIO()
    writer = StdoutWriter(buf)
    writer.write("a\nb\n", 2)
    assert buf.getvalue() == "a\nb\n" and writer.dropped == 0
