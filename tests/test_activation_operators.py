"""Layer Node Replacement for every activation the ONNX and TFLite importers emit: exact
rewrites of hand-written modules (as the TFLite importer writes them), every ONNX activation
imported from a real ONNX model and run after mutation, and on the quantized MobileNet fixture
and the default model, one site per activation layer, counted independently.
"""

from __future__ import annotations

import math
import re

import numpy as np
import onnx
import pytest
import tvm
import tvm_ffi
from onnx import TensorProto, helper
from tvm import relax
from tvm.relax.frontend.onnx import from_onnx

import mutatenn_passes as mn
from mutatenn_passes import find_sites, mutation
from mutatenn_passes.graph_operators.activations import activations
from mutatenn_passes.graph_operators.base import FunctionScope
from mutatenn_passes.images import preprocess
from tests.conftest import load_cases

CATEGORY = "Layer Node Replacement"
#: The category's operators from before activations were recognised in every form (their own
#: cases are in test_graph_operators.py).
POOLS_AND_RELU = {"relu_to_sigmoid", "relu_to_tanh", "sigmoid_to_relu", "max_pool_to_avg_pool",
                  "avg_pool_to_max_pool"}




ACT = load_cases("graph_cases", "activations")
LAYER_OPERATORS = [s.id for s in mn.operators() if s.category == CATEGORY]


def _run(mod: tvm.IRModule, x: np.ndarray) -> np.ndarray:
    vm = relax.VirtualMachine(tvm.compile(mod, tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


# --- the catalogue -------------------------------------------------------------------------

def test_activation_operators_are_registered_with_complete_specs():
    new = [mn.get_operator(i) for i in LAYER_OPERATORS if i not in POOLS_AND_RELU]
    assert len(new) == 15
    assert not any(s.from_paper for s in new)
    assert mn.get_operator("relu_to_sigmoid").from_paper
    for spec in new:
        assert spec.level == "graph" and spec.description and spec.finds and spec.rewrites
    covered = {case[0] for case in ACT.CASES} | set(ONNX_TO_RELU) | {"hard_sigmoid_to_sigmoid",
                                                                     "relu_to_tanh"}
    assert {s.id for s in new} <= covered


# --- exact rewrites (modules written as the TFLite importer emits them) ----------------------

@pytest.mark.parametrize("op_id,params,sites,before,expected", ACT.CASES,
                         ids=[f"{c[0]}-{c[3].__name__ if hasattr(c[3], '__name__') else i}"
                              for i, c in enumerate(ACT.CASES)])
def test_rewrite_matches_the_hand_written_module(op_id, params, sites, before, expected):
    assert not tvm_ffi.structural_equal(before, expected)
    pass_ = mutation(op_id, sites, **params)
    mutant = pass_(before)
    tvm.ir.assert_structural_equal(mutant, expected)
    relax.analysis.well_formed(mutant)
    assert len(pass_.report.applied) == 1 and not pass_.report.skipped


def test_an_activation_inside_a_larger_one_is_no_site_of_its_own():
    # TFLite's ELU holds two ReLUs; they are the ELU's, not ReLU layers
    assert find_sites("relu_to_sigmoid", ACT.TFLiteElu) == []
    (site,) = find_sites("elu_to_relu", ACT.TFLiteElu)
    assert site.id == "main/y" and "bound to y in main: elu (source " in site.description
    (clip,) = find_sites("relu6_to_sigmoid", ACT.QuantizedRelu6)
    assert "relu6 [0, 6] fused into quantize (scale 0.0235294" in clip.description
    assert "uint8 clip 0..255" in clip.description


@pytest.mark.parametrize("op_id,params", [
    ("relu6_to_relu", {}), ("activation_remove", {}), ("clip_bounds_change", {}),
    ("clip_bounds_change", {"lower": "-3"})])
def test_quantized_relu6_mutants_the_quantize_makes_equivalent_are_skipped(op_id, params):
    pass_ = mutation(op_id, **params)
    tvm.ir.assert_structural_equal(pass_(ACT.QuantizedRelu6), ACT.QuantizedRelu6)
    [(_, reason)] = pass_.report.skipped
    assert reason.startswith("equivalent: the quantize saturates uint8 to [0, 6] in real terms")


def test_the_equivalence_claim_holds_when_run():
    """Removing the fused clip by hand really computes the same stored values."""
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-12, 12, 4), rng.normal(0, 5, 4)]).astype("float32")
    without = _without_clip(ACT.QuantizedRelu6)
    assert not tvm_ffi.structural_equal(without, ACT.QuantizedRelu6)
    for row in x.reshape(2, 1, 4):
        np.testing.assert_array_equal(_run(without, row), _run(ACT.QuantizedRelu6, row))


