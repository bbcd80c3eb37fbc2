"""Hardware Faults in weights: one bit of one stored weight flips.

The fault-injection literature (PyTorchFI, TensorFI, LLTFI, Ares) models a soft error in
weight memory as a single flipped bit. Here the bit flips in the Relax constant a conv2d or
dense layer's weight comes from (the sites of the Weights operators, see `layers`), in the
type the model stores: float32 bits 0-31 (31 the sign, 30-23 the exponent), a quantized
model's uint8 or int8 bits 0-7. Which element and which bit are given, or chosen by a
``numpy.random.Generator`` seeded with ``seed`` and the site's index; the applied site's
description records them with the old and new values.
"""

from __future__ import annotations

import numpy as np

from ..operator_spec import OperatorSpec, Param
from ..kernel_operators.params import IndexOrRandom, NonNegativeInt
from .layers import replace_constant
from .weights import LayerOperator, SkipLayer, weight_tensor

#: This module's operators, read by the catalogue (`registry.operator_modules`).
OPERATORS: list[OperatorSpec] = []

CATEGORY = "Hardware Faults"


class WeightBitFlip(LayerOperator):
    """``weight_bit_flip``: XOR one bit of one element of a layer's weight constant."""

    def mutate(self, layer, rng, params):
        weights = weight_tensor(layer)
        stored = weights.stored
        width = stored.dtype.itemsize * 8
        if stored.dtype.kind not in "fiu":
            raise SkipLayer(f"the weight is {stored.dtype}: no bits to flip")
        element, bit = params["element"], params["bit"]
        if element >= stored.size:
            raise SkipLayer(f"element {element} is out of range: the weight has "
                            f"{stored.size} elements")
        if bit >= width:
            raise SkipLayer(f"bit {bit} is out of range: {stored.dtype} has {width} bits")
        element = int(rng.integers(stored.size)) if element < 0 else element
        bit = int(rng.integers(width)) if bit < 0 else bit
        flipped = stored.copy().reshape(-1)
        bits = flipped.view(f"uint{width}")
        bits[element] ^= np.array(1 << bit, dtype=bits.dtype)
        where = tuple(int(i) for i in np.unravel_index(element, stored.shape))
        return replace_constant(weights.slot, flipped.reshape(stored.shape)), (
            f"seed {params['seed']}: element {element} {list(where)} bit {bit} of "
            f"{stored.dtype}: {stored.reshape(-1)[element].item()!r} -> "
            f"{flipped[element].item()!r}")


OPERATORS.append(OperatorSpec(
    id="weight_bit_flip", level="graph", category=CATEGORY, from_paper=False,
    description="Flip one bit of one stored weight of a conv2d or dense layer.",
    finds="Layers: relax.nn.conv2d and dense relax.matmul whose weight is a constant reached "
          "through dequantize or permute_dims only (the Weights operators' sites).",
    rewrites="bit b of element i of the weight constant, in its stored type (float32, or the "
             "uint8/int8 of a quantized model), is inverted; i and b are given or seeded.",
    params=(Param("element", -1, IndexOrRandom,
                  "flat index of the weight element; -1 picks one with the seeded generator"),
            Param("bit", -1, IndexOrRandom,
                  "bit position (0 = least significant); -1 picks one with the seeded "
                  "generator"),
            Param("seed", 0, NonNegativeInt,
                  "seeds the random choices (mixed with the site's index)")),
    implementation=WeightBitFlip()))
