"""The output-folder lock: one campaign at a time per output folder."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ...errors import MutateNNError


class OutputLock:
    """An exclusive ``flock`` on ``FOLDER/.campaign.lock`` while the block runs; a second
    campaign on the same folder fails at once with a `MutateNNError`. The kernel drops the
    lock when the process dies, even by SIGKILL, so a killed campaign never leaves it held."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".campaign.lock"
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise MutateNNError(f"{self.path.parent}: another campaign is running in this "
                                "output folder") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def campaign_running(folder: Path) -> bool:
    """Whether a campaign holds the lock of ``folder`` now (in this process or another). A
    database that says ``running`` while nobody holds the lock belongs to a campaign that was
    killed (SIGKILL, a crash, a lost machine) before it could record that it stopped."""
    path = Path(folder) / ".campaign.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
