"""Test support: a Python value as TOML text (for the hypothesis suites that write config and strategy files)."""

from __future__ import annotations

import json
import math


def toml_value(v) -> str:
    """Inline TOML for bools, numbers (nan/inf too), strings, lists and tables; None entries are left out."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v if x is not None) + "]"
    return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items() if x is not None) + "}"
