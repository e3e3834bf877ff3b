"""The live end-to-end tests' exchange: the fake MEXC with its account model, on 127.0.0.1."""

from __future__ import annotations

import pytest

from tests.live.filling_fake import FillingMexc


@pytest.fixture
async def fake():
    exchange = FillingMexc()
    await exchange.start()
    yield exchange
    await exchange.stop()
