"""Worker processes: build and run one mutant at a time, isolated from the campaign.

Workers are fresh interpreters (``python -c``, never a fork of a parent that has already run
TVM threads or compiled code, and never a re-import of the caller's main script). A worker receives what it needs as plain
data: the model's file and overrides, the target profile, the image paths and the mutation's
definition (operator, site indices, parameters). It imports each model once and keeps it, with
the preprocessed images and the model's Relax side lowered per target, for all the tasks it gets;
for each task it re-applies the mutation to that cached IR (planning already hashed the result,
and the worker checks the hash), builds, runs and sends the result back.

Protocol (pickled tuples over a socket pair wrapped in `multiprocessing.connection`), worker
to campaign:
``("started", key, prepare_s)`` when the task's inputs are ready (the timeout starts here),
``("built", key, build_s)`` when the build finished, ``("done", key, result)`` at the end.
A worker that dies (a segfaulting mutant) or hangs (killed at the timeout) is replaced by the
campaign; its log (stdout/stderr of the process, TVM's messages included) stays in the output
folder.

For tests and demonstrations only, ``MUTATENN_FAULT_INJECT`` makes a worker misbehave on
purpose: a comma-separated list of ``ACTION@STAGE:OPERATOR`` with ACTION ``crash`` (SIGSEGV
to itself) or ``hang`` (sleep forever), STAGE ``build`` or ``run``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback

#: Environment variable for deliberate faults (tests only).
FAULT_ENV = "MUTATENN_FAULT_INJECT"


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the campaign process dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - best effort
        pass


_LOG_PATH: str | None = None


def _log_size() -> int:
    try:
        return os.path.getsize(_LOG_PATH) if _LOG_PATH else 0
    except OSError:
        return 0


def log_tail(path, offset: int, lines: int = 25) -> str:
    """The last ``lines`` lines a worker wrote to its log after byte ``offset`` (the
    campaign quotes them as a crashed or failed mutant's error)."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _redirect_output(log_path: str | None) -> None:
    """Send the process's own stdout/stderr (C++ writes included) to the worker log."""
    global _LOG_PATH
    if not log_path:
        return
    _LOG_PATH = log_path
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)


def _faults() -> list[tuple[str, str, str]]:
    spec = os.environ.get(FAULT_ENV, "")
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        action_stage, _, op = item.partition(":")
        action, _, stage = action_stage.partition("@")
        out.append((action, stage or "build", op))
    return out


def _maybe_fault(operator: str, stage: str) -> None:
    for action, at, op in _faults():
        if op == operator and at == stage:
            print(f"mutatenn: injected fault {action}@{stage} for {operator}", flush=True)
            if action == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            elif action == "hang":
                while True:
                    time.sleep(3600)


