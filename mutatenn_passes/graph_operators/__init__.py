"""Graph-level (Relax) mutation operators.

One module per category, each listing its operators in an ``OPERATORS`` table that the
catalogue reads (`registry.operator_modules`): layer node replacement, arithmetic node
replacement, node input/output modifications, quantization parameters, weights
(DeepMutation++), and the hardware faults that live in weights.
"""

from . import (arithmetic_replacement, io_modifications, layer_replacement,  # noqa: F401
               quantization, weight_faults, weights)
