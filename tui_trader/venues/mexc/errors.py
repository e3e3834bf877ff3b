"""Venues layer: typed MEXC errors and the mapping from HTTP status / `{success, code, message}`.

Callers branch on the class: tenacity retries and the breaker counts only `Retryable`; `Permanent`
ones are answers (auth, bad parameter, contract not allowed, insufficient balance). Messages carry
the exchange code and text (truncated), never request headers, keys or signatures.
"""

from __future__ import annotations

from typing import Any

from tui_trader.domain.errors import AmbiguousOrderState, OrderRejected, Permanent, PositionNotFound, Retryable, VenueError
from tui_trader.venues.mexc import constants as C

__all__ = [
    "AmbiguousOrderState", "AuthError", "BadResponse", "BreakerOpen", "ClockSkew", "ContractNotAllowed",
    "ExchangeError", "InsufficientBalance", "MalformedReply", "MexcPositionNotFound", "NetworkError", "ParameterError",
    "RateLimited", "RepeatedRequest", "RequestTimeout", "ServerError", "error_from_code", "error_from_http",
]

MAX_MESSAGE = 200


class NetworkError(Retryable):
    """Connection refused / reset / dropped before an answer."""


class RequestTimeout(Retryable):
    """No answer within the request or call timeout."""


class ServerError(Retryable):
    """HTTP 5xx or codes 500/501/604/801 (internal error, busy, maintenance)."""


class BadResponse(Retryable):
    """The body is not the JSON envelope (HTML error page from a gateway, empty, truncated)."""


class MalformedReply(BadResponse):
    """A success envelope whose `data` is not what the route answers (an object where a list is expected, a row
    with a field missing or broken): it proves nothing - not "not found", not "flat", not "none"."""


class RateLimited(Retryable):
    """510 / 2037 / HTTP 429: back off at least `retry_after_s`."""


class ClockSkew(Retryable):
    """513: Request-Time too far from server time. The REST layer re-measures the offset first."""


class RepeatedRequest(Retryable):
    """603: the exchange saw this request already - for an order, look it up by externalOid."""


class BreakerOpen(Retryable):
    """The entry circuit breaker is open: no request was sent. `retry_after_s` = time left."""


class AuthError(Permanent):
    """401/402/406/602/511/701-704: key, signature, IP or permission problem. Stop live trading."""


class ParameterError(Permanent):
    """A request parameter is invalid (600/601, size/price/leverage codes, or local validation)."""

    def __init__(self, message: str, *, code: int | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class ContractNotAllowed(Permanent):
    """1002 (and 6001/6002): API trading not allowed for this contract; the symbol goes monitor-only."""

    def __init__(self, message: str, *, code: int | None = None, symbol: str | None = None) -> None:
        super().__init__(message, code=code)
        self.symbol = symbol


class InsufficientBalance(OrderRejected):
    """2005: not enough available balance for the order."""


class MexcPositionNotFound(PositionNotFound):
    """2009: the position does not exist or is already closed (on a close: already flat)."""


class ExchangeError(Permanent):
    """Any other business error; keeps the exchange's `code` and `exchange_message`."""

    def __init__(self, message: str, *, code: int | None = None, exchange_message: str = "") -> None:
        super().__init__(message, code=code)
        self.exchange_message = exchange_message


def _short(text: Any) -> str:
    s = str(text if text is not None else "").strip().replace("\n", " ")
    return s if len(s) <= MAX_MESSAGE else s[: MAX_MESSAGE - 3] + "..."


def error_from_code(code: int, message: Any, *, where: str = "") -> VenueError:
    """The typed error for an envelope `code` (HTTP status is irrelevant: errors come as 200)."""
    msg = _short(message)
    text = f"MEXC {code}: {msg}" + (f" ({where})" if where else "")
    if code in C.AUTH_CODES:
        return AuthError(text, code=code)
    if code in C.RATE_LIMIT_CODES:
        return RateLimited(text, code=code, retry_after_s=C.RATE_LIMIT_BACKOFF_S)
    if code in C.TRANSIENT_CODES:
        return ServerError(text, code=code)
    if code == C.CLOCK_SKEW_CODE:
        return ClockSkew(text, code=code)
    if code == C.REPEATED_REQUEST_CODE:
        return RepeatedRequest(text, code=code)
    if code in C.PARAMETER_CODES:
        return ParameterError(text, code=code, field=_field_in(msg))
    if code in C.VALIDATION_FIELDS:
        return ParameterError(text, code=code, field=C.VALIDATION_FIELDS[code])
    if code in C.NOT_ALLOWED_CODES:
        return ContractNotAllowed(text, code=code)
    if code == C.INSUFFICIENT_BALANCE_CODE:
        return InsufficientBalance(text, code=code)
    if code == C.POSITION_NOT_FOUND_CODE:
        return MexcPositionNotFound(text, code=code)
    if code in C.BUSINESS_REJECT_CODES:
        return OrderRejected(text, code=code)
    return ExchangeError(text, code=code, exchange_message=msg)


_KNOWN_FIELDS = ("externalOid", "positionId", "openType", "leverage", "symbol", "price", "vol", "side", "type")


def _field_in(message: str) -> str | None:
    """Best guess of the parameter a 600 message is about (MEXC names it in free text, if at all)."""
    low = message.lower()
    for name in _KNOWN_FIELDS:
        if name.lower() in low:
            return name
    return None


def error_from_http(status: int, body: str, content_type: str = "", *, where: str = "") -> VenueError:
    """The typed error for a response that is not a JSON envelope (or is an HTTP error without one)."""
    snippet = _short(body[:80]) if "html" not in content_type.lower() and not body.lstrip().startswith("<") else "HTML page"
    text = f"HTTP {status} {content_type or 'no content type'}: {snippet or 'empty body'}" + (f" ({where})" if where else "")
    if status == 429:
        return RateLimited(text, code=status, retry_after_s=C.RATE_LIMIT_BACKOFF_S)
    if status in (401, 403):
        return AuthError(text, code=status)
    if status >= 500 or 200 <= status < 300:
        return ServerError(text, code=status) if status >= 500 else BadResponse(text, code=status)
    if status == 404:
        return ExchangeError(text, code=status, exchange_message="not found")
    return BadResponse(text, code=status) if status == 408 else ExchangeError(text, code=status)
