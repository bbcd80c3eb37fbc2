"""Weights: DeepMutation++'s model-level operators, on the constants of conv2d and dense layers.

DeepMutation++ (Hu et al., ASE 2019) mutates a trained model's weights: Gaussian Fuzzing (GF),
Weight Shuffling (WS), Neuron Effect Blocking (NEB), Neuron Activation Inverse (NAI), Neuron
Switch (NS) and Layer Deactivation (LD). Here they are graph-level rewrites of the Relax
constants a layer's weight and bias come from (see `layers`): a site is a layer, a neuron is
one of its output channels, and whatever the operator picks at random (which weights, which
neuron) comes from a ``numpy.random.Generator`` seeded with the ``seed`` parameter and the
site's index, so a mutant is reproducible and its choice is written into the applied site's
description, which the campaign stores with the results.

Arithmetic is done in real terms and stored back in the constant's own type: a quantized
uint8 weight is dequantized with its scale and zero point, changed, rounded and saturated back
to uint8 (so NEB's zero is the zero point, and NAI's negation of a weight the type cannot
represent saturates). A neuron's bias, when the layer has one, changes with its weights (NEB
zeroes it, NAI negates it, NS swaps it), as in DeepMutation++'s Keras implementation; GF and
WS change weights only. LD passes the layer's input through in place of its result (bias
included); batch norms and activations that follow stay.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tvm

from ..errors import OperatorError
from ..operator_spec import OperatorSpec, Param
from ..kernel_operators.params import Fraction, IndexOrRandom, NonNegativeInt, PositiveFloat
from .base import (GraphOperator, check_well_formed, relax_functions, static_shape,
                   tensor_dtype)
from .layers import BindingValueRewriter, Layer, StoredTensor, layers, replace_constant

#: This module's operators, read by the catalogue (`registry.operator_modules`).
OPERATORS: list[OperatorSpec] = []

CATEGORY = "Weights"


class SkipLayer(Exception):
    """Raised by a layer mutation that cannot or need not change the layer; the message is
    the reason the report gives."""


class LayerOperator(GraphOperator):
    """An operator whose sites are conv2d and dense layers and whose rewrites replace the
    values of the bindings holding the layer's constants.

    Subclasses implement ``mutate(layer, rng, params) -> (changes, detail)``: the new value of
    each changed binding, and the choices made, for the applied site's description.
    """

    def __init__(self):
        super().__init__(self._is_layer)

    @staticmethod
    def _is_layer(call, scope) -> bool:
        return scope.var_of(call) in layers(scope)

    def site_detail(self, binding, scope):
        layer = layers(scope)[binding.var]
        if layer.weight is None:
            return f"{layer.kind}, weight not a mutable constant"
        data = layer.weight.constant.value
        return (f"{layer.kind}, {layer.neurons} neurons, weight {list(data.shape)} "
                f"{data.dtype}" + (", with bias" if layer.bias is not None else ""))

    def mutate(self, layer: Layer, rng: np.random.Generator, params: dict):
        raise NotImplementedError

    def apply(self, mod: tvm.IRModule, sites, params):
        by_id = {c.site.id: c for c in self._candidates(mod)}
        missing = [s.id for s in sites if s.id not in by_id]
        if missing:
            raise OperatorError(f"no such site in this module: {', '.join(missing)}")
        values, applied, skipped = {}, [], []
        for site in sites:
            candidate = by_id[site.id]
            layer = layers(candidate.scope)[candidate.var]
            rng = np.random.default_rng([params.get("seed", 0), site.index])
            try:
                changes, detail = self.mutate(layer, rng, params)
            except SkipLayer as why:
                skipped.append((site, str(why)))
                continue
            values.update(changes)
            applied.append(dataclasses.replace(
                site, description=f"{site.description}; {detail}"))
        if not values:
            return mod, [], skipped
        rewriter = BindingValueRewriter(mod, values)
        functions = {s.function for s in applied}
        for gv, func in relax_functions(mod):
            if gv.name_hint in functions:
                rewriter.builder_.update_func(gv, rewriter.visit_expr(func))
        new_mod = rewriter.builder_.get()
        check_well_formed(new_mod)
        return new_mod, applied, skipped


def weight_tensor(layer: Layer) -> StoredTensor:
    """The layer's weight constant, or `SkipLayer` saying why it cannot be mutated."""
    if layer.weight is None:
        raise SkipLayer(f"the {layer.kind}'s weight cannot be mutated: {layer.problem}")
    return StoredTensor(layer.weight)


def _changes(weights: StoredTensor | None, stored: np.ndarray | None,
             bias: StoredTensor | None = None, bias_stored: np.ndarray | None = None) -> dict:
    """The new binding values that store ``stored`` as the weight (and ``bias_stored`` as
    the bias); the two always sit in different bindings."""
    changes = {}
    for tensor, new in ((weights, stored), (bias, bias_stored)):
        if tensor is not None and new is not None:
            changes.update(replace_constant(tensor.slot, new))
    return changes


