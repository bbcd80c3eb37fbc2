"""Terminal output shared by the CLI commands: one rich console, a progress helper, and table
columns for the names users must read or type in full."""

from __future__ import annotations

import contextlib
import sys

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


@contextlib.contextmanager
def step(message: str):
    """Show a spinner with ``message`` while a long step (import, build) runs."""
    if not sys.stderr.isatty():
        yield
        return
    with errors.status(message):
        yield


def key_column(table: Table, header: str, values, **kwargs) -> None:
    """A column of identifiers a user types back (operator IDs, target names): never
    wrapped or cut at any terminal width; the table's other columns wrap instead."""
    width = max([len(header), *(len(str(v)) for v in values)])
    table.add_column(header, no_wrap=True, overflow="fold", min_width=width, **kwargs)


def words_column(table: Table, header: str, values, **kwargs) -> None:
    """A column of names made of words (category names): wrapped between words when narrow,
    never cutting a word."""
    words = [w for v in values for w in str(v).split()]
    width = max([len(header), *(len(w) for w in words)])
    table.add_column(header, overflow="fold", min_width=width, **kwargs)
