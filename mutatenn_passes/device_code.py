"""Compile a CUDA build's device code with nvcc, as a GPU machine does when it loads it.

TVM 0.27 keeps the kernels of a CUDA build as CUDA C source inside the executable and compiles
them only when the library is loaded on a GPU (its runtime calls ``tvm_callback_cuda_compile``:
NVRTC, or nvcc with ``TVM_CUDA_COMPILE_MODE=nvcc``). On a machine without a GPU nothing would
ever compile them, and a mutant whose CUDA code no compiler accepts would pass for built.
`build()` therefore compiles that source here, with TVM's own ``tvm.support.nvcc.compile_cuda``
(the flags of the runtime's nvcc mode) for the target's architecture, and keeps only the
verdict: the runtime compiles the source again when it loads the library.
"""

from __future__ import annotations

import re

import tvm
from tvm.support import nvcc

from .errors import BuildError


def cuda_sources(module) -> list[str]:
    """The CUDA C source of every CUDA device module imported by ``module``."""
    sources, pending = [], [module]
    while pending:
        current = pending.pop(0)
        pending.extend(current.imports)
        if current.kind == "cuda":
            sources.append(current.inspect_source("cuda"))
    return sources


def nvcc_error(exc: BaseException) -> str:
    """nvcc's first error line, without the temporary file's folder. (TVM's message repeats
    the whole source before nvcc's output.)"""
    for line in str(exc).splitlines():
        if re.search(r"\b(error|fatal)\b", line) and "tvm_kernels" in line:
            return line.strip().rsplit("/", 1)[-1]
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def compile_device_code(executable, target: tvm.target.Target) -> int:
    """Compile the CUDA device code of ``executable`` for ``target`` (its ``arch``) with nvcc
    to a cubin. Returns the number of device modules compiled; nvcc's rejection is a
    `BuildError` with its first error line."""
    sources = cuda_sources(executable.mod)
    for source in sources:
        try:
            with target:
                nvcc.compile_cuda(source, target_format="cubin", compiler="nvcc")
        except Exception as exc:  # nvcc's failure arrives as a RuntimeError with its output
            raise BuildError(f"nvcc rejects the generated CUDA code: {nvcc_error(exc)}") \
                from exc
    return len(sources)
