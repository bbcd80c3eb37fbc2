"""Kernel-level (TIR) mutation operators.

Each module lists its operators in an ``OPERATORS`` table that the catalogue reads
(`registry.operator_modules`): conditional statements, stores and loops, and hardware faults
at stores (Python, on TVM's structural mutation API) and arithmetic types (the C++ pass
extension, loaded from ``mutatenn_passes/_operators.so``; a missing or broken library is a
`NativeLibraryError` at this import).
"""

from . import arithmetic_types, conditions, faults, loops, stores  # noqa: F401