class _State:
    """What a worker keeps between tasks."""

    def __init__(self):
        self.models: dict[str, object] = {}
        self.batches: dict[tuple, object] = {}
        self.lowered: dict[tuple, object] = {}
        self.originals: dict[tuple, dict] = {}

    def model(self, spec: dict):
        key = spec["cache_key"]
        if key not in self.models:
            from ..model import load_model

            self.models[key] = load_model(spec["path"], **spec["overrides"])
        return self.models[key]

    def batch(self, spec: dict, images, model):
        key = (spec["cache_key"], tuple(images) if images else None)
        if key not in self.batches:
            from ..images import default_images, load_images, preprocess

            imgs = load_images(images) if images else default_images()
            self.batches[key] = ([im.name for im in imgs], preprocess(imgs, model.preprocess))
        return self.batches[key]

    def lowered_relax(self, spec: dict, model, profile):
        key = (spec["cache_key"], profile.name, profile.path)
        if key not in self.lowered:
            import tvm

            from ..kernel_ir import lower_relax

            with tvm.transform.PassContext(opt_level=3):
                self.lowered[key] = lower_relax(model.mod, profile)
        return self.lowered[key]


    def original(self, spec: dict, model, profile) -> dict:
        """The original built for ``profile`` (from the cached lowered Relax module), its
        S-TIR module and, for incremental builds, its kernel library JIT-compiled here so
        that every forked run inherits the machine code instead of compiling it again."""
        key = (spec["cache_key"], profile.name, profile.path)
        if key not in self.originals:
            import tvm

            from ..build import build
            from ..kernel_ir import bind_target, tir_part

            lowered = self.lowered_relax(spec, model, profile)
            art = build(model, profile, lowered=lowered)
            with tvm.transform.PassContext(opt_level=3):
                s_tir = bind_target(tir_part(lowered), profile)
            entry = {"art": art, "s_tir": s_tir, "lowered_tir": None, "lib": None,
                     "relax": lowered}
            if incremental_possible(profile) and profile.runner == "local":
                imports = list(art.executable.mod.imports)
                if len(imports) == 1 and imports[0].kind == "llvm":
                    lib = imports[0]
                    names = sorted(gv.name_hint for gv in s_tir.get_global_vars())
                    if names:
                        lib.get_function(names[0])  # JIT the whole library now
                    entry["lib"] = lib
            self.originals[key] = entry
        return self.originals[key]

    def lowered_tir(self, entry: dict, profile):
        """The original's kernels after TVM's TIR lowering (the ``lowered`` phase)."""
        if entry["lowered_tir"] is None:
            import tvm

            lower, _, _ = tvm.tirx.get_default_tir_pipeline(profile.tvm_target())
            with tvm.transform.PassContext(opt_level=3):
                entry["lowered_tir"] = lower(entry["s_tir"])
        return entry["lowered_tir"]


def incremental_possible(profile) -> bool:
    """Incremental builds link new kernels against the original's LLVM CPU library."""
    return profile.kind == "llvm" and profile.device == "cpu"


def _use_incremental(task: dict, profile) -> bool:
    """Incremental for local LLVM CPU runs only: a library that must be exported (kept
    artifacts, a remote device) is built in full, since the composed module holds kernels
    of the same name twice and cannot be linked into one shared library."""
    return bool(task.get("incremental")) and incremental_possible(profile) \
        and profile.runner == "local" and not task.get("keep_dir")


def _finalize_only_pipeline(target):
    """A TIR pipeline for kernels already lowered: only host/device finalization."""
    import tvm

    def factory():
        _, finalize_host, finalize_device = tvm.tirx.get_default_tir_pipeline(target)

        @tvm.transform.module_pass(opt_level=0, name="mutatenn.AlreadyLowered")
        def already_lowered(mod, _ctx):
            return mod

        return already_lowered, finalize_host, finalize_device

    return factory


