"""Consoles for the CLI's tables: readable both in a terminal and when piped into a file or CI log."""

from __future__ import annotations

from rich.console import Console

MIN_PIPED_WIDTH = 160
"""Rich falls back to 80 columns without a terminal, which wraps every cell of a wide table."""


def output_console() -> Console:
    """The terminal's width, but at least ``MIN_PIPED_WIDTH`` when output is piped."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, MIN_PIPED_WIDTH))
    return console


def fit_name(name: str, width: int) -> str:
    """``name`` within ``width`` characters, cut only between its dash-separated words.

    The first word and as many trailing words as fit stay, the words between become one ``…``
    (``akd1000-pcie-board-3-chip-0`` -> ``akd1000-…-chip-0``): a kind and an index read better than a
    prefix cut mid-word, which could make two names look alike. A name that cannot be shortened that way
    (one long word) stays whole: the table is then wider rather than ambiguous.
    """
    if len(name) <= width:
        return name
    words = name.split("-")
    tail: list[str] = []
    for word in reversed(words[1:]):
        if len("-".join([words[0], "…", word, *tail])) > width:
            break
        tail.insert(0, word)
    if not tail or len(tail) == len(words) - 1:
        return name
    return "-".join([words[0], "…", *tail])
