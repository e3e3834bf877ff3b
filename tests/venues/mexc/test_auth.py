"""Signing (auth.py): the reference vectors V1-V3 verbatim, encoding rules, and a round-trip property."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from tui_trader.venues.mexc.auth import Signer, param_string, signature
from tui_trader.venues.mexc.web_utils import dumps

KEY = "mx0vTESTAPIKEY000001"
SECRET = "TESTSECRET-0123456789abcdef-XYZ"
T = 1700000000000


def test_v1_get_with_params_sorted_and_comma_encoded():
    ps = param_string({"symbol": "BTC_USDT", "states": "3,4", "page_num": 1, "page_size": 20})
    assert ps == "page_num=1&page_size=20&states=3%2C4&symbol=BTC_USDT"
    assert signature(SECRET, KEY, T, ps) == "9dac4c330edf3cadaaa15e2804852590d6f5ce1681754d5ec2a1b63bbe0dce6e"


def test_v2_post_body_compact_in_sent_order():
    body = dumps({"symbol": "BTC_USDT", "vol": 5, "side": 3, "type": 5, "openType": 1, "leverage": 10, "externalOid": "fx-0001-e"})
    assert body == '{"symbol":"BTC_USDT","vol":5,"side":3,"type":5,"openType":1,"leverage":10,"externalOid":"fx-0001-e"}'
    assert signature(SECRET, KEY, T, body) == "4d6f4ef9d413b0ba392d4c8d5176d04947ded244847acf658f0d6a0c715fd7d8"


def test_v3_get_without_params_and_ws_login():
    assert param_string({}) == "" and param_string(None) == ""
    want = "06dc917c8938da7e84daab74e3629e3f05d61f456274200fae20c43e4dd37e4e"
    assert signature(SECRET, KEY, T, "") == want
    login = Signer(KEY, SECRET).ws_login(T)
    assert login == {"method": "login", "param": {"apiKey": KEY, "reqTime": str(T), "signature": want}}


def test_headers_and_null_params_dropped():
    s = Signer(KEY, SECRET, recv_window_s=10)
    h = s.headers(T, param_string({"symbol": "BTC_USDT", "states": "3,4", "page_num": 1, "page_size": 20, "side": None}))
    assert h["ApiKey"] == KEY and h["Request-Time"] == "1700000000000" and h["Recv-Window"] == "10"
    assert h["Signature"] == "9dac4c330edf3cadaaa15e2804852590d6f5ce1681754d5ec2a1b63bbe0dce6e"


def test_space_is_percent_20_never_plus():
    assert param_string({"a": "x y"}) == "a=x%20y"


def test_secret_not_in_repr():
    assert SECRET not in repr(Signer(KEY, SECRET)) and "***" in repr(Signer(KEY, SECRET))


@given(st.dictionaries(st.text(alphabet="abcdefghij_", min_size=1, max_size=8), st.text(max_size=12), max_size=6))
def test_signature_matches_plain_hmac_of_sorted_query(params):
    ps = param_string(params)
    assert ps.split("&") == sorted(ps.split("&")) or not ps
    expected = hmac.new(SECRET.encode(), f"{KEY}{T}{ps}".encode(), hashlib.sha256).hexdigest()
    assert signature(SECRET, KEY, T, ps) == expected
    assert "+" not in ps and " " not in ps