def _without_clip(mod: tvm.IRModule) -> tvm.IRModule:
    """``QuantizedRelu6`` with its fused clip removed (``y = q``), built independently of the
    operators under test."""
    func = mod["main"]
    block = func.body.blocks[0]
    q = block.bindings[0]
    y = relax.VarBinding(block.bindings[1].var, q.var)
    body = relax.SeqExpr([relax.DataflowBlock([q, y])], func.body.body)
    return tvm.IRModule({"main": relax.Function(func.params, body, func.ret_ty, func.is_pure,
                                                func.attrs)})


def test_clip_bounds_are_checked():
    pass_ = mutation("clip_bounds_change", lower="4", upper="2")
    pass_(ACT.Relu6)
    assert pass_.report.skipped[0][1] == "the new bounds [4, 2] are empty"
    with pytest.raises(mn.OperatorError, match="parameter upper='six'"):
        mutation("clip_bounds_change", upper="six")


def test_integer_operands_are_skipped_or_no_activation():
    as_int8 = ACT.TanhLayer.script().replace('"float32"', '"int8"').replace("R.tanh", "R.nn.relu")
    pass_ = mutation("activation_remove")
    pass_(tvm.script.from_source(as_int8))
    assert "operand is int8" in pass_.report.skipped[0][1]
    # an integer clip that does not follow a quantize has no real-valued bounds: no activation
    int_clip = tvm.script.from_source(ACT.Relu6.script().replace('"float32"', '"int32"'))
    assert find_sites("relu6_to_sigmoid", int_clip) == find_sites("clip_to_relu", int_clip) == []


# --- every ONNX activation, imported and run ------------------------------------------------

#: (ONNX op, attributes, extra initializer inputs, kind recognised, numpy reference)
ONNX_ACTIVATIONS = [
    ("Relu", {}, [], "relu", lambda x: np.maximum(x, 0)),
    ("Sigmoid", {}, [], "sigmoid", lambda x: 1 / (1 + np.exp(-x))),
    ("Tanh", {}, [], "tanh", np.tanh),
    ("HardSwish", {}, [], "hard_swish", lambda x: x * np.clip(x + 3, 0, 6) / 6),
    ("HardSigmoid", {"alpha": 0.2, "beta": 0.5}, [], "hard_sigmoid",
     lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    ("LeakyRelu", {"alpha": 0.1}, [], "leaky_relu", lambda x: np.where(x > 0, x, 0.1 * x)),
    ("Softplus", {}, [], "softplus", lambda x: np.log1p(np.exp(x))),
    ("Elu", {"alpha": 1.0}, [], "elu", lambda x: np.where(x > 0, x, np.expm1(x))),
    ("Gelu", {}, [], "gelu",
     lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))),
    ("Clip", {}, [0.0, 6.0], "relu6", lambda x: np.clip(x, 0, 6)),
    ("Clip", {}, [-1.0, 1.0], "clip", lambda x: np.clip(x, -1, 1)),
    ("Clip", {}, [0.0], "relu", lambda x: np.maximum(x, 0)),  # no upper bound: a ReLU
    ("Swish", {}, [], "silu", lambda x: x / (1 + np.exp(-x))),
]
#: Operators turning each kind into a ReLU (hard-sigmoid and tanh become sigmoids instead).
ONNX_TO_RELU = ("sigmoid_to_relu", "hard_swish_to_relu", "leaky_relu_to_relu",
                "softplus_to_relu", "elu_to_relu", "gelu_to_relu", "relu6_to_relu",
                "clip_to_relu", "silu_to_relu")
