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
