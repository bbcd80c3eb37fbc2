"""Mutant schemata: the changed kernels of many mutants of one original compiled as one
library, as Mull compiles the mutants of a program's LLVM IR once.

Built one at a time (`build.build_incremental`), each mutant pays a fixed cost above the
kernels it changes: a TVM compilation of its Relax program together with its kernels, a
library of its own, and that library's JIT compilation when it first runs. A `Schema` puts
the changed kernels of a group of mutants (`build.mutant_kernels`) into one LLVM library, each
distinct body once, under its own symbol (``<kernel>__mutant<i>``), compiled and JIT-compiled
once. Each mutant is
then only its Relax program, in which every kernel is a `relax.ExternFunc`: its changed ones
by their symbol in the schema's library, the others by their name in the original's. That
program holds no kernel of its own, so it compiles in milliseconds and its VM is set up
straight from the executable's module (no JIT or linking).

A variant's kernels are the PrimFuncs a per-mutant build compiles, for the same target, so its
outputs are bit-identical to `build.build_incremental`'s (tested). Schemata need what
incremental builds need (an LLVM CPU target run in this process) and one kernel phase per
schema: mutants whose changed kernels went through TVM's TIR lowering (``lowered``-phase
kernel mutants) are compiled apart from those that did not (graph-level and ``s_tir`` ones).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import tvm

from .build import OriginalBuild, _linked_artifact, mutant_kernels, tvm_error_summary
from .errors import BuildError
from .kernel_ir import KernelsByBody
from .tir_pipeline import BuildRecord, tir_pipeline

#: The prefix TVM's ``MakePackedAPI`` gives the symbol of a function callable by name.
PACKED_PREFIX = "__tvm_ffi_"


@dataclass
class Schema:
    """A group of mutants of one `OriginalBuild` compiled together (see the module doc):
    ``variants`` are their artifacts, in the order given, ready to run in this process."""

    original: OriginalBuild
    library: tvm.runtime.Module | None
    variants: list = field(default_factory=list)


def build_schema(original: OriginalBuild, mutants: list[dict], *,
                 from_cut: bool = False) -> Schema:
    """Compile ``mutants`` (each the keyword arguments of `build.build_incremental`:
    ``relax_passes`` and/or ``tir_passes``) against ``original`` as one `Schema`; with
    ``from_cut``, each variant's program starts at its first changed cut (as
    `build.build_incremental`'s does). Raises
    `BuildError` when the original cannot be linked against, the mutants mix kernel phases or
    TVM fails (the caller then builds them one by one)."""
    if not original.libraries:
        raise BuildError(f"no schema: {original.unavailable}")
    start = time.perf_counter()
    try:
        with tvm.transform.PassContext(opt_level=3):
            changes = [mutant_kernels(original, list(m.get("relax_passes", ())),
                                      list(m.get("tir_passes", ())), from_cut)
                       for m in mutants]
            if len({c.kernels_lowered for c in changes}) > 1:
                raise BuildError("a schema holds mutants of one kernel phase")
            library, symbols = _library(original, changes)
            variants = [_variant(original, change, mine, library, len(changes))
                        for change, mine in zip(changes, symbols)]
    except BuildError:
        raise
    except Exception as exc:  # TVM raises many types
        raise BuildError(f"building a schema of {len(mutants)} mutant(s) failed: "
                         f"{tvm_error_summary(exc)}") from exc
    seconds = time.perf_counter() - start
    for art in variants:
        art.build_seconds = seconds / len(variants)
    return Schema(original, library, variants)


def _symbol(name: str, index: int) -> str:
    return f"{name}__mutant{index}"


def _library(original: OriginalBuild, changes: list) -> tuple[tvm.runtime.Module | None, list]:
    """Every changed kernel of every mutant in one library, JIT-compiled (None: nothing
    changed), and per mutant the symbol of each of its changed kernels there. Kernels of
    equal bodies are compiled once: mutants at sites of equal shapes (a ReLU replaced in two
    blocks of one stage) change their fused kernels alike."""
    functions, symbols, compiled = {}, [], KernelsByBody()
    for i, change in enumerate(changes):
        mine = {}
        for name, func in change.changed.items():
            mine[name] = compiled.setdefault(_symbol(name, i), func)
            if mine[name] == _symbol(name, i):  # the first of its body
                functions[tvm.ir.GlobalVar(mine[name])] = _renamed(func, mine[name])
        symbols.append(mine)
    if not functions:
        return None, symbols
    target = original.profile.tvm_target()
    with tir_pipeline(target, (), BuildRecord(), kernels_lowered=changes[0].kernels_lowered) \
            as pipeline:
        library = tvm.compile(tvm.IRModule(functions), target, tir_pipeline=pipeline).mod
    library.get_function(next(iter(functions)).name_hint)  # JIT-compiles the whole library
    return library, symbols


def _renamed(func: tvm.tirx.PrimFunc, name: str) -> tvm.tirx.PrimFunc:
    """``func`` exported as ``name`` (after TVM's lowering, under its packed-API symbol)."""
    old = str(func.attrs["global_symbol"]) if func.attrs and "global_symbol" in func.attrs \
        else ""
    return func.with_attr("global_symbol",
                          PACKED_PREFIX + name if old.startswith(PACKED_PREFIX) else name)


def _variant(original: OriginalBuild, change, compiled: dict, library, size: int):
    """A mutant's artifact: its Relax program calling its changed kernels in the schema's
    ``library`` (by the symbols ``compiled`` gives them) and the others in the original's."""
    symbols = {**change.renamed, **compiled}
    libraries = original.libraries + ([library] if library is not None else [])
    record = change.record
    record.mode = f"schema ({len(record.compiled)} kernel(s): {record.compiled_shown()}; " \
        f"{size} mutants in one library){change.cut_note()}"
    art = _linked_artifact(original.model, original.profile, change.relax, symbols, libraries,
                           record)
    art.cut = change.cut
    return art