WIDTH = 8


def _onnx_activations_model() -> onnx.ModelProto:
    """One input, each activation on its own branch, the branches concatenated."""
    nodes, inits, outputs = [], [], []
    for i, (op, attrs, bounds, _, _) in enumerate(ONNX_ACTIVATIONS):
        out = f"y{i}"
        if op == "Swish":
            nodes += [helper.make_node("Sigmoid", ["x"], [f"s{i}"]),
                      helper.make_node("Mul", ["x", f"s{i}"], [out])]
        else:
            names = [f"b{i}_{j}" for j in range(len(bounds))]
            inits += [helper.make_tensor(n, TensorProto.FLOAT, [], [v])
                      for n, v in zip(names, bounds)]
            nodes.append(helper.make_node(op, ["x", *names], [out], **attrs))
        outputs.append(out)
    nodes.append(helper.make_node("Concat", outputs, ["y"], axis=1))
    graph = helper.make_graph(
        nodes, "activations", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                       [1, WIDTH * len(ONNX_ACTIVATIONS)])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def onnx_activations():
    mod = from_onnx(_onnx_activations_model(), keep_params_in_input=False)
    x = np.linspace(-7.5, 7.5, WIDTH, dtype="float32").reshape(1, WIDTH)
    return mod, x


def _branches(out: np.ndarray) -> list[np.ndarray]:
    return np.split(out.reshape(-1), len(ONNX_ACTIVATIONS))


def test_each_onnx_activation_is_recognised_once_as_its_kind(onnx_activations):
    mod, x = onnx_activations
    scope = FunctionScope("main", mod["main"])
    found = activations(scope)
    (concat,) = [b.value for b in scope.bindings if b.value.op.name == "relax.concat"]
    # the branches in the ONNX graph's order (the importer emits their ops in another)
    assert [found[v].kind for v in concat.args[0].fields] == \
        [kind for *_, kind, _ in ONNX_ACTIVATIONS]
    assert len(found) == len(ONNX_ACTIVATIONS)  # the sigmoid of x * sigmoid(x) is no layer
    # the unmutated import computes the references (the test's numpy is right)
    for branch, (*_, reference) in zip(_branches(_run(mod, x)), ONNX_ACTIVATIONS):
        np.testing.assert_allclose(branch, reference(x.reshape(-1)), rtol=1e-4, atol=1e-5)


def test_removing_every_onnx_activation_passes_the_input_through(onnx_activations):
    mod, x = onnx_activations
    pass_ = mutation("activation_remove")
    out = _run(pass_(mod), x)
    assert len(pass_.report.applied) == len(ONNX_ACTIVATIONS)
    for branch in _branches(out):
        np.testing.assert_array_equal(branch, x.reshape(-1))


def test_replacing_every_onnx_activation_computes_the_replacement(onnx_activations):
    mod, x = onnx_activations
    passes = [mutation(op) for op in (*ONNX_TO_RELU, "hard_sigmoid_to_sigmoid",
                                      "tanh_to_sigmoid")]
    out = _run(tvm.transform.Sequential(passes)(mod), x)
    assert all(len(p.report.applied) == 1 for p in passes), \
        [(p.spec.id, len(p.report.applied)) for p in passes]
    relu, sigmoid = np.maximum(x.reshape(-1), 0), 1 / (1 + np.exp(-x.reshape(-1)))
    for branch, (_, _, _, kind, _) in zip(_branches(out), ONNX_ACTIVATIONS):
        expected = sigmoid if kind in ("hard_sigmoid", "tanh") else relu
        np.testing.assert_allclose(branch, expected, rtol=1e-5, atol=1e-6, err_msg=kind)


def test_clip_bounds_change_on_onnx_clips(onnx_activations):
    mod, x = onnx_activations
    original = _branches(_run(mod, x))
    pass_ = mutation("clip_bounds_change", lower="-2", upper="2")
    out = _branches(_run(pass_(mod), x))
    assert [s.description.split(": ")[1] for s in pass_.report.applied] == \
        ["relu6 [0, 6]", "clip [-1, 1]"]
    for i, (branch, (_, _, _, kind, _)) in enumerate(zip(out, ONNX_ACTIVATIONS)):
        expected = np.clip(x.reshape(-1), -2, 2) if kind in ("relu6", "clip") else original[i]
        np.testing.assert_allclose(branch, expected, rtol=1e-6, err_msg=kind)


