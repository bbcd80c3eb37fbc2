"""Terminal output shared by the CLI commands: one rich console and a progress helper."""

from __future__ import annotations

import contextlib
import sys

from rich.console import Console

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