def _neuron(layer: Layer, rng: np.random.Generator, given: int, name: str = "neuron") -> int:
    if given >= layer.neurons:
        raise SkipLayer(f"{name} {given} is out of range: the layer has {layer.neurons} "
                        "neurons")
    return int(rng.integers(layer.neurons)) if given < 0 else given


def _index(layer: Layer, neuron: int) -> tuple:
    index = [slice(None)] * len(layer.weight.constant.value.shape) if layer.weight else []
    index[layer.out_axis] = neuron
    return tuple(index)


def _bias(layer: Layer) -> StoredTensor | None:
    return StoredTensor(layer.bias) if layer.bias is not None else None


class GaussianFuzz(LayerOperator):
    """GF: add N(0, sigma * std(w)) to a seeded choice of round(ratio * n) of the n weights."""

    def mutate(self, layer, rng, params):
        weights = weight_tensor(layer)
        real = weights.real()
        spread = float(real.std())
        if spread == 0:
            raise SkipLayer(f"all {real.size} weights are equal (std 0): no scale for noise")
        count = max(1, round(params["ratio"] * real.size))
        chosen = rng.choice(real.size, count, replace=False)
        noise = rng.normal(0.0, params["sigma"] * spread, count)
        flat = real.reshape(-1).copy()
        flat[chosen] += noise
        stored = weights.store(flat.reshape(real.shape)).reshape(-1)
        original = weights.stored.reshape(-1)
        if weights.quantized:
            # Noise below half a step would round away: move such weights one step in the
            # noise's direction (the other way at the type's limit), so every chosen weight
            # changes, as in float.
            info = np.iinfo(weights.dtype)
            same = chosen[stored[chosen] == original[chosen]]
            step = np.where(noise[np.isin(chosen, same)] < 0, -1, 1)
            moved = original[same].astype(np.int64) + step
            moved = np.where((moved < info.min) | (moved > info.max),
                             original[same].astype(np.int64) - step, moved)
            stored[same] = moved.astype(weights.dtype)
        changed = int(np.count_nonzero(stored != original))
        return _changes(weights, stored.reshape(real.shape)), (
            f"seed {params['seed']}: {changed} of {real.size} weights changed "
            f"(ratio {params['ratio']}), noise std {params['sigma']} x {spread:.4g}")


class Shuffle(LayerOperator):
    """WS: shuffle one neuron's incoming weights (seeded permutation)."""

    def mutate(self, layer, rng, params):
        weights = weight_tensor(layer)
        neuron = _neuron(layer, rng, params["neuron"])
        real = weights.real()
        incoming = real[_index(layer, neuron)]
        if np.all(incoming == incoming.reshape(-1)[0]):
            raise SkipLayer(f"neuron {neuron}'s {incoming.size} incoming weights are all "
                            "equal: any shuffle is the identity")
        shuffled = incoming
        while np.array_equal(shuffled, incoming):
            shuffled = rng.permutation(incoming.reshape(-1)).reshape(incoming.shape)
        real[_index(layer, neuron)] = shuffled
        return _changes(weights, weights.store(real)), (
            f"seed {params['seed']}: neuron {neuron} of {layer.neurons}, "
            f"{incoming.size} weights shuffled")


