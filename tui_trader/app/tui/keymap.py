"""App layer: key bindings by id, and a person's overrides from `[ui] keys` in the config.

Every binding has an id ("positions.close", "app.close-all"...), so a user can move a key without
knowing which screen or class owns it: `[ui] keys = { "positions.close" = "x" }`. An id that does
not exist is a configuration error at start (a typo must not leave the key where it was unnoticed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual.binding import Binding, BindingType

from tui_trader.domain.errors import ConfigError


@dataclass(frozen=True)
class KeyHelp:
    scope: str  # "app" or the screen's name
    id: str
    keys: str  # the effective keys, overrides applied
    description: str
    action: str


def bindings_of(owner: type) -> list[Binding]:
    found: Iterable[BindingType] = getattr(owner, "BINDINGS", [])
    return [b for b in found if isinstance(b, Binding)]


def key_help(owners: Mapping[str, type], overrides: Mapping[str, str]) -> list[KeyHelp]:
    """Every binding of `owners` (scope -> class) with the keys in effect."""
    rows = []
    for scope, owner in owners.items():
        for b in bindings_of(owner):
            if b.id is None:
                continue
            rows.append(KeyHelp(scope, b.id, overrides.get(b.id, b.key), b.tooltip or b.description, b.action))
    return rows


def check_keymap(overrides: Mapping[str, str], owners: Mapping[str, type]) -> None:
    """Raise ConfigError naming every override whose id no binding has, or whose key is empty."""
    known = {b.id for owner in owners.values() for b in bindings_of(owner) if b.id}
    problems = [f"ui.keys: {bid!r} is not a binding id (known: {', '.join(sorted(known))})"
                for bid in overrides if bid not in known]
    problems += [f"ui.keys: {bid!r} has no key" for bid, key in overrides.items() if not key.strip()]
    if problems:
        raise ConfigError("\n".join(problems))
