"""Process helpers both sides of a campaign use: log excerpts, signal names, error text, and
dying with the parent process."""

from __future__ import annotations

import signal
import sys


def log_excerpt(path, offset: int, head: int = 15, tail: int = 10) -> str:
    """What was written to the log at ``path`` after byte ``offset`` (quoted as a crashed or
    failed mutant's error): all of it when short, else its first ``head`` lines (the cause: a
    crash handler prints its message before its stack) and its last ``tail`` lines."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = text.strip().splitlines()
    if len(lines) <= head + tail:
        return "\n".join(lines)
    skipped = f"... ({len(lines) - head - tail} line(s) left out; the whole log: {path})"
    return "\n".join(lines[:head] + [skipped] + lines[-tail:])


def signal_name(signum: int) -> str:
    """``SIGSEGV`` for 11; ``signal N`` for a number Python has no name for."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def error_text(exc: BaseException) -> str:
    """A failure's message plus the end of its cause (TVM's own error), for the store."""
    text = str(exc).strip() or type(exc).__name__
    cause = exc.__cause__
    if cause is not None:
        detail = [line for line in str(cause).strip().splitlines() if line.strip()]
        if detail:
            text += "\n" + "\n".join(detail[-12:])
    return text[:8000]


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (even by SIGKILL), so no worker
    or run outlives the campaign."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - best effort
        pass
