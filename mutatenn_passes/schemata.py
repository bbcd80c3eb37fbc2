"""Mutant schemata: many kernel-level mutants of one original compiled as one library and run
by switching kernels at run time, as Mull compiles mutants of LLVM IR once and selects one per
run.

A kernel-level mutant changes one kernel (rarely a few) of its original. Built one at a time
(`build.build_incremental`), each mutant still pays a fixed cost above compiling that kernel:
a TVM compilation of the model's Relax side, a library of its own, a virtual machine to set
up (with every weight copied in) and the library's JIT compilation in the run's child. A
`Schema` instead compiles the changed kernels of a group of mutants into one LLVM library, each
variant under its own symbol (``<kernel>__mutant<i>``), and builds one *switchboard*: the
original's Relax program in which every kernel a variant replaces is called through a
dispatcher (a global function the VM resolves when it is set up) and every other kernel straight
from the original's library. The library is JIT-compiled and the switchboard's VM set up once;
`Variant.run_array` points the dispatchers at one mutant's kernels and runs. A worker does
that in the forked child of each run, so a mutant that corrupts memory still takes down only
its child.

A variant's kernels are the same PrimFuncs a per-mutant build compiles, with the same target,
so its outputs are bit-identical to `build.build_incremental`'s (tested). Schemata need what
incremental builds need (an LLVM CPU target run in this process); mutants whose passes change
more than kernels (graph-level ones) are built one by one.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field

import tvm
from tvm import relax

from .build import (BuildRecord, OriginalBuild, _artifact, _calling_library, _changed_kernels,
                    _passes_by_phase, _tir_pipeline)
from .errors import BuildError

_schema_ids = itertools.count()


@dataclass
class Variant:
    """One mutant of a `Schema`: runs like an `Artifact` (``run_array``, ``record``)."""

    schema: Schema
    index: int
    record: BuildRecord
    kernels: dict[str, str]  # kernel name -> its symbol in the schema's library
    build_seconds: float = 0.0

    def _machine(self):
        return self.schema.artifact._machine()

    def run_array(self, batch):
        self.schema.select(self.index)
        return self.schema.artifact.run_array(batch)


@dataclass
class Schema:
    """Kernel mutants of one `OriginalBuild` in one library (see the module doc)."""

    original: OriginalBuild
    artifact: object  # the switchboard (an `Artifact`)
    library: tvm.runtime.Module | None
    variants: list[Variant] = field(default_factory=list)
    switched: list[str] = field(default_factory=list)  # kernels some variant replaces
    _table: dict = field(default_factory=dict, repr=False)

    def select(self, index: int) -> None:
        """Point every dispatcher at variant ``index``'s kernel, or the original's."""
        mine = self.variants[index].kernels
        for name in self.switched:
            self._table[name] = self.library.get_function(mine[name]) if name in mine \
                else self.original.library.get_function(name)


def build_schema(original: OriginalBuild, tir_pass_lists: list[list]) -> Schema:
    """Compile the kernel-level mutants given by ``tir_pass_lists`` (one list of passes per
    mutant, as `build.build_incremental` takes them) against ``original`` as one `Schema`.
    The library and the switchboard's VM are ready to run on return. Raises `BuildError` when
    the original cannot be linked against or TVM fails (the caller then builds one by one)."""
    if original.library is None:
        raise BuildError(f"no schema: {original.unavailable}")
    start = time.perf_counter()
    profile = original.profile
    variants, functions, lowered_phase = [], {}, None
    try:
        with tvm.transform.PassContext(opt_level=3):
            for i, passes in enumerate(tir_pass_lists):
                by_phase = _passes_by_phase(passes)
                if by_phase["s_tir"] and by_phase["lowered"]:
                    raise BuildError("a schema holds mutants of one phase")
                phase = "lowered" if by_phase["lowered"] else "s_tir"
                if lowered_phase is not None and (phase == "lowered") != lowered_phase:
                    raise BuildError("a schema holds mutants of one phase")
                lowered_phase = phase == "lowered"
                base = original.lowered_kernels() if lowered_phase else original.kernels
                mutated = tvm.transform.Sequential(by_phase[phase])(base)
                changed, renamed = _changed_kernels(mutated, base)
                if renamed:
                    raise BuildError("a kernel mutant renamed kernels: build it on its own")
                symbols = {name: f"{name}__mutant{i}" for name in changed}
                for name, func in changed.items():
                    functions[tvm.ir.GlobalVar(symbols[name])] = _renamed(func, symbols[name])
                shown = ", ".join(sorted(changed)[:6])
                record = BuildRecord(mode=f"schema ({len(changed)} kernel(s): {shown}; "
                                          f"{len(tir_pass_lists)} mutants in one library)",
                                     compiled=sorted(changed))
                record.tir[phase] = mutated
                variants.append((record, symbols))
            target = profile.tvm_target()
            library = None
            if functions:
                with _tir_pipeline(target, (), BuildRecord(),
                                   kernels_lowered=bool(lowered_phase)) as pipeline:
                    library = tvm.compile(tvm.IRModule(functions), target,
                                          tir_pipeline=pipeline).mod
                library.get_function(next(iter(functions)).name_hint)  # JIT-compiles it all
            switched = sorted({name for _, symbols in variants for name in symbols})
            schema = Schema(original=original, artifact=None, library=library,
                            switched=switched)
            schema.artifact = _switchboard(schema)
            schema.artifact._machine()  # set up the VM once, before any fork
    except BuildError:
        raise
    except Exception as exc:
        from .build import tvm_error_summary

        raise BuildError(f"building a schema of {len(tir_pass_lists)} mutant(s) failed: "
                         f"{tvm_error_summary(exc)}") from exc
    seconds = time.perf_counter() - start
    schema.variants = [Variant(schema, i, record, symbols, seconds / len(variants))
                       for i, (record, symbols) in enumerate(variants)]
    return schema


#: The prefix TVM's ``MakePackedAPI`` gives the symbol of a function callable by name.
PACKED_PREFIX = "__tvm_ffi_"


def _renamed(func: tvm.tirx.PrimFunc, name: str) -> tvm.tirx.PrimFunc:
    """``func`` exported as ``name`` (after TVM's lowering, under its packed-API symbol)."""
    old = str(func.attrs["global_symbol"]) if func.attrs and "global_symbol" in func.attrs \
        else ""
    return func.with_attr("global_symbol",
                          PACKED_PREFIX + name if old.startswith(PACKED_PREFIX) else name)


def _switchboard(schema: Schema):
    """The original's Relax program calling each switched kernel through a dispatcher and the
    others from the original's library (an `Artifact`; its VM resolves the dispatchers, global
    functions, when it is set up)."""
    original = schema.original
    prefix = f"mutatenn.schema.{uuid.uuid4().hex[:8]}.{next(_schema_ids)}."
    for name in schema.switched:
        tvm.register_global_func(prefix + name, _dispatcher(schema._table, name),
                                 override=True)
    mod = _calling_library(original.relax, {}, {n: prefix + n for n in schema.switched},
                           original.library)
    target = original.profile.tvm_target()
    with _tir_pipeline(target, (), BuildRecord()) as pipeline:
        executable = tvm.compile(mod, target, relax_pipeline=None, tir_pipeline=pipeline)
    art = _artifact(original.model, original.profile, executable, BuildRecord(mode="schema"),
                    0.0)
    # Straight from the executable's module: it holds no kernel of its own, only an empty
    # host module, which `Executable.jit` would export and link with the original's library
    # (LLVM code generation of every kernel again, ~1 s on ShuffleNet) for nothing.
    art._vm = relax.VirtualMachine(executable.mod, art.device())
    return art


def _dispatcher(table: dict, name: str):
    def dispatch(*args):
        return table[name](*args)

    return dispatch

