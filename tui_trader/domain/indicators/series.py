"""Domain layer: time-indexed event logs with prefix sums and monotone edge cursors.

Every time-windowed indicator reduces to "sum of something between two instants that slide with
`now`". `EventLog` keeps the events of one input (trade prices or trade volumes) with a running
prefix sum, and one cursor per window edge (`now - offset`). A cursor is the index of the last
event at or before its edge; as `now` only moves forward, a cursor only moves forward, so the
total work of all cursor moves is bounded by the number of events: O(1) amortised per update (a
cursor that must jump far - reads were skipped for a while - finds its place by binary search).

Events older than every cursor are dropped; the list is compacted (and the prefix sums rebased)
once the dropped head is longer than the live tail, so memory stays bounded by the longest window.

Prefix sums are exact: each value is held as an integer in units of 2^-128 (a float times a power
of two is exact; prices down to ~1e-23 keep every bit), so sums, differences and rebasing never
round. A window's sum is therefore an exact function of the events inside it - not of how long
the log has run, when it was compacted, or how often it was read - and is rounded once, when a
reader divides it by `SCALE`. Skipping reads (the strategy runner's quiet steps) cannot change a
later value by even one bit.

Two kinds share the machinery:
* `STEP` - the value holds until the next event (last-trade price). `integral(edge)` is the
  integral of the step function from the first retained event up to the edge, in value x ms.
* `POINT` - each event is a mass at its instant (traded volume). `cumulative(edge)` is the sum of
  every event with `t <= edge` (windows are therefore half-open `(start, end]`).
"""

from __future__ import annotations

from bisect import bisect_right
from enum import Enum
from itertools import accumulate
from operator import mul, sub


class Kind(Enum):
    STEP = "step"
    POINT = "point"


_COMPACT_MIN = 64
SCALE = 1 << 128  # prefix sums are integers in units of 1 / SCALE
_SCALE_F = float(SCALE)


