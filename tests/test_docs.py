"""The runnable snippets of docs/how-it-works.md run, and print what the page says they print.

Every ```python block is executed (```py blocks are excerpts of nnctl's code and are not); when a ```text
block follows it (after at most one line of prose), that is its expected output. Numbers are compared with a
tolerance, so the last digits a different BLAS or CPU produces do not fail the test; everything else must
match exactly.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "how-it-works.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _snippets() -> list[tuple[str, str | None]]:
    """(code, expected output or None) for each ```python block of the page."""
    text = PAGE.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    snippets = []
    for k, block in enumerate(blocks):
        if block.group(1) != "python":
            continue
        expected = None
        if k + 1 < len(blocks) and blocks[k + 1].group(1) == "text":
            between = text[block.end() : blocks[k + 1].start()]
            if between.strip().count("\n") == 0:  # at most one line of prose between code and output
                expected = blocks[k + 1].group(2)
        snippets.append((block.group(2), expected))
    return snippets


def _same(actual: str, expected: str) -> bool:
    """Equal text, with numbers equal to rtol 1e-5 (or within 1e-8 of each other)."""
    if NUMBER.sub("#", actual).split() != NUMBER.sub("#", expected).split():
        return False
    pairs = zip(NUMBER.findall(actual), NUMBER.findall(expected), strict=True)
    return all(abs(float(a) - float(e)) <= 1e-8 + 1e-5 * abs(float(e)) for a, e in pairs)


def test_the_page_has_runnable_snippets() -> None:
    snippets = _snippets()
    assert len(snippets) >= 2
    assert all(expected is not None for _, expected in snippets)


@pytest.mark.parametrize("index", range(len(_snippets())))
def test_snippet_prints_what_the_page_says(index: int) -> None:
    code, expected = _snippets()[index]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{PAGE.name} snippet {index + 1}", "exec"), {"__name__": "__docs__"})
    if expected is not None:
        assert _same(out.getvalue(), expected), f"printed:\n{out.getvalue()}\nthe page says:\n{expected}"
