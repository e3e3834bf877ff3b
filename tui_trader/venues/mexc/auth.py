"""Venues layer: MEXC contract request signing (mexc.md 7) - pure functions, no I/O.

Signature = lowercase hex HMAC-SHA256(secret, apiKey + requestTime + paramString). GET params are
sorted and percent-encoded with `quote(v, safe='')` (',' -> %2C, ' ' -> %20, never '+'); a POST
signs the exact body text that is sent. The secret lives only inside `Signer` and is never shown.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any, Mapping
from urllib.parse import quote


def _wire_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def param_string(params: Mapping[str, Any] | None) -> str:
    """Sorted `k=v&...` of the non-null params, values URL-encoded; also the exact query string."""
    if not params:
        return ""
    items = sorted((k, v) for k, v in params.items() if v is not None)
    return "&".join(f"{k}={quote(_wire_value(v), safe='')}" for k, v in items)


def signature(secret: str, api_key: str, request_time_ms: int | str, payload: str) -> str:
    """Hex HMAC-SHA256 of `api_key + request_time + payload` (payload: param string or body text)."""
    msg = f"{api_key}{request_time_ms}{payload}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


MIN_SCRUBBED = 8  # a key or secret this long or longer is blanked from reply texts (real ones have 18+ characters)


class Signer:
    """Holds the key pair and builds signed headers. `repr` never shows the secret."""

    __slots__ = ("_api_key", "_secret", "recv_window_s")

    def __init__(self, api_key: str, secret: str, recv_window_s: int = 10) -> None:
        self._api_key = api_key
        self._secret = secret
        self.recv_window_s = recv_window_s

    def __repr__(self) -> str:
        return f"Signer(api_key={self._api_key[:4]}..., secret=***)"

    def scrub(self, text: str) -> str:
        """`text` with the key and the secret blanked: an exchange's reply or refusal may echo them, and what it
        says is logged, published and stored."""
        for secret, shown in ((self._secret, "<secret>"), (self._api_key, "<api key>")):
            if len(secret) >= MIN_SCRUBBED and secret in text:  # (a test's 1-letter key would blank every letter)
                text = text.replace(secret, shown)
        return text

    def headers(self, request_time_ms: int, payload: str) -> dict[str, str]:
        """Headers for one private request whose param string / body text is `payload`."""
        return {
            "ApiKey": self._api_key,
            "Request-Time": str(request_time_ms),
            "Signature": signature(self._secret, self._api_key, request_time_ms, payload),
            "Recv-Window": str(self.recv_window_s),
            "Content-Type": "application/json",
        }

    def ws_login(self, request_time_ms: int) -> dict[str, Any]:
        """The WebSocket login message (mexc.md 8.4): same signed text as a GET without params."""
        req = str(request_time_ms)
        sig = signature(self._secret, self._api_key, req, "")
        return {"method": "login", "param": {"apiKey": self._api_key, "reqTime": req, "signature": sig}}
