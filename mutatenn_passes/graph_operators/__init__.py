"""Graph-level (Relax) mutation operators.

Importing this package registers every graph-level operator: layer node replacement,
arithmetic node replacement and node input/output modifications, one module per category.
"""

from . import arithmetic_replacement, io_modifications, layer_replacement  # noqa: F401
