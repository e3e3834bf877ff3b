"""Domain layer: the error tree. Callers branch on the class, never on message text.

`Retryable` errors may be retried (and count towards a circuit breaker); `Permanent` ones are
answers that a retry cannot change; `AmbiguousOrderState` means a request was sent and no answer
came, so the order must be looked up by its client id before anything is re-sent.
"""

from __future__ import annotations


class TraderError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(TraderError):
    """A configuration or strategy file is invalid. The message names the key, value and rule."""


class DataError(TraderError):
    """Market-data input (a CSV row, a kline payload) cannot be used. Names file/line/field."""


class StrategyError(TraderError):
    """A strategy file is invalid."""


class StrategyFileError(StrategyError):
    """A strategy file that cannot be used: str() is one line naming the file (every command prints
    that); `problems` keeps one entry per problem for `strategy check`, which lists them."""

    def __init__(self, path: object, problems: list[str]) -> None:
        self.path, self.problems = path, problems
        super().__init__(f"{path}: invalid strategy: {'; '.join(problems)}")


class VenueError(TraderError):
    """A venue (exchange or paper) refused or failed a request."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Retryable(VenueError):
    """Network trouble, timeout, 5xx, rate limit: the same request may succeed later."""

    def __init__(self, message: str, *, code: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class Permanent(VenueError):
    """The venue answered no: a retry would get the same answer."""


class AmbiguousOrderState(VenueError):
    """An order request was sent and no definite answer came back: look it up, never re-send blindly."""


class OrderRejected(Permanent):
    """The venue rejected an order (bad size, reduce-only would grow, insufficient balance...)."""


class PositionNotFound(Permanent):
    """The position does not exist (MEXC 2009). On a close this means: already flat."""


class RiskRejected(TraderError):
    """The risk guard refused an intent; `reason` says which limit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
