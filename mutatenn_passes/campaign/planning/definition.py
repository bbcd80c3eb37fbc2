"""A mutant's definition as plain data, and the one place it becomes a mutation pass again.

Planning applies each mutation to the IR and records the definition (operator, level, phase,
kernel filter, parameters, site indices) with the hash of the IR it made. A worker, in another
process, rebuilds the pass from that definition (`MutantDefinition.to_pass`), builds the mutant,
and checks that the IR it built hashes as planned (`MutantDefinition.ir_matches`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import tvm


def ir_hash(mod: tvm.IRModule, known: dict | None = None) -> str:
    """A structural hash of a module as 16 hex digits (what planning records), made of its
    functions' structural hashes by name and its attributes'. ``known`` (`function_hashes` of
    the module a mutation was applied to) spares hashing again a function that is that
    module's own object, as a mutation leaves every function it does not rewrite: planning
    hashed a kernel mutant's ~60 kernels to find the one it changed, a third of a second per
    campaign."""
    import tvm_ffi

    digest = hashlib.sha256()
    for gv, func in sorted(mod.functions_items(), key=lambda item: item[0].name_hint):
        same = (known or {}).get(gv.name_hint)
        value = same[1] if same and same[0].same_as(func) else tvm_ffi.structural_hash(func)
        digest.update(f"{gv.name_hint}={value:016x};".encode())
    if mod.attrs:
        digest.update(f"attrs={tvm_ffi.structural_hash(mod.attrs):016x}".encode())
    return digest.hexdigest()[:16]


def function_hashes(mod: tvm.IRModule) -> dict:
    """``mod``'s functions by name: (function, its structural hash), for `ir_hash`."""
    import tvm_ffi

    return {gv.name_hint: (func, tvm_ffi.structural_hash(func))
            for gv, func in mod.functions_items()}


@dataclass(frozen=True)
class MutantDefinition:
    """What reproduces one mutant: the arguments of `mutation` (picklable)."""

    operator: str
    level: str  # "graph" or "kernel"
    phase: str | None  # kernel level: where in the TIR pipeline; None for graph level
    kernels: str | None
    params: dict = field(default_factory=dict)
    site_indices: tuple[int, ...] = ()

    @classmethod
    def of_task_row(cls, row: dict) -> MutantDefinition:
        """The definition of a mutant task as `store.Store.tasks` returns it."""
        return cls(operator=row["operator"], level=row["level"], phase=row["phase"] or None,
                   kernels=row["kernels"], params=dict(row["params"] or {}),
                   site_indices=tuple(row["site_indices"]))

    def to_pass(self) -> tvm.transform.ModulePass:
        from ...mutation import mutation

        return mutation(self.operator, sites=list(self.site_indices), kernels=self.kernels,
                        phase=self.phase, **self.params)

    def build_arguments(self) -> dict:
        """The pass as `build` / `build_incremental` take it (``relax_passes`` for graph
        level, ``tir_passes`` for kernel level)."""
        return {"relax_passes" if self.level == "graph" else "tir_passes": [self.to_pass()]}

    def ir_matches(self, record, expected: str) -> bool | None:
        """Whether the build ``record`` holds mutated IR hashing to ``expected`` (None when
        there is nothing to compare)."""
        mutated = record.relax_input if self.level == "graph" \
            else record.tir.get(self.phase or "s_tir")
        if not expected or mutated is None:
            return None
        return ir_hash(mutated) == expected
