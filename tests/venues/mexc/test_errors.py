"""Error mapping (errors.py / web_utils.unwrap): every code class, HTTP statuses, HTML and non-JSON bodies."""

from __future__ import annotations

import pytest

from tui_trader.domain.errors import AmbiguousOrderState, OrderRejected, Permanent, PositionNotFound, Retryable
from tui_trader.venues.mexc import errors as E
from tui_trader.venues.mexc.web_utils import unwrap


def env(code: int, message: str = "x") -> str:
    return f'{{"success":false,"code":{code},"message":"{message}"}}'


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        (401, E.AuthError, False), (402, E.AuthError, False), (406, E.AuthError, False), (602, E.AuthError, False),
        (510, E.RateLimited, True), (2037, E.RateLimited, True), (500, E.ServerError, True), (501, E.ServerError, True),
        (513, E.ClockSkew, True), (603, E.RepeatedRequest, True), (600, E.ParameterError, False),
        (1002, E.ContractNotAllowed, False), (2005, E.InsufficientBalance, False), (2009, E.MexcPositionNotFound, False),
        (2011, E.ParameterError, False), (2036, OrderRejected, False), (9999, E.ExchangeError, False),
    ],
)
def test_envelope_codes_map_to_types_even_with_http_200(code, cls, retryable):
    with pytest.raises(cls) as info:
        unwrap(200, env(code))
    assert info.value.code == code
    assert isinstance(info.value, Retryable) is retryable
    assert isinstance(info.value, Permanent) is (not retryable)


def test_rate_limited_carries_backoff():
    with pytest.raises(E.RateLimited) as info:
        unwrap(200, env(510, "Requests are too frequent!"))
    assert info.value.retry_after_s >= 1.0


def test_parameter_error_carries_field():
    with pytest.raises(E.ParameterError) as info:
        unwrap(200, env(600, "param error: vol must be positive"))
    assert info.value.field == "vol"
    with pytest.raises(E.ParameterError) as info:
        unwrap(200, env(2015, "price or quantity precision error"))
    assert info.value.field == "price"


def test_specific_business_errors_are_domain_classes():
    with pytest.raises(OrderRejected):
        unwrap(200, env(2005, "balance insufficient"))
    with pytest.raises(PositionNotFound):
        unwrap(200, env(2009, "position not exist"))


def test_generic_exchange_error_keeps_code_and_message():
    with pytest.raises(E.ExchangeError) as info:
        unwrap(200, env(4242, "something odd"))
    assert info.value.code == 4242 and info.value.exchange_message == "something odd"
    assert "4242" in str(info.value) and "something odd" in str(info.value)


@pytest.mark.parametrize(
    ("status", "body", "ctype", "cls"),
    [
        (502, "<html><h1>Bad Gateway</h1></html>", "text/html", E.ServerError),
        (200, "<!DOCTYPE html><html>cloudflare</html>", "text/html", E.BadResponse),
        (200, "not json at all", "text/plain", E.BadResponse),
        (200, "", "", E.BadResponse),
        (200, '{"success": true, "da', "application/json", E.BadResponse),
        (500, "Internal Server Error", "text/plain", E.ServerError),
        (429, "slow down", "text/plain", E.RateLimited),
        (401, "", "", E.AuthError),
        (404, "nope", "text/plain", E.ExchangeError),
        (200, '"just a string"', "application/json", E.BadResponse),
    ],
)
def test_non_envelope_bodies_become_clear_errors(status, body, ctype, cls):
    with pytest.raises(cls) as info:
        unwrap(status, body, ctype, where="GET /x")
    assert f"HTTP {status}" in str(info.value) and "GET /x" in str(info.value)
    assert "<html" not in str(info.value).lower()


def test_ok_forms():
    assert unwrap(200, '{"success":true,"code":0,"data":{"a":1}}') == {"a": 1}
    assert unwrap(200, '{"code":200,"data":"123"}') == "123"
    assert unwrap(200, '{"asks":[],"bids":[]}') == {"asks": [], "bids": []}  # bare object
    assert unwrap(200, '{"success":true,"code":0,"data":7000000000000000001}') == 7000000000000000001  # exact


def test_http_500_with_envelope_is_the_envelope_code():
    with pytest.raises(E.ServerError):
        unwrap(500, '{"success":false,"code":501,"message":"busy"}')


def test_ambiguous_is_neither_retryable_nor_permanent():
    exc = AmbiguousOrderState("x")
    assert not isinstance(exc, (Retryable, Permanent))
