"""Compile a module's kernels in several processes at once: how the campaign's zygote builds
the originals its workers are forked with.

LLVM compiles one kernel after another in one thread, and the original's kernels are most of
what a campaign waits for before its first mutant runs: 2.2 s of the default model's
3.4 s preparation, 4.2 s for the MobileNet fixture's unscheduled (``-naive``) original.
`compile_kernels` splits the kernels into parts of similar size, forks one child per part but
the first, each of which compiles its part and exports it as a shared library, compiles the
first part here (JIT), and loads the children's libraries. The kernels, the LLVM and the
target are those of a build in one process, so outputs are bit-identical (tested).

Forking is safe only in a process that is single-threaded and runs no generated code, as the
campaign's zygote is (`campaign.running.zygote`); a library's user calling
`build.prepare_original` gets one process unless it asks for more.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import tvm

from .errors import BuildError
from .forking import fork
from .tir_pipeline import BuildRecord, tir_pipeline


def compile_kernels(kernels: tvm.IRModule, target: tvm.target.Target,
                    jobs: int) -> list[tvm.runtime.Module]:
    """``kernels`` (PrimFuncs, before TVM's TIR lowering) compiled in ``jobs`` processes: one
    library per part, the first JIT-compiled here, the others loaded from the children's
    shared libraries. Raises `BuildError` when a child fails (the caller builds in one
    process)."""
    parts = [p for p in _parts(kernels, jobs) if p]
    folder = Path(tempfile.mkdtemp(prefix="mutatenn-kernels-"))
    try:
        paths = [folder / f"part{i}.so" for i in range(1, len(parts))]
        children = [_fork_compile(part, target, path) for part, path in zip(parts[1:], paths)]
        try:
            first = _compile(parts[0], target)
            first.get_function(next(iter(parts[0])).name_hint)  # JIT-compiles the part
        finally:  # every child is waited for, even when this part failed
            statuses = [os.waitpid(pid, 0)[1] for pid in children]
        failed = [s for s, path in zip(statuses, paths) if s != 0 or not path.is_file()]
        if failed:
            raise BuildError(f"{len(failed)} process(es) compiling the original's kernels "
                             f"failed (wait status {failed[0]}; their output is in the log)")
        return [first] + [tvm.runtime.load_module(str(path)) for path in paths]
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # loaded libraries stay mapped


def _parts(kernels: tvm.IRModule, jobs: int) -> list[dict]:
    """The kernels in ``jobs`` parts of similar printed size, largest kernels placed first
    (the size of a kernel's TVMScript follows the size of its loops' bodies, which is what
    LLVM spends its time on)."""
    sized = sorted(((len(f.script(show_meta=False)), gv, f)
                    for gv, f in kernels.functions_items()),
                   key=lambda s: (-s[0], s[1].name_hint))
    parts: list[dict] = [{} for _ in range(max(1, jobs))]
    loads = [0] * len(parts)
    for size, gv, func in sized:
        i = loads.index(min(loads))
        parts[i][gv] = func
        loads[i] += size
    return parts


def _compile(functions: dict, target: tvm.target.Target) -> tvm.runtime.Module:
    with tir_pipeline(target, (), BuildRecord()) as pipeline:
        return tvm.compile(tvm.IRModule(functions), target, tir_pipeline=pipeline).mod


def _fork_compile(functions: dict, target: tvm.target.Target, path: Path) -> int:
    """Fork a child that compiles ``functions`` and exports them to ``path``; its pid."""
    return fork(lambda: _compile(functions, target).export_library(str(path)))
