"""Forking a child that runs one function and exits, as the campaign's zygote forks its
workers and as an original's kernels are compiled in several processes (`parallel_compile`).

The caller must be a process where forking is safe: single-threaded, with no generated code
run (see `campaign.running.zygote`). The child flushes what it printed and leaves with
``os._exit``, so nothing of the parent (atexit handlers, buffered files) runs twice.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable


def fork(body: Callable[[], None]) -> int:
    """Fork a child that runs ``body()`` and exits: 0 when it returns, 1 (its traceback
    printed) when it raises. The child's process ID."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        body()
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