def build_incremental(task: dict, model, profile, entry: dict, state: "_State"):
    """Build a mutant by compiling only the kernels that differ from the original's.

    The mutation is applied to the same IR the full build would see (the imported Relax
    module for graph-level operators, then the target's Relax lowering; the original's S-TIR
    or lowered TIR for kernel-level ones). Every PrimFunc whose name and body equal the
    original's is taken from the original's library, already compiled; the others go
    through the rest of TVM's TIR pipeline and code generation, and the Relax VM
    executable is linked against both (the new kernels are found first). Deterministic
    mutants give bit-identical outputs to a full build (tested).
    Returns (artifact, ir_verified, kernels compiled).
    """
    import uuid

    import tvm
    import tvm_ffi
    from tvm import relax
    from tvm.relax import vm_build
    from tvm.tirx import compilation_pipeline

    from ..artifact import Artifact
    from ..build import BuildRecord, _wrapping_tir_pipeline
    from ..kernel_ir import bind_target, lower_relax, tir_part
    from ..mutation import mutation

    d = task["definition"]
    target = profile.tvm_target()
    p = mutation(d["operator"], sites=list(d["site_indices"]), kernels=d["kernels"],
                 phase=d["phase"], **d["params"])
    record = BuildRecord(relax_input=model.mod)
    start = time.perf_counter()
    with tvm.transform.PassContext(opt_level=3):
        if d["level"] == "graph":
            mutated = p(model.mod)
            record.relax_input = mutated
            relax_mod = lower_relax(mutated, profile)
            kernels = bind_target(tir_part(relax_mod), profile)
            base, phase = entry["s_tir"], "s_tir"
        else:
            relax_mod = entry["relax"]
            phase = d["phase"] or "s_tir"
            base = entry["s_tir"] if phase == "s_tir" else state.lowered_tir(entry, profile)
            kernels = mutated = p(base)
        originals = {gv.name_hint: f for gv, f in base.functions_items()}
        changed = {gv: f for gv, f in kernels.functions_items()
                   if gv.name_hint not in originals
                   or not tvm_ffi.structural_equal(f, originals[gv.name_hint])}
        name = f"mutatenn-incremental-{uuid.uuid4().hex[:10]}"
        factory = _wrapping_tir_pipeline(target, [], record) if phase == "s_tir" \
            else _finalize_only_pipeline(target)
        compilation_pipeline.register_tir_pipeline(name, factory)
        try:
            attrs = dict(relax_mod.attrs) if relax_mod.attrs else {}
            ext_libs = list(attrs.get("external_mods", []))
            params = dict(attrs.get("const_name_to_constant", {}))
            builder = relax.ExecBuilder()
            vm_build._vmcodegen(builder, relax_mod, "bytecode")
            tir_mod = tvm.IRModule(changed, attrs=kernels.attrs) if changed else None
            executable = vm_build._vmlink(builder, target, tir_mod=tir_mod,
                                          tir_pipeline=name, ext_libs=ext_libs + [entry["lib"]],
                                          params=params)
        finally:
            compilation_pipeline.PIPELINE_MAP.pop(name, None)
    # For dumps: the whole mutated module at the mutation's phase (the pipeline recorded only
    # the kernels it compiled).
    record.tir[phase] = kernels
    verified = None
    if task.get("ir_hash"):
        verified = f"{tvm_ffi.structural_hash(mutated):016x}" == task["ir_hash"]
    art = Artifact(executable=executable, profile=profile, input=model.input,
                   output=model.output, preprocess=model.preprocess, labels=model.labels,
                   model_name=model.name, build_seconds=time.perf_counter() - start,
                   record=record)
    return art, verified, sorted(gv.name_hint for gv in changed)


def _error_text(exc: BaseException) -> str:
    """A failure's message plus the end of its cause (TVM's own error), for the store."""
    text = str(exc).strip() or type(exc).__name__
    cause = exc.__cause__
    if cause is not None:
        detail = [l for l in str(cause).strip().splitlines() if l.strip()]
        if detail:
            text += "\n" + "\n".join(detail[-12:])
    return text[:8000]


def _build(task: dict, model, profile, state: _State, spec: dict):
    """Build the task's original or mutant; returns (artifact, ir_verified, build mode)."""
    import tvm_ffi

    from ..build import build
    from ..mutation import mutation

    d = task.get("definition")
    if d is None:  # the original (built while preparing, cached for this worker)
        return state.original(spec, model, profile)["art"], None, "full"
    if _use_incremental(task, profile):
        entry = state.original(spec, model, profile)
        if entry["lib"] is not None:
            try:
                art, verified, compiled = build_incremental(task, model, profile, entry,
                                                            state)
                return art, verified, f"incremental ({len(compiled)} kernel(s) compiled: " \
                    f"{', '.join(compiled[:6])}{', …' if len(compiled) > 6 else ''})"
            except Exception as exc:  # fall back to the full build, which has the last word
                fallback = f"full (incremental failed: {_error_text(exc).splitlines()[0]})"
        else:
            fallback = "full (the original's library cannot be reused)"
    else:
        fallback = "full"
    p = mutation(d["operator"], sites=list(d["site_indices"]), kernels=d["kernels"],
                 phase=d["phase"], **d["params"])
    if d["level"] == "graph":
        art = build(model, profile, relax_passes=[p])
        mutated = art.record.relax_input
    else:
        lowered = state.lowered_relax(spec, model, profile)
        art = build(model, profile, tir_passes=[p], lowered=lowered)
        mutated = art.record.tir.get(d["phase"] or "s_tir")
    verified = None
    if task.get("ir_hash") and mutated is not None:
        verified = f"{tvm_ffi.structural_hash(mutated):016x}" == task["ir_hash"]
    return art, verified, fallback


