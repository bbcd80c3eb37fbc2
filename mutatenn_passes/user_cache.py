"""The user's cache folder: what mutatenn keeps between runs, outside any output folder.

``$XDG_CACHE_HOME/mutatenn`` (``~/.cache/mutatenn`` by default), one subfolder per kind of
entry. Everything here can be deleted at any time: it only saves work a later run would
otherwise redo. Entries are written to a temporary file and renamed into place, so a process
reading one never sees half of it, and processes racing to write the same entry leave one
complete copy.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/mutatenn`` (not created)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mutatenn"


def cache_folder(kind: str) -> Path | None:
    """The folder of ``kind`` entries, created on first use; None when it cannot be written
    (a read-only home: the caller then does without)."""
    folder = cache_root() / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def read_entry(kind: str, name: str) -> bytes | None:
    """The entry ``name`` of ``kind``, or None when there is none (or it cannot be read)."""
    try:
        return (cache_root() / kind / name).read_bytes()
    except OSError:
        return None


def write_entry(kind: str, name: str, data: bytes) -> None:
    """Store ``data`` as entry ``name`` of ``kind`` (atomically; silently not at all when the
    cache cannot be written)."""
    folder = cache_folder(kind)
    if folder is not None:
        with contextlib.suppress(OSError):
            write_atomically(folder / name, data)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file beside it renamed into place, so a reader
    never sees half of it (raises `OSError`; no temporary file is left either way)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # as a plain file would be (mkstemp makes it private)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