class EventLog:
    """Events `(t_ms, x)` of one input in time order, with cursors for registered edge offsets."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self._t: list[int] = []
        self._x: list[float] = []
        self._xi: list[int] = []  # x[i] x SCALE, exact
        self._c: list[int] = []  # x SCALE, exact - STEP: integral t[0]..t[i]; POINT: sum of x[0..i-1]
        self._head = 0  # physical index of the first live event
        self._offsets: list[int] = []  # edge offsets in ms (edge = now - offset)
        self._cursor: list[int] = []  # physical index of the last event <= edge, -1 if none
        self._now: int | None = None
        self._wake = -1  # earliest `now` at which some cursor moves (advance is O(1) before it)
        self._min_offset = 0
        self.first_ms: int | None = None  # time of the first event ever seen
        self.version = 0  # changes whenever an event is added or a cursor may have moved: reads cached by it stay exact

    def __setstate__(self, state: dict) -> None:
        """Checkpoints written before the sums were exact hold float sums and no `_xi`: rebuild the
        exact ones from the retained events (values then match a log that never stopped)."""
        self.__dict__.update(state)
        self.__dict__.setdefault("version", 0)
        if "_xi" in state:
            return
        self._xi = [int(x * _SCALE_F) for x in self._x]
        c: list[int] = [0] if self._t else []
        for i in range(1, len(self._t)):
            prev = self._xi[i - 1]
            c.append(c[-1] + (prev * (self._t[i] - self._t[i - 1]) if self.kind is Kind.STEP else prev))
        self._c = c

    def edge(self, offset_ms: int) -> int:
        """Register (or reuse) a cursor for the edge `now - offset_ms`; returns its id."""
        if offset_ms in self._offsets:
            return self._offsets.index(offset_ms)
        self._offsets.append(offset_ms)
        self._cursor.append(-1 if self._now is None else self._seek(self._now - offset_ms))
        self._min_offset = min(self._offsets)
        self._wake = -1
        return len(self._offsets) - 1

    def add(self, t_ms: int, x: float) -> None:
        """Append an event. Out-of-order events are clamped to the last event's time. A value that
        is not finite or too large for the exact sums raises before anything is changed."""
        xi = int(x * _SCALE_F)  # OverflowError / ValueError for inf, nan and |x| > ~1e269
        if self._t and t_ms < self._t[-1]:
            t_ms = self._t[-1]
        if self.first_ms is None:
            self.first_ms = t_ms
        if not self._t:
            self._c.append(0)
        elif self.kind is Kind.STEP:
            self._c.append(self._c[-1] + self._xi[-1] * (t_ms - self._t[-1]))
        else:
            self._c.append(self._c[-1] + self._xi[-1])
        self._t.append(t_ms)
        self._x.append(x)
        self._xi.append(xi)
        self.version += 1
        if t_ms + self._min_offset < self._wake:
            self._wake = t_ms + self._min_offset  # a cursor at the previous last event may reach it then

    def extend(self, times: list[int], xs: list[float]) -> None:
        """Append many events at once, exactly as `add` one by one would (the same sums, bit for
        bit), with the per-event work in C-level loops. Times out of order (among themselves or
        before the last event) go through `add`, which clamps. Raises before changing anything."""
        if not times:
            return
        scale = _SCALE_F
        xis = [int(x * scale) for x in xs]  # raises for inf / nan / huge before any change
        t = self._t
        if (t and times[0] < t[-1]) or times != sorted(times):
            for ts, x in zip(times, xs):
                self.add(ts, x)  # (every value is sane: none of these raises)
            return
        if self.first_ms is None:
            self.first_ms = times[0]
        c = self._c
        if t:  # each new event's sum adds the previous event's contribution
            prev_t, prev_xi, new_t = [t[-1], *times[:-1]], [self._xi[-1], *xis[:-1]], times
        else:
            c.append(0)
            prev_t, prev_xi, new_t = times[:-1], xis[:-1], times[1:]
        steps = map(mul, prev_xi, map(sub, new_t, prev_t)) if self.kind is Kind.STEP else iter(prev_xi)
        acc = accumulate(steps, initial=c[-1])
        next(acc)  # the running sum it starts from is already in `c`
        c.extend(acc)
        t.extend(times)
        self._x.extend(xs)
        self._xi.extend(xis)
        self.version += 1
        if times[0] + self._min_offset < self._wake:
            self._wake = times[0] + self._min_offset

    @property
    def last(self) -> tuple[int, float] | None:
        return (self._t[-1], self._x[-1]) if self._t else None

    def advance(self, now_ms: int) -> None:
        """Move every cursor to `now_ms`, then drop events no cursor can reach any more.

        Between events most steps move no cursor: until `now` reaches the earliest time at which
        one would (`_wake`), only `now` is updated - O(1) instead of O(cursors)."""
        if self._now is not None and self._now <= now_ms < self._wake:
            self._now = now_ms
            return
        self.version += 1  # (a cursor may move, events may be dropped)
        if self._now is not None and now_ms < self._now:
            self._cursor = [self._seek(now_ms - off) for off in self._offsets]  # clock went back
        else:
            t, n, cursor = self._t, len(self._t), self._cursor
            for i, off in enumerate(self._offsets):
                edge, j = now_ms - off, cursor[i]
                if j + 1 < n and t[j + 1] <= edge:  # moves: one step, or a search after a quiet stretch
                    j = j + 1 if j + 2 >= n or t[j + 2] > edge else bisect_right(t, edge, j + 2) - 1
                    cursor[i] = j
        self._now = now_ms
        self._evict()
        self._wake = self._next_wake()

    def _next_wake(self) -> float:
        t, n, wake = self._t, len(self._t), float("inf")
        for off, j in zip(self._offsets, self._cursor):
            if j + 1 < n:
                w = t[j + 1] + off
                if w < wake:
                    wake = w
        return wake

    def _seek(self, edge: int) -> int:
        return bisect_right(self._t, edge, self._head) - 1

    def _evict(self) -> None:
        low = min(self._cursor) if self._cursor else len(self._t) - 1  # no reader: keep the last
        if low > self._head:
            self._head = low
        if self._head >= _COMPACT_MIN and self._head * 2 > len(self._t):
            h = self._head
            base = self._c[h]
            self._t = self._t[h:]
            self._x = self._x[h:]
            self._xi = self._xi[h:]
            self._c = [c - base for c in self._c[h:]]
            self._cursor = [j - h for j in self._cursor]
            self._head = 0

    def cursor_time(self, edge_id: int) -> int | None:
        """Time of the event in force at the edge (None: no event at or before it)."""
        j = self._cursor[edge_id]
        return None if j < 0 else self._t[j]

    def integral(self, edge_id: int) -> int | None:
        """STEP: integral from the first retained event to the edge, x SCALE (None before any event)."""
        j = self._cursor[edge_id]
        if j < 0 or self._now is None:
            return None
        return self._c[j] + self._xi[j] * (self._now - self._offsets[edge_id] - self._t[j])

    def cumulative(self, edge_id: int) -> int:
        """POINT: sum of every retained event at or before the edge, x SCALE."""
        j = self._cursor[edge_id]
        if j < 0:
            return self._c[self._head] if self._t else 0
        return self._c[j] + self._xi[j]

    def span_range(self, start_ms: int, end_ms: int) -> tuple[float, float] | None:
        """STEP: (min, max) of the values in force at some instant of `(start_ms, end_ms]`, the
        value carried in at `start_ms` included; events after the last one are not invented (the
        last value holds). None when no event is at or before `end_ms`. Used to bound a window's
        average over a horizon (`TwpaWindow.bounds`): an average never leaves this range."""
        t, head = self._t, self._head
        if not t or end_ms < t[head]:
            return None
        lo = max(bisect_right(t, start_ms, head) - 1, head)
        hi = bisect_right(t, end_ms, lo)
        xs = self._x[lo:hi]
        return min(xs), max(xs)

    def sum_between(self, start_ms: int, end_ms: int) -> int:
        """POINT: exact sum (x SCALE) of the retained events with `start_ms < t <= end_ms`."""
        if end_ms <= start_ms or not self._t:
            return 0
        return self._cum_through(bisect_right(self._t, end_ms, self._head) - 1) - self._cum_through(
            bisect_right(self._t, start_ms, self._head) - 1)

    def cums_at(self, edges: list[int]) -> list[int]:
        """POINT: for each edge, the exact sum (x SCALE) of the retained events with `t <= edge`
        (before the head: what was evicted) - so `sum_between(s, e)` is `cums_at([e])[0] -
        cums_at([s])[0]`, for many edges at C speed."""
        if not self._t:
            return [0] * len(edges)
        t, c, xi, head = self._t, self._c, self._xi, self._head
        base = c[head]
        return [c[i] + xi[i] if i >= head else base for i in (bisect_right(t, e, head) - 1 for e in edges)]

    def _cum_through(self, i: int) -> int:
        """POINT: exact sum of every event up to index `i` (before the head: the evicted ones)."""
        return self._c[i] + self._xi[i] if i >= self._head else self._c[self._head]

    def reaches_future(self, end_ms: int) -> bool:
        """Can a trade that has not arrived yet fall at or before `end_ms`?"""
        latest = self._now if self._now is not None else -(1 << 62)
        if self._t and self._t[-1] > latest:
            latest = self._t[-1]
        return end_ms >= latest

    def __len__(self) -> int:
        return len(self._t) - self._head
