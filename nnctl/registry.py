"""Named registries for everything a config can name, and the one "did you mean" every message uses."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice most similar to `name`, or None when nothing is close."""
    matches = difflib.get_close_matches(name.lower(), list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def not_found(what: str, name: object, choices: Iterable[str], label: str = "valid") -> str:
    """`{what}; did you mean '{hint}'? ({label}: a, b, c)`, the hint only when a choice is close to `name`.

    E.g. `unknown activation 'rleu'; did you mean 'relu'? (valid: identity, relu, ...)`."""
    options = [str(choice) for choice in choices]
    hint = closest(str(name), options)
    did_you_mean = f"; did you mean '{hint}'?" if hint else ""
    return f"{what}{did_you_mean} ({label}: {', '.join(options)})"


def unknown_name_message(kind: str, name: object, choices: Iterable[str]) -> str:
    """`unknown activation 'rleu'; did you mean 'relu'? (valid: identity, relu, ...)`, choices sorted."""
    return not_found(f"unknown {kind} '{name}'", name, sorted(choices))


class Registry(dict[str, T]):
    """A dict of name -> implementation that knows what kind of thing it holds (its `kind` names it in messages)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@ACTIVATIONS.register("relu")`."""

        def add(obj: T) -> T:
            self[name] = obj
            return obj

        return add