def _run(task: dict, art, profile, names, batch, timings: dict):
    """Run ``batch`` on the artifact; (status, error, outputs, latencies, crash info).

    The mutant's code runs in a child forked from this worker just for that run (the worker
    itself is single-threaded and has never executed generated code, so forking is safe): a
    mutant that corrupts memory or segfaults takes down only the child, and the worker, with
    its cached model, stays clean for the next task. Remote runs (``runner = "rpc"``) happen
    in such a child too, so the RPC client's threads never live in the worker. Loading the
    built library into a VM (or exporting it for a remote device) is timed apart
    (``timings["load_s"]``).
    """
    if profile.runner == "rpc":
        import importlib.util

        if importlib.util.find_spec(f"{__package__.rsplit('.', 1)[0]}.remote") is None:
            return "cannot_run_here", "the remote runner (mutatenn_passes.remote) is not " \
                "available", None, None, {}
        return _run_in_child(lambda: _remote_body(art, profile, batch), timings)
    ok, why = profile.can_run()
    if not ok:
        return "cannot_run_here", why, None, None, {}
    return _run_in_child(lambda: _local_body(art, batch), timings)


def _local_body(art, batch):
    t0 = time.perf_counter()
    art._machine()  # JIT-load (the C target exports with gcc and loads here)
    load_s = time.perf_counter() - t0
    outputs, latencies = art.run_array(batch)
    return ("ok", "", outputs, latencies, load_s)


def _remote_body(art, profile, batch):
    import tempfile
    from pathlib import Path

    from .. import remote

    with tempfile.TemporaryDirectory(prefix="mutatenn-rpc-") as tmp:
        t0 = time.perf_counter()
        lib = remote.export_for_remote(art, Path(tmp))
        load_s = time.perf_counter() - t0
        try:
            outputs, latencies = remote.run_exported(profile, lib, batch)
        except remote.DeviceLost as exc:
            return ("device_lost", str(exc), None, None, load_s)
        except remote.RemoteJobError as exc:  # the mutant failed on the device
            return ("crashed", f"on the remote device: {exc}", None, None, load_s)
    return ("ok", "", outputs, latencies, load_s)


def _run_in_child(body, timings: dict):
    import pickle

    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report, exit without cleanup
        code = 0
        try:
            os.close(read_fd)
            _die_with_parent()
            data = pickle.dumps(body())
        except BaseException as exc:  # e.g. a TVM runtime error raised by the mutant's code
            data = pickle.dumps(("error", _error_text(exc)))
        try:
            with os.fdopen(write_fd, "wb") as f:
                f.write(data)
        except BaseException:
            code = 3
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    _, wstatus = os.waitpid(pid, 0)
    if data:
        reply = pickle.loads(data)
        if reply[0] == "error":
            return "crashed", "the mutant's code raised at run time: " + reply[1], None, \
                None, {"exit_code": 1}
        status, error, outputs, latencies, load_s = reply
        timings["load_s"] = load_s
        return status, error, outputs, latencies, {}
    if os.WIFSIGNALED(wstatus):
        sig = os.WTERMSIG(wstatus)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return "crashed", f"the run died with {name}", None, None, \
            {"exit_code": -sig, "signal": name}
    code = os.WEXITSTATUS(wstatus)
    return "crashed", f"the run exited with code {code}", None, None, {"exit_code": code}


