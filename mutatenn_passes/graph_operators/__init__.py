"""Graph-level (Relax) mutation operators.

Importing this package registers every graph-level operator, one module per category: layer
node replacement, arithmetic node replacement, node input/output modifications, quantization
parameters, weights (DeepMutation++), and the hardware faults that live in weights.
"""

from . import (arithmetic_replacement, io_modifications, layer_replacement,  # noqa: F401
               quantization, weight_faults, weights)
