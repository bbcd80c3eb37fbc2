"""Quantization Parameters, Weights (DeepMutation++) and weight bit flips: exact rewrites,
constants before and after, the numeric effect of each mutant when run, and site counts on the
quantized MobileNet fixture and the default model checked against the printed module."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
import tvm_ffi
from tvm import relax

import mutatenn_passes as mn
from mutatenn_passes import OperatorError, find_sites, mutation
from tests.conftest import load_cases

QUANT = None  # loaded below (TVMScript reads its source file)
WEIGHTS = ("weights_gaussian_fuzz", "weights_shuffle", "neuron_effect_block",
           "neuron_activation_inverse", "neuron_switch", "layer_deactivation")




QUANT = load_cases("graph_cases", "quantization")


def _run(mod: tvm.IRModule, *args: np.ndarray) -> np.ndarray:
    vm = relax.VirtualMachine(tvm.compile(mod, tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    return vm["main"](*[tvm.runtime.tensor(a) for a in args]).numpy()


def _constants(mod: tvm.IRModule) -> list[np.ndarray]:
    """Every tensor constant of ``main``, in binding order."""
    found = []

    @relax.expr_functor.visitor
    class Collect(relax.PyExprVisitor):
        def visit_generic_const_(self, const):
            found.append(const.value.numpy())

    Collect().visit_expr(mod["main"])
    return found


# --- small real modules ---------------------------------------------------------------------

RNG = np.random.default_rng(7)
W1 = RNG.normal(0, 0.5, (3, 2, 3, 3)).astype("float32")  # conv 2 -> 3, OIHW
B1 = np.array([0.5, -0.25, 1.0], "float32")
W2 = RNG.normal(0, 0.5, (3, 3, 3, 3)).astype("float32")  # conv 3 -> 3, same shape: LD site
WD = RNG.normal(0, 0.5, (5, 75)).astype("float32")  # Gemm-style [out, in], transposed
BD = RNG.normal(0, 0.1, (5,)).astype("float32")
X = RNG.normal(0, 1, (1, 2, 5, 5)).astype("float32")


def _float_net(w1=W1, b1=B1, upto: str = "") -> tvm.IRModule:
    """conv(2->3)+bias, relu, conv(3->3), dense(75->5)+bias, as the ONNX importer writes them
    (bias reshaped to [1, C, 1, 1]; the dense weight permuted); ``upto`` names the binding to
    stop at and return instead ("a1": the first layer, "c2": the second conv)."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 2, 5, 5), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            c1 = bb.emit(relax.op.nn.conv2d(x, relax.const(w1), padding=1))
            b1 = bb.emit(relax.op.reshape(relax.const(b1), [1, 3, 1, 1]))
            a1 = bb.emit(relax.op.add(c1, b1))
            r1 = bb.emit(relax.op.nn.relu(a1))
            c2 = bb.emit(relax.op.nn.conv2d(r1, relax.const(W2), padding=1))
            if upto:
                out = bb.emit_output({"a1": a1, "c2": c2}[upto])
            else:
                flat = bb.emit(relax.op.reshape(c2, [1, 75]))
                wt = bb.emit(relax.op.permute_dims(relax.const(WD), [1, 0]))
                d = bb.emit(relax.op.matmul(flat, wt))
                out = bb.emit_output(relax.op.add(d, relax.const(BD)))
        bb.emit_func_output(out)
    return bb.get()


WQ = RNG.integers(0, 256, (3, 3, 2, 3)).astype("uint8")  # HWIO, TFLite style
BQ = np.array([300, -200, 1000], "int32")


