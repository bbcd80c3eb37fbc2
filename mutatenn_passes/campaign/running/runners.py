"""Where a built mutant runs: in this machine's VM, or on a remote device through TVM RPC
(``runner = "rpc"``). Both run inside the sandbox (`sandbox.run_in_child`), so the RPC
client's threads never live in the worker either."""

from __future__ import annotations

import time

from .sandbox import RunOutcome, run_in_child


def run_artifact(art, profile, batch, timeout: float | None = None,
                 activations=None) -> RunOutcome:
    """Run the preprocessed ``batch`` on ``art`` where ``profile`` says; a run still going
    after ``timeout`` seconds (when given) is killed: a ``timeout`` outcome. An artifact that
    starts at a cut (``art.cut``) takes the original's ``activations`` there
    (`prefix_runs.run_from_cut`)."""
    if profile.runner == "rpc":
        return run_in_child(lambda: _run_remote(art, profile, batch), timeout)
    ok, why = profile.can_run()
    if not ok:
        return RunOutcome("cannot_run_here", why)
    return run_in_child(lambda: _run_local(art, batch, activations), timeout)


def _run_local(art, batch, activations) -> RunOutcome:
    from ...prefix_runs import run_from_cut

    t0 = time.perf_counter()
    art._machine()  # JIT-load (the C target exports with gcc and loads here)
    load_s = time.perf_counter() - t0
    outputs, latencies = run_from_cut(art, batch, activations)
    return RunOutcome("ok", outputs=outputs, latencies=latencies, load_s=load_s)


def _run_remote(art, profile, batch) -> RunOutcome:
    import tempfile
    from pathlib import Path

    from ... import remote

    with tempfile.TemporaryDirectory(prefix="mutatenn-rpc-") as tmp:
        t0 = time.perf_counter()
        lib = remote.export_for_remote(art, Path(tmp))
        load_s = time.perf_counter() - t0
        try:
            outputs, latencies = remote.run_exported(profile, lib, batch)
        except remote.DeviceLost as exc:
            return RunOutcome("device_lost", str(exc), load_s=load_s)
        except remote.RemoteJobError as exc:  # the mutant failed on the device
            return RunOutcome("crashed", f"on the remote device: {exc}", load_s=load_s)
    return RunOutcome("ok", outputs=outputs, latencies=latencies, load_s=load_s)
