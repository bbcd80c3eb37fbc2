"""The IR diff of each planned mutant (original vs mutated functions, unified), made after
planning.

Only the reports read the diffs, but printing both sides of every changed function and
diffing them was a quarter of the default campaign's planning (0.65 s of 2.5 s, serial, before
any worker could start). Planning now only notes what to diff (`PendingDiff`); the campaign
makes the diffs in a thread of its own while the workers are started and build the first
mutants (`DiffsInBackground`), when the main process has nothing else to do, and stores them
as soon as they are made.
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass

#: Largest IR diff kept per mutant (characters).
MAX_DIFF = 200_000


@dataclass
class PendingDiff:
    """A mutant whose diff is to be made: its task, the module it was applied to (and which
    original module that is: ``owner``, to print each original function once), and the
    module it made."""

    task: object  # plan.Task
    owner: tuple
    original: object
    mutated: object


def compute_diffs(pending: list[PendingDiff]) -> dict[str, str]:
    """Make each pending mutant's diff, set it as its task's ``diff``; {task key: diff}."""
    differ = _DiffMaker()
    diffs = {}
    for p in pending:
        p.task.diff = diffs[p.task.key] = differ.diff(p.owner, p.original, p.mutated)
    return diffs


class DiffsInBackground:
    """`compute_diffs` in a daemon thread; `save` stores them once made.

    The thread only prints IR and compares text: the main thread meanwhile waits on the
    workers' sockets (outside the GIL) and writes results, so it is delayed by at most
    Python's switch interval per message."""

    def __init__(self, pending: list[PendingDiff]):
        self._diffs: dict[str, str] | None = None
        self._error: BaseException | None = None
        self._saved = False
        self._thread = threading.Thread(target=self._run, args=(pending,),
                                        name="mutatenn-diffs", daemon=True)
        self._thread.start()

    def _run(self, pending: list[PendingDiff]) -> None:
        try:
            self._diffs = compute_diffs(pending)
        except BaseException as exc:  # reported by `save`, in the campaign's thread
            self._error = exc

    def save(self, store, wait: float | None = 0.0) -> bool:
        """Store the diffs if they are made (waiting up to ``wait`` seconds, None: until
        they are); whether they are stored. A failure to make them is raised here."""
        if self._saved:
            return True
        self._thread.join(wait)
        if self._thread.is_alive():
            return False
        if self._error is not None:
            raise self._error
        store.save_diffs(self._diffs)
        self._saved = True
        return True


class _DiffMaker:
    """Unified diffs of the functions a mutation changed (original vs mutated)."""

    def __init__(self):
        self._scripts: dict[tuple, str] = {}

    def _script(self, owner, name, func) -> str:
        key = (owner, name)
        if key not in self._scripts:
            self._scripts[key] = _script_of(func)
        return self._scripts[key]

    def diff(self, owner_key, original, mutated) -> str:
        import tvm_ffi

        orig = {gv.name_hint: f for gv, f in original.functions_items()}
        new = {gv.name_hint: f for gv, f in mutated.functions_items()}
        chunks = []
        for name in sorted(set(orig) | set(new)):
            a, b = orig.get(name), new.get(name)
            if a is not None and b is not None and tvm_ffi.structural_equal(a, b):
                continue
            before = self._script(owner_key, name, a).splitlines() if a is not None else []
            after = _script_of(b).splitlines() if b is not None else []
            chunks.extend(difflib.unified_diff(before, after, f"original/{name}",
                                               f"mutant/{name}", n=3, lineterm=""))
        text = "\n".join(chunks)
        if len(text) > MAX_DIFF:
            text = text[:MAX_DIFF] + f"\n… (diff truncated at {MAX_DIFF} characters)"
        return text


def _script_of(func) -> str:
    try:
        return func.script(show_meta=False)
    except TypeError:
        return func.script()
    except Exception as exc:  # printing must never stop a campaign
        return f"# cannot print this function: {exc}"
