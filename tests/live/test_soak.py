"""bench/soak.py in the suite: one minute of the live engine against the fake with the fault mix."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


@pytest.mark.slow
async def test_a_minute_of_faults_never_doubles_an_order_or_stacks_a_position():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None and spec.loader is not None
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    result = await soak.soak(60.0)
    assert result["entries_sent"] >= 2  # the run traded: the figures below mean something
    assert result["external_oids_with_duplicates"] == 0
    assert result["symbols_over_intended"] == []  # exchange peak holdVol <= the largest single intended entry
    assert result["machines_pending_at_end"] == []
    assert sum(result["faults_injected"].values()) >= 10
