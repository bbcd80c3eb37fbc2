"""Deliberate worker faults, for tests and demonstrations only.

``MUTATENN_FAULT_INJECT`` is a comma-separated list of ``ACTION@STAGE:OPERATOR``: ACTION
``crash`` (the worker sends itself SIGSEGV) or ``hang`` (it sleeps forever), STAGE ``build``
or ``run``, OPERATOR an operator ID (``original`` for the unmutated model). The campaign must
record such a mutant ``crashed`` or ``timeout`` and go on.
"""

from __future__ import annotations

import os
import signal
import time

#: Environment variable for deliberate faults (tests only).
FAULT_ENV = "MUTATENN_FAULT_INJECT"


def _faults() -> list[tuple[str, str, str]]:
    out = []
    for item in filter(None, (s.strip() for s in os.environ.get(FAULT_ENV, "").split(","))):
        action_stage, _, op = item.partition(":")
        action, _, stage = action_stage.partition("@")
        out.append((action, stage or "build", op))
    return out


def maybe_fault(operator: str, stage: str) -> None:
    """Misbehave now if ``FAULT_ENV`` asks for it at this operator and stage."""
    for action, at, op in _faults():
        if op == operator and at == stage:
            print(f"mutatenn: injected fault {action}@{stage} for {operator}", flush=True)
            if action == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            elif action == "hang":
                while True:
                    time.sleep(3600)
