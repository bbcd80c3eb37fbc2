"""Keep what native libraries print during a step out of the terminal, in a log file instead.

TVM's ONNX frontend prints "Error converting operator ..." with `print`, and its C++ core logs
"BlockBuilder destroyed with remaining blocks!" to file descriptor 2 when a failed import's
builder is freed; LiteRT logs "Created TensorFlow Lite XNNPACK delegate" to fd 2 too. Python's
`sys.stdout`/`sys.stderr` do not see C++ writes, so `captured_output` points file descriptors 1
and 2 at a log file while the step runs, and collects Python-level prints and warnings into the
same file. Python's own `sys.stderr` keeps writing to the terminal, so the CLI's spinner goes on.

Logs live in ``$XDG_CACHE_HOME/mutatenn/logs`` (``~/.cache/mutatenn/logs`` by default; the
system temp folder's ``mutatenn-logs`` when that cannot be created). A step that printed nothing
leaves no file.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from .user_cache import cache_root


def log_dir() -> Path:
    """The folder logs are written to, created on first use."""
    for folder in (cache_root() / "logs", Path(tempfile.gettempdir()) / "mutatenn-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    raise OSError("no writable folder for mutatenn's logs (tried the user cache and temp)")


@dataclass
class CapturedOutput:
    """What a step printed: ``path`` is the kept log file, or None when it printed nothing."""

    path: Path | None = None

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8", errors="replace") if self.path else ""


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def captured_output(name: str):
    """Send everything printed inside the block to ``<log_dir>/<name>.log``.

    Yields a `CapturedOutput` whose ``path`` is set when the block ends (None if nothing was
    printed). Garbage is collected before the descriptors are restored, so native objects freed
    late (TVM's BlockBuilder after a failed import) log into the file, not the terminal.
    """
    folder = log_dir()
    safe = re.sub(r"[^\w.-]", "_", name)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{safe}.", suffix=".tmp", dir=folder)
    result = CapturedOutput()
    _flush_std_streams()
    saved = {target: os.dup(target) for target in (1, 2)}
    # Python-level writers share the file's offset with fds 1 and 2, so lines stay in order.
    log = os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")
    terminal = os.fdopen(os.dup(saved[2]), "w", buffering=1, encoding="utf-8",
                         errors="replace")
    try:
        for target in (1, 2):
            os.dup2(fd, target)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(terminal), \
                warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = lambda message, category, *_args, **_kw: \
                log.write(f"{category.__name__}: {message}\n")
            try:
                yield result
            finally:
                gc.collect()
    finally:
        _flush_std_streams()
        log.close()
        terminal.close()
        for target, copy in saved.items():
            os.dup2(copy, target)
            os.close(copy)
        os.close(fd)
        if os.path.getsize(tmp_name):
            result.path = folder / f"{safe}.log"
            os.replace(tmp_name, result.path)
        else:
            os.unlink(tmp_name)
