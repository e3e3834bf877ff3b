"""Domain layer: the strategy machine's rules for a close that fails - how long to wait before the
next leg, and which rejects mean the position is already gone (MEXC 2009)."""

from __future__ import annotations

RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 10.0
_GONE_MARKERS = ("2009", "position does not exist", "position not exist", "positionnotfound", "no position")


def close_retry_delay_s(failures: int) -> float:
    """Back-off before re-sending a failed close: 0.5, 1, 2, 4, 8, 10, 10 ... seconds."""
    return min(RETRY_INITIAL_S * 2 ** max(0, failures - 1), RETRY_MAX_S)


def position_gone(reason: str) -> bool:
    """True when a close reject means the position is already gone (MEXC 2009)."""
    text = reason.lower().replace("_", " ")
    return any(marker in text or marker in text.replace(" ", "") for marker in _GONE_MARKERS)
