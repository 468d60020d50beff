"""Named registries for everything a config can name, with did-you-mean suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice most similar to `name`, or None when nothing is close."""
    matches = difflib.get_close_matches(name.lower(), list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_name_message(kind: str, name: object, choices: Iterable[str]) -> str:
    """`unknown activation 'rleu'; did you mean 'relu'? (valid: identity, relu, ...)`."""
    options = sorted(choices)
    hint = closest(str(name), options)
    did_you_mean = f"; did you mean '{hint}'?" if hint else ""
    return f"unknown {kind} '{name}'{did_you_mean} (valid: {', '.join(options)})"


class Registry(dict[str, T]):
    """A dict of name -> implementation that knows what kind of thing it holds."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@ACTIVATIONS.register("relu")`."""

        def add(obj: T) -> T:
            self[name] = obj
            return obj

        return add

    def lookup(self, name: str) -> T:
        """The entry for `name`; a KeyError whose message lists valid names and the closest one."""
        try:
            return self[name]
        except KeyError:
            raise KeyError(unknown_name_message(self.kind, name, self)) from None