# --- real models: one site per activation layer, counted independently ----------------------

def _activation_layers(mod: tvm.IRModule) -> set[str]:
    """Activation bindings read off the printed module: ReLUs, and integer clips of a
    quantize's result (TFLite's fused activations)."""
    text = mod.script()
    quantized = set(re.findall(r'(\w+): R\.Tensor\(.*?dtype="u?int8"\) = R\.quantize\(', text))
    relus = re.findall(r"(\w+): R\.Tensor\(.*?\) = R\.nn\.relu\(", text)
    clips = [v for v, operand in re.findall(r"(\w+): R\.Tensor\(.*?\) = R\.clip\((\w+),", text)
             if operand in quantized]
    return {f"main/{v}" for v in relus + clips}


def _layer_sites(mod) -> dict[str, int]:
    return {op: len(find_sites(op, mod)) for op in LAYER_OPERATORS}


@pytest.fixture(scope="module")
def tflite_model(shared_fixtures):
    return mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")


def _check_every_layer_has_a_site(mod, expected_layers: int):
    layers = _activation_layers(mod)
    assert len(layers) == expected_layers
    sites = {s.id for op in LAYER_OPERATORS for s in find_sites(op, mod)}
    assert layers <= sites, sorted(layers - sites)[:5]


def test_mobilenet_every_fused_relu6_is_a_site(tflite_model):
    _check_every_layer_has_a_site(tflite_model.mod, 27)
    counts = _layer_sites(tflite_model.mod)
    print("\nmobilenet_v1_0.25_128_quant:", {k: v for k, v in counts.items() if v})
    assert {k: v for k, v in counts.items() if v} == {
        "relu6_to_relu": 27, "relu6_to_sigmoid": 27, "relu6_to_tanh": 27,
        "activation_remove": 27, "clip_bounds_change": 27, "avg_pool_to_max_pool": 1}
    # where the quantize's range is [0, 6], only a replacement outside [0, 6] is a mutant
    for op, applied in (("relu6_to_sigmoid", 27), ("relu6_to_relu", 0),
                        ("activation_remove", 0), ("clip_bounds_change", 0)):
        pass_ = mutation(op)
        pass_(tflite_model.mod)
        assert len(pass_.report.applied) == applied, op


def test_default_model_every_relu_is_a_site(default_model):
    _check_every_layer_has_a_site(default_model.mod, 33)
    counts = _layer_sites(default_model.mod)
    print("\nshufflenet:", {k: v for k, v in counts.items() if v})
    assert {k: v for k, v in counts.items() if v} == {
        "relu_to_sigmoid": 33, "relu_to_tanh": 33, "activation_remove": 33,
        "max_pool_to_avg_pool": 1, "avg_pool_to_max_pool": 4}


def test_a_relu6_replacement_changes_the_fixture_outputs(tflite_model, shared_fixtures):
    """The first-site mutant beside the original in one module: one build runs both."""
    pass_ = mutation("relu6_to_sigmoid", sites=0)
    mutant = pass_(tflite_model.mod)
    assert [s.index for s in pass_.report.applied] == [0]
    both = tvm.IRModule({"main": tflite_model.mod["main"], "mutant": relax.utils.copy_with_new_vars(
        mutant["main"]).with_attr("global_symbol", "mutant")})
    vm = relax.VirtualMachine(tvm.compile(both, tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    image = preprocess(mn.load_images([shared_fixtures / "cat.bmp"]), tflite_model.preprocess)
    x = tvm.runtime.tensor(image[:1])
    original, mutated = vm["main"](x).numpy(), vm["mutant"](x).numpy()
    assert original.argmax() == 283  # tiger cat (../shared/fixtures/SOURCES.md)
    assert not np.array_equal(mutated, original)
