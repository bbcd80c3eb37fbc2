"""Kernel-level (TIR) mutation operators.

Importing this package registers every kernel operator: conditional statements, stores and
loops, and hardware faults at stores (Python, on TVM's structural mutation API) and arithmetic
types (the C++ pass extension,
loaded from ``mutatenn_passes/_operators.so``; a missing or broken library is a
`NativeLibraryError` at this import).
"""

from . import arithmetic_types, conditions, faults, loops, stores  # noqa: F401
