"""Venues layer: MEXC request/response plumbing - exact JSON bodies, URL building, envelope unwrap.

Bodies are serialised once by `dumps` (compact, key order kept, Decimals and big ids as exact
numbers) so the signed text and the sent bytes are identical. `unwrap` turns any response into
`data` or a typed error: errors come with HTTP 200, HTML pages and empty bodies are not crashes.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tui_trader.domain.errors import VenueError
from tui_trader.venues.mexc import constants as C
from tui_trader.venues.mexc.auth import param_string
from tui_trader.venues.mexc.errors import error_from_code, error_from_http


def _dump_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"non-finite number in a request body: {value}")
        text = format(value.normalize(), "f")
        return text if text not in ("-0",) else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dump_value(v)}" for k, v in value.items() if v is not None) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_dump_value(v) for v in value) + "]"
    raise TypeError(f"cannot serialise {type(value).__name__} in a request body")


def dumps(body: Any) -> str:
    """Compact JSON (`{"a":1,"b":"x"}`), None fields left out, Decimal/int as exact numbers."""
    return _dump_value(body)


def url(base: str, path: str, params: dict[str, Any] | None = None) -> tuple[str, str]:
    """(full URL with query string, the param string that was signed)."""
    query = param_string(params)
    return (f"{base}{path}?{query}" if query else f"{base}{path}"), query


MAX_EXPONENT = 100  # no price, size or rate comes near 1e100; int(Decimal("1E+1000000")) alone takes 20 s


def _decimal(text: str) -> Decimal:
    number = Decimal(text)
    if abs(number.adjusted()) > MAX_EXPONENT:
        raise ValueError(f"number {text[:20]} out of range")
    return number


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number MEXC sends")


def parse_json(text: str) -> Any:
    """JSON with exact decimals (floats become Decimal) and exact big integers. NaN, Infinity and
    exponents beyond 1e±100 are a ValueError (a bad body): converting those later hung or raised."""
    return json.loads(text, parse_float=_decimal, parse_constant=_constant)


def unwrap(status: int, text: str, content_type: str = "", *, where: str = "") -> Any:
    """`data` of a MEXC response, or raise the typed error (never a JSON/Key/Type error).

    Raises:
        VenueError subclasses from `errors` (BadResponse for HTML/empty/non-JSON bodies).
    """
    try:
        payload = parse_json(text) if text.strip() else None
    except (ValueError, RecursionError):  # not JSON, out-of-range numbers, nested too deeply: a bad body
        payload = None
    if not isinstance(payload, (dict, list)):
        raise error_from_http(status, text, content_type, where=where)
    if isinstance(payload, list):
        return payload if status < 400 else _raise(error_from_http(status, text, content_type, where=where))
    if "success" not in payload and "code" not in payload:
        if status >= 400:
            raise error_from_http(status, text, content_type, where=where)
        return payload  # bare object (doc examples for depth omit the envelope)
    code = _int_code(payload.get("code"))
    ok = payload.get("success") is True or ("success" not in payload and code in C.OK_CODES)
    if ok and status < 400:
        return payload.get("data")
    if code is None or code in C.OK_CODES:
        raise error_from_http(status, text, content_type, where=where)
    raise error_from_code(code, payload.get("message") or payload.get("msg") or "", where=where)


def _int_code(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _raise(exc: VenueError) -> Any:
    raise exc