class _NeuronValues(LayerOperator):
    """NEB and NAI: map one neuron's weights and bias through ``change``."""

    verb: str

    @staticmethod
    def change(values: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def mutate(self, layer, rng, params):
        weights, bias = weight_tensor(layer), _bias(layer)
        neuron = _neuron(layer, rng, params["neuron"])
        real = weights.real()
        real[_index(layer, neuron)] = self.change(real[_index(layer, neuron)])
        stored = weights.store(real)
        bias_stored = None
        if bias is not None:
            bias_real = bias.real().reshape(-1)
            bias_real[neuron] = self.change(bias_real[neuron])
            bias_stored = bias.store(bias_real.reshape(bias.stored.shape))
        if np.array_equal(stored, weights.stored) and \
                (bias is None or np.array_equal(bias_stored, bias.stored)):
            raise SkipLayer(f"neuron {neuron}'s weights{' and bias' if bias else ''} would not "
                            "change")
        return _changes(weights, stored, bias, bias_stored), (
            f"seed {params['seed']}: neuron {neuron} of {layer.neurons} {self.verb}"
            + (" (weights and bias)" if bias is not None else " (weights; no bias)"))


class BlockEffect(_NeuronValues):
    """NEB: zero one neuron's weights and bias, so its output channel is zero."""

    verb = "zeroed"

    @staticmethod
    def change(values):
        return np.zeros_like(values)


class InverseActivation(_NeuronValues):
    """NAI: negate one neuron's weights and bias, so its pre-activation changes sign."""

    verb = "negated"

    @staticmethod
    def change(values):
        return -values


class Switch(LayerOperator):
    """NS: swap two neurons' weights and biases."""

    def mutate(self, layer, rng, params):
        weights, bias = weight_tensor(layer), _bias(layer)
        if layer.neurons < 2:
            raise SkipLayer("the layer has one neuron: nothing to swap it with")
        first = _neuron(layer, rng, params["neuron"])
        if params["other"] >= 0:
            second = _neuron(layer, rng, params["other"], "other")
        else:
            second = int((first + 1 + rng.integers(layer.neurons - 1)) % layer.neurons)
        if first == second:
            raise SkipLayer(f"neuron and other are both {first}")
        real = weights.real()
        a, b = _index(layer, first), _index(layer, second)
        real[a], real[b] = real[b].copy(), real[a].copy()
        stored = weights.store(real)
        bias_stored = None
        if bias is not None:
            bias_real = bias.real().reshape(-1)
            bias_real[[first, second]] = bias_real[[second, first]]
            bias_stored = bias.store(bias_real.reshape(bias.stored.shape))
        if np.array_equal(stored, weights.stored) and \
                (bias is None or np.array_equal(bias_stored, bias.stored)):
            raise SkipLayer(f"neurons {first} and {second} are identical")
        return _changes(weights, stored, bias, bias_stored), (
            f"seed {params['seed']}: neurons {first} and {second} of {layer.neurons} swapped")


class Deactivate(LayerOperator):
    """LD: the layer's result (bias included) is its input."""

    def mutate(self, layer, rng, params):
        x, result = layer.call.args[0], layer.output_var
        shapes = (static_shape(x), static_shape(result))
        types = (tensor_dtype(x), tensor_dtype(result))
        if shapes[0] is None or shapes[0] != shapes[1] or types[0] != types[1]:
            raise SkipLayer(f"input {_show(shapes[0], types[0])} and output "
                            f"{_show(shapes[1], types[1])} differ")
        return {result: x}, f"the layer's result is its input {_show(*shapes[:1], types[0])}"


def _show(shape, dtype) -> str:
    return f"{list(shape) if shape is not None else '?'} {dtype}"


_SEED = Param("seed", 0, NonNegativeInt,
              "seeds every random choice (mixed with the site's index); recorded with the "
              "results")
_NEURON = Param("neuron", -1, IndexOrRandom,
                "the output channel to mutate; -1 picks one with the seeded generator")
_FINDS = ("Layers: calls to relax.nn.conv2d (ONNX Conv; TFLite CONV_2D, DEPTHWISE_CONV_2D) and "
          "dense relax.matmul (constant second operand: ONNX Gemm, MatMul; TFLite "
          "FULLY_CONNECTED), whose weight is a constant reached through dequantize or "
          "permute_dims only; the bias is the constant of the one add consuming the layer.")
_SKIPPED = " Skipped, with the reason, when the weight is not such a constant."

#: (ID, DeepMutation++ name, implementation, description, rewrite, params)
_OPERATORS = (
    ("weights_gaussian_fuzz", "GF", GaussianFuzz(),
     "Add Gaussian noise to a seeded fraction of a layer's weights (DeepMutation++ GF).",
     "round(ratio * n) of the n weights, chosen with the seeded generator, get N(0, sigma * "
     "std(w)) added; quantized weights are changed by at least one step, saturating.",
     (Param("ratio", 0.1, Fraction, "fraction of the layer's weights fuzzed, in (0, 1]"),
      Param("sigma", 1.0, PositiveFloat, "noise standard deviation, in units of std(w)"),
      _SEED)),
    ("weights_shuffle", "WS", Shuffle(),
     "Shuffle the incoming weights of one neuron of a layer (DeepMutation++ WS).",
     "the weights of one output channel are permuted (seeded); skipped when they are all "
     "equal.", (_NEURON, _SEED)),
    ("neuron_effect_block", "NEB", BlockEffect(),
     "Zero one neuron's weights and bias, so its output channel is zero (DeepMutation++ NEB).",
     "one output channel's weights and bias become 0 (the zero point, in quantized "
     "constants).", (_NEURON, _SEED)),
    ("neuron_activation_inverse", "NAI", InverseActivation(),
     "Negate one neuron's weights and bias, inverting its pre-activation (DeepMutation++ NAI).",
     "one output channel's weights and bias are negated (saturating in quantized "
     "constants).", (_NEURON, _SEED)),
    ("neuron_switch", "NS", Switch(),
     "Swap two neurons of a layer, weights and bias (DeepMutation++ NS).",
     "two output channels' weights and biases are exchanged; skipped when they are equal.",
     (_NEURON, Param("other", -1, IndexOrRandom,
                     "the channel to swap with; -1 picks another one with the seeded "
                     "generator"), _SEED)),
    ("layer_deactivation", "LD", Deactivate(),
     "Skip a layer whose input and output shapes match: its result is its input "
     "(DeepMutation++ LD).",
     "the binding of the layer's result (after its bias add, if any) becomes the layer's "
     "input; skipped when shapes or dtypes differ.", ()),
)

for _id, _name, _impl, _description, _rewrites, _params in _OPERATORS:
    OPERATORS.append(OperatorSpec(
        id=_id, level="graph", category=CATEGORY, from_paper=False, description=_description,
        finds=_FINDS, rewrites=_rewrites + ("" if _name == "LD" else _SKIPPED),
        params=_params, implementation=_impl))