def handle_task(conn, task: dict, state: _State) -> None:
    from pathlib import Path

    import numpy as np

    from ..artifact import top_k
    from ..targets import get_profile

    key = task["key"]
    start = time.perf_counter()
    spec = task["model"]
    model = state.model(spec)
    names, batch = state.batch(spec, task.get("images"), model)
    profile = get_profile(task["target_ref"])
    needs_lowered = task.get("definition") is None or task["definition"]["level"] == "kernel"
    if needs_lowered:
        state.lowered_relax(spec, model, profile)
    if task.get("definition") is None or _use_incremental(task, profile):
        state.original(spec, model, profile)  # built once per worker, reused after
    prepare_s = time.perf_counter() - start
    conn.send(("started", key, prepare_s))
    operator = (task.get("definition") or {}).get("operator", "original")
    result = {"prepare_s": prepare_s}
    _maybe_fault(operator, "build")
    t0 = time.perf_counter()
    try:
        art, verified, build_mode = _build(task, model, profile, state, spec)
    except Exception as exc:
        result.update(status="build_failed", error=_error_text(exc), stage="build",
                      build_s=time.perf_counter() - t0)
        conn.send(("done", key, result))
        return
    build_s = time.perf_counter() - t0
    if task.get("definition") is None:
        build_s = art.build_seconds  # compiled while preparing
    result.update(build_s=build_s, ir_verified=verified, build_mode=build_mode)
    conn.send(("built", key, build_s))
    if task.get("keep_dir"):
        folder = Path(task["keep_dir"])
        try:
            art.export(folder / "model.so")
            art.dump(folder / "ir")
            result["artifact"] = str(folder)
        except Exception as exc:  # keeping artifacts must not change the outcome
            result["artifact"] = f"(could not keep artifacts: {_error_text(exc)})"
    _maybe_fault(operator, "run")
    timings: dict = {}
    t0 = time.perf_counter()
    log_offset = _log_size()
    try:
        status, error, outputs, latencies, crash = _run(task, art, profile, names, batch,
                                                        timings)
    except Exception as exc:
        status, error, outputs, latencies, crash = \
            "crashed", "run raised: " + _error_text(exc), None, None, {}
    if status == "crashed":
        tail = log_tail(_LOG_PATH, log_offset)
        result.update(stage="run", **crash)
        error = error + (f"\n{tail}" if tail else "")
    load_s = timings.get("load_s", 0.0)
    result.update(status=status, error=error, load_s=load_s,
                  run_s=time.perf_counter() - t0 - load_s)
    if outputs is not None:
        k = task.get("top_k", 5)
        rows = []
        for name, vector, latency in zip(names, np.asarray(outputs), latencies):
            vec = np.asarray(vector, dtype=np.float32).reshape(-1)
            classes = top_k(vec, k)
            rows.append({"image": name, "classes": classes,
                         "scores": [float(vec[c]) for c in classes],
                         "latency_ms": float(latency), "vector": vec})
        result["outputs"] = rows
    conn.send(("done", key, result))


def main_from_fd(fd: str, worker_id: str, log_path: str, threads: str) -> None:
    """Entry point of ``python -c``: the campaign's end of the socket pair is ``fd``."""
    from multiprocessing.connection import Connection

    worker_main(Connection(int(fd)), int(worker_id), log_path or None, int(threads))


def worker_main(conn, worker_id: int, log_path: str | None, threads: int) -> None:
    """Entry point of a worker process."""
    _die_with_parent()
    _redirect_output(log_path)
    os.environ["TVM_NUM_THREADS"] = str(threads)  # read when a run creates TVM's pool
    threads_now = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") \
        else 0
    print(f"mutatenn worker {worker_id} (pid {os.getpid()}) started, {threads_now} "
          "thread(s)", flush=True)
    state = _State()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        kind = msg[0]
        if kind == "stop":
            return
        try:
            if kind == "prepare":
                state.model(msg[1])
                if msg[2]:
                    state.batch(msg[1], msg[2].get("images"), state.model(msg[1]))
                conn.send(("prepared", msg[1]["cache_key"]))
            elif kind == "task":
                print(f"task {msg[1]['key']} {msg[1].get('label', '')}", flush=True)
                handle_task(conn, msg[1], state)
        except (BrokenPipeError, EOFError):
            return
        except Exception as exc:  # an infrastructure failure: report it, stay alive
            traceback.print_exc()
            try:
                if kind == "task":
                    conn.send(("done", msg[1]["key"],
                               {"status": "build_failed", "stage": "prepare",
                                "error": "worker failed preparing the task: " +
                                         _error_text(exc)}))
                else:
                    conn.send(("prepared", None))
            except (BrokenPipeError, OSError):
                return