def _quantized_conv() -> tvm.IRModule:
    """A TFLite quantized conv: dequantized uint8 weight (zero point 128) and int32 bias."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 5, 5, 2), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            w = bb.emit(relax.op.dequantize(relax.const(WQ), relax.const(0.02, "float32"),
                                            relax.const(128, "int32"), axis=3))
            c = bb.emit(relax.op.nn.conv2d(x, w, padding=1, data_layout="NHWC",
                                           kernel_layout="HWIO"))
            b = bb.emit(relax.op.dequantize(relax.const(BQ), relax.const(0.0004, "float32"),
                                            relax.const(0, "int32"), axis=0))
            out = bb.emit_output(relax.op.add(c, b))
        bb.emit_func_output(out)
    return bb.get()


@pytest.fixture(scope="module")
def float_net():
    mod = _float_net()
    return mod, _run(mod, X)


# --- the catalogue --------------------------------------------------------------------------

def test_specs_and_presets():
    assert [s.id for s in mn.registry.resolve_operator_names("deepmutation")] == list(WEIGHTS)
    assert {s.category for s in mn.registry.resolve_operator_names("deepmutation")} == \
        {"Weights"}
    quantization = [s.id for s in mn.registry.resolve_operator_names("quantization")]
    assert sorted(quantization) == ["quant_round_toward_zero", "quant_scale_dec",
                                    "quant_scale_inc", "quant_zero_point_dec",
                                    "quant_zero_point_inc"]
    faults = [s.id for s in mn.registry.resolve_operator_names("faults")]
    assert faults == ["weight_bit_flip", "store_bit_flip", "store_stuck_at_0",
                      "store_stuck_at_1"]
    paper = mn.registry.resolve_operator_names("paper")
    assert len(paper) == 26 and all(s.category in mn.CATEGORIES[:6] for s in paper)
    assert len(mn.registry.resolve_operator_names("all")) == len(mn.operators())
    with pytest.raises(OperatorError, match="did you mean deepmutation"):
        mn.registry.resolve_operator_names("deepmutaton")


@pytest.mark.parametrize("op_id,params", [
    ("weights_gaussian_fuzz", {"ratio": 0}), ("weights_gaussian_fuzz", {"ratio": 1.5}),
    ("weights_gaussian_fuzz", {"sigma": 0}), ("neuron_switch", {"other": -2}),
    ("weight_bit_flip", {"seed": -1}), ("quant_scale_inc", {"delta": 0}),
    ("quant_zero_point_inc", {"k": 0})])
def test_bad_parameters_are_operator_errors(op_id, params):
    with pytest.raises(OperatorError, match=f"parameter {next(iter(params))}="):
        mutation(op_id, **params)


# --- Quantization Parameters ----------------------------------------------------------------

@pytest.mark.parametrize("op_id,params,sites,before,expected", QUANT.CASES,
                         ids=[c[0] for c in QUANT.CASES])
def test_quantization_rewrite_matches_the_hand_written_module(op_id, params, sites, before,
                                                              expected):
    assert not tvm_ffi.structural_equal(before, expected)
    pass_ = mutation(op_id, sites, **params)
    tvm.ir.assert_structural_equal(pass_(before), expected)
    assert pass_.report.applied and not pass_.report.skipped


def test_rounding_toward_zero_is_what_runs():
    x = np.array([[0.9, -0.9, 1.6, 100.0]], "float32")
    original = _run(QUANT.QuantizeDequantize, x)
    mutant = _run(mutation("quant_round_toward_zero")(QUANT.QuantizeDequantize), x)
    # x / 0.5 = 1.8, -1.8, 3.2, 200: rounded 2, -2, 3, saturated; truncated 1, -1, 3, saturated
    np.testing.assert_allclose(original, [[1.0, -1.0, 1.5, 62.0]])
    np.testing.assert_allclose(mutant, [[0.5, -0.5, 1.5, 62.0]])


def test_a_zero_point_at_its_type_limit_is_skipped():
    text = QUANT.QuantizeDequantize.script().replace('R.const(3, "int32")',
                                                     'R.const(3, "int8")')
    at_limit = tvm.script.from_source(text.replace("(3, ", "(127, ", 1))
    pass_ = mutation("quant_zero_point_inc", 0)
    pass_(at_limit)
    assert pass_.report.skipped[0][1] == "the zero point would not change"


# --- Weights --------------------------------------------------------------------------------

def _neuron(site) -> int:
    return int(re.search(r"neuron (\d+) of", site.description).group(1))


def test_layers_are_conv2d_and_dense_with_their_bias(float_net):
    mod, _ = float_net
    sites = find_sites("neuron_effect_block", mod)
    assert [s.kind for s in sites] == ["relax.nn.conv2d", "relax.nn.conv2d", "relax.matmul"]
    assert [s.description.split(": ")[1] for s in sites] == [
        "conv2d, 3 neurons, weight [3, 2, 3, 3] float32, with bias",
        "conv2d, 3 neurons, weight [3, 3, 3, 3] float32",
        "dense, 5 neurons, weight [5, 75] float32, with bias"]


@pytest.mark.parametrize("site", [0, 2])
def test_neuron_effect_block_zeroes_exactly_one_output_channel(float_net, site):
    mod, original = float_net
    pass_ = mutation("neuron_effect_block", site, seed=3)
    out = _run(pass_(mod), X)
    neuron = _neuron(pass_.report.applied[0])
    if site == 0:  # conv: the first layer's channel `neuron` (bias added) is exactly zero
        layer = _first_layer(pass_(mod))
        assert np.all(layer[0, neuron] == 0)
        reference = _first_layer(mod)
        others = [c for c in range(3) if c != neuron]
        np.testing.assert_array_equal(layer[0, others], reference[0, others])
        assert not np.allclose(out, original)
    else:  # dense: output `neuron` is exactly zero, the others unchanged
        assert out[0, neuron] == 0
        others = [c for c in range(5) if c != neuron]
        np.testing.assert_allclose(out[0, others], original[0, others], rtol=1e-6)


def _first_layer(mod: tvm.IRModule) -> np.ndarray:
    """The first layer's biased output on X, computed from ``mod``'s own constants."""
    w1, b1 = _constants(mod)[:2]
    return _run(_float_net(w1=w1, b1=b1, upto="a1"), X)


def test_neuron_activation_inverse_and_switch_on_a_dense_layer(float_net):
    mod, original = float_net
    inverse = mutation("neuron_activation_inverse", 2, neuron=1)
    out = _run(inverse(mod), X)
    np.testing.assert_allclose(out[0, 1], -original[0, 1], rtol=1e-5)
    np.testing.assert_allclose(out[0, [0, 2, 3, 4]], original[0, [0, 2, 3, 4]], rtol=1e-6)
    switch = mutation("neuron_switch", 2, neuron=0, other=3)
    out = _run(switch(mod), X)
    np.testing.assert_allclose(out[0, [3, 1, 2, 0, 4]], original[0], rtol=1e-6)
    assert "neurons 0 and 3 of 5 swapped" in switch.report.applied[0].description


def test_weights_shuffle_permutes_one_neurons_weights(float_net):
    mod, _ = float_net
    pass_ = mutation("weights_shuffle", 0, seed=5)
    before, after = _constants(mod)[0], _constants(pass_(mod))[0]
    neuron = _neuron(pass_.report.applied[0])
    changed = [o for o in range(3) if not np.array_equal(before[o], after[o])]
    assert changed == [neuron]
    np.testing.assert_array_equal(np.sort(after[neuron], axis=None),
                                  np.sort(before[neuron], axis=None))


@pytest.mark.parametrize("quantized", [False, True])
def test_gaussian_fuzz_changes_the_requested_ratio(quantized):
    mod = _quantized_conv() if quantized else _float_net()
    pass_ = mutation("weights_gaussian_fuzz", 0, ratio=0.25, sigma=0.5, seed=11)
    before, after = _constants(mod)[0], _constants(pass_(mod))[0]
    assert after.dtype == before.dtype == (np.uint8 if quantized else np.float32)
    assert np.count_nonzero(after != before) == round(0.25 * before.size)
    assert f"{round(0.25 * before.size)} of {before.size} weights changed" in \
        pass_.report.applied[0].description


def test_quantized_neuron_mutations_work_in_the_stored_type():
    mod = _quantized_conv()
    block = mutation("neuron_effect_block", 0, neuron=2)(mod)
    weight, _, _, bias, _, _ = _constants(block)
    assert np.all(weight[..., 2] == 128) and bias[2] == 0  # real zero: the zero point
    np.testing.assert_array_equal(weight[..., :2], WQ[..., :2])
    inverse = mutation("neuron_activation_inverse", 0, neuron=0)(mod)
    weight, _, _, bias, _, _ = _constants(inverse)
    expected = np.clip(256 - WQ[..., 0].astype(int), 0, 255)  # 2 * 128 - q, saturated
    np.testing.assert_array_equal(weight[..., 0], expected)
    assert bias[0] == -BQ[0]
    x = RNG.normal(0, 1, (1, 5, 5, 2)).astype("float32")
    out = _run(mutation("neuron_effect_block", 0, neuron=2)(mod), x)
    assert np.all(out[..., 2] == 0) and not np.all(out[..., :2] == 0)


def test_layer_deactivation_keeps_shapes_and_passes_the_input(float_net):
    mod, _ = float_net
    pass_ = mutation("layer_deactivation")
    mutant = pass_(mod)
    relax.analysis.well_formed(mutant)
    assert [s.index for s in pass_.report.applied] == [1]
    assert [(s.index, r) for s, r in pass_.report.skipped] == [
        (0, "input [1, 2, 5, 5] float32 and output [1, 3, 5, 5] float32 differ"),
        (2, "input [1, 75] float32 and output [1, 5] float32 differ")]
    tvm.ir.assert_structural_equal(mutant["main"].ret_ty, mod["main"].ret_ty)
    # conv 2 skipped: the dense layer reads relu(conv 1) directly
    relu = _first_layer(mod).clip(min=0)
    expected = relu.reshape(1, 75) @ WD.T + BD
    np.testing.assert_allclose(_run(mutant, X), expected, rtol=1e-5, atol=1e-6)


def test_choices_are_seeded_and_recorded(float_net):
    mod, _ = float_net
    runs = [mutation("neuron_switch", "all", seed=s) for s in (4, 4, 9)]
    mutants = [p(mod) for p in runs]
    tvm.ir.assert_structural_equal(mutants[0], mutants[1])
    assert not tvm_ffi.structural_equal(mutants[0], mutants[2])
    assert [s.description for s in runs[0].report.applied] == \
        [s.description for s in runs[1].report.applied]
    assert all("seed 4: neurons" in s.description for s in runs[0].report.applied)


def test_a_neuron_out_of_range_is_skipped_with_the_reason(float_net):
    pass_ = mutation("neuron_effect_block", 0, neuron=7)
    tvm.ir.assert_structural_equal(pass_(float_net[0]), float_net[0])
    assert pass_.report.skipped[0][1] == "neuron 7 is out of range: the layer has 3 neurons"


# --- weight bit flips -----------------------------------------------------------------------

@pytest.mark.parametrize("quantized,element,bit", [(False, 5, 30), (False, -1, -1),
                                                   (True, 7, 7), (True, -1, -1)])
def test_weight_bit_flip_changes_one_element_by_that_bit(quantized, element, bit):
    mod = _quantized_conv() if quantized else _float_net()
    pass_ = mutation("weight_bit_flip", 0, element=element, bit=bit, seed=2)
    before, after = _constants(mod)[0], _constants(pass_(mod))[0]
    width = before.dtype.itemsize * 8
    xor = before.view(f"uint{width}") ^ after.view(f"uint{width}")
    (changed,) = np.flatnonzero(xor)
    description = pass_.report.applied[0].description
    chosen = re.search(r"element (\d+) .* bit (\d+) of", description)
    assert (int(chosen.group(1)), 1 << int(chosen.group(2))) == (changed, xor.flat[changed])
    if element >= 0:
        assert (changed, xor.flat[changed]) == (element, 1 << bit)


def test_a_sign_bit_flip_runs(float_net):
    mod, original = float_net
    # bit 31 of the dense layer's weight [0, 0]: output 0 loses twice that weight's term
    out = _run(mutation("weight_bit_flip", 2, element=0, bit=31)(mod), X)
    flat = _run(_float_net(upto="c2"), X).reshape(-1)
    np.testing.assert_allclose(out[0, 0], original[0, 0] - 2 * WD[0, 0] * flat[0], rtol=1e-4)
    np.testing.assert_allclose(out[0, 1:], original[0, 1:], rtol=1e-6)


# --- real models: site counts checked against the printed module ---------------------------

def _count(mod, *ops: str) -> int:
    return sum(len(re.findall(rf"= R\.{re.escape(op)}\(", mod.script())) for op in ops)


@pytest.fixture(scope="module")
def tflite_model(shared_fixtures):
    return mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")


def test_site_counts_on_the_fixture(tflite_model):
    mod = tflite_model.mod
    layers = _count(mod, "nn.conv2d", "matmul")
    assert layers == 28
    for op in (*WEIGHTS, "weight_bit_flip"):
        assert len(find_sites(op, mod)) == layers, op
    qdq = _count(mod, "quantize", "dequantize")
    assert qdq == 114
    for op in ("quant_scale_inc", "quant_scale_dec", "quant_zero_point_inc",
               "quant_zero_point_dec"):
        assert len(find_sites(op, mod)) == qdq, op
    assert len(find_sites("quant_round_toward_zero", mod)) == _count(mod, "quantize") == 29
    pass_ = mutation("layer_deactivation")
    pass_(mod)
    print(f"\nmobilenet layer_deactivation: {len(pass_.report.applied)} of 28 layers keep "
          "their shape")
    assert len(pass_.report.applied) == 17  # 9 stride-1 depthwise 3x3s, 8 width-keeping 1x1s


def test_site_counts_on_the_default_model(default_model):
    mod = default_model.mod
    layers = _count(mod, "nn.conv2d", "matmul")
    assert layers == 50
    for op in (*WEIGHTS, "weight_bit_flip"):
        assert len(find_sites(op, mod)) == layers, op
    assert len(find_sites("quant_scale_inc", mod)) == _count(mod, "quantize",
                                                             "dequantize") == 0
