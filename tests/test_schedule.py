"""CPU schedules: each rule transforms real kernels and computes what they computed, the
scheduled build agrees with the unscheduled one and with ONNX Runtime, and kernel-level
operators find sites in the scheduled kernels."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
import tvm_ffi
from tvm import s_tir, tirx
from tvm.s_tir.meta_schedule.arg_info import ArgInfo

import mutatenn_passes as mn
from mutatenn_passes.errors import TargetError
from mutatenn_passes.kernel_ir import kernel_module, tir_part
from mutatenn_passes.mutation import find_sites
from mutatenn_passes.registry import CATEGORIES, operators
from mutatenn_passes.schedule import default_rules, scheduled_cpu_pipeline
from mutatenn_passes.schedule.pipeline import graph_preparation
from mutatenn_passes.schedule.rules.common import VectorUnit
from mutatenn_passes.targets import parse_profile

TARGET = "llvm-x86-64"
NAIVE = "llvm-x86-64-naive"
#: A target with fused multiply-add, for the tiles only such targets take.
FMA_TARGET = "llvm-avx2"


def _unscheduled_kernels(model) -> dict[str, tirx.PrimFunc]:
    """The model's fused kernels exactly as the rules receive them."""
    target = mn.get_profile(TARGET).tvm_target()
    with tvm.transform.PassContext(opt_level=3):
        mod = scheduled_cpu_pipeline(target, rules=[])(model.mod)
    return {gv.name_hint: f for gv, f in tir_part(mod).functions_items()}


def _first_rule(func, target):
    """The rule `ApplyDefaultSchedule` uses for ``func`` (the first that matches) and its
    schedule."""
    for rule in default_rules():
        sch = rule.apply(func, target, False)
        if sch is not None:
            return type(rule).__name__, sch
    return None, None


def _loop_kinds(func) -> set:
    kinds = set()

    def visit(loop):
        kinds.add(loop.kind)

    tvm_ffi.structural_walk(func.body, (tirx.For, visit))
    return kinds


def _run(func, target, inputs):
    func = func.with_attr("global_symbol", "main")
    lib = tvm.compile(tvm.IRModule({"main": func}), target=target)
    args = [tvm.runtime.tensor(a) for a in inputs]
    lib["main"](*args)
    return args[-1].numpy()


def _random_inputs(func, seed):
    rng = np.random.default_rng(seed)
    arrays = []
    for info in ArgInfo.from_prim_func(func):
        shape = [int(s) for s in info.shape]
        dtype = str(info.dtype)
        arrays.append(rng.integers(0, 255, size=shape).astype(dtype) if "int" in dtype
                      else rng.standard_normal(shape).astype(dtype))
    return arrays


def _scheduled_by(rule_name: str, func, target):
    """``func`` as the first matching default rule schedules it, checking that the rule is
    ``rule_name``."""
    with target:
        rule, sch = _first_rule(func, target)
    assert rule == rule_name
    return sch.mod["main"]


def _outputs(func, scheduled, target, seed):
    """The outputs of ``func`` and of ``scheduled`` on the same random inputs."""
    inputs = _random_inputs(func, seed=seed)
    return (_run(func, target, [a.copy() for a in inputs]),
            _run(scheduled, target, [a.copy() for a in inputs]))


@pytest.fixture(scope="module")
def fixture_model(shared_fixtures):
    return mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")


def _check_rules_on(model):
    """Schedule every kernel of ``model``; for the first kernel of each rule, check that it is
    transformed (parallel and vectorized loops) and computes the unscheduled kernel's values.
    Returns {rule name: kernels it scheduled}."""
    target = mn.get_profile(TARGET).tvm_target()
    used: dict[str, list[str]] = {}
    checked = set()
    for name, func in _unscheduled_kernels(model).items():
        with target:
            rule, sch = _first_rule(func, target)
        assert rule is not None, f"no rule schedules {name}"
        used.setdefault(rule, []).append(name)
        if rule in checked:
            continue
        checked.add(rule)
        scheduled = sch.mod["main"]
        kinds = _loop_kinds(scheduled)
        assert tirx.ForKind.PARALLEL in kinds, (rule, name)
        if rule != "ParallelReduction":
            assert tirx.ForKind.VECTORIZED in kinds, (rule, name)
        inputs = _random_inputs(func, seed=len(checked))
        expected = _run(func, target, [a.copy() for a in inputs])
        actual = _run(scheduled, target, [a.copy() for a in inputs])
        if expected.dtype.kind == "f":
            scale = max(float(np.abs(expected).max()), 1e-30)
            assert np.abs(actual - expected).max() / scale <= 1e-5, (rule, name)
        else:
            assert np.abs(actual.astype(np.int64) - expected).max() <= 1, (rule, name)
    return used


def test_every_kernel_of_the_default_model_is_scheduled_and_right(default_model):
    used = _check_rules_on(default_model)
    assert {"Conv2D", "Matmul", "Pool", "Elementwise", "ParallelReduction"} <= set(used)


def test_every_kernel_of_the_quantized_fixture_is_scheduled_and_right(fixture_model):
    used = _check_rules_on(fixture_model)
    assert {"Conv2D", "Pool", "Elementwise"} <= set(used)  # NHWC, depthwise, requantize


def test_conv2d_vectorizes_output_channels_of_blocked_weights(default_model):
    """PackConvWeights stores a regular conv2d's constant weights in blocks of its vector
    tile of output channels (24 channels, SSE2: tiles of 8, so ``OHWI8o``), so a regular
    NCHW conv2d vectorizes its output channels: the view of them as ``HWIO`` that its
    legalization makes is inlined, the vector loop runs over the channels (ff), a block's
    width, and the values stay the unscheduled kernel's."""
    kernels = _unscheduled_kernels(default_model)
    name = next(n for n in kernels if n.startswith("fused_conv2d_"))
    func = kernels[name]
    assert "T.Buffer((T.int64(3), T.int64(3), T.int64(3), T.int64(3), T.int64(8))" in \
        func.script()
    assert 'T.sblock("kernel")' in func.script()
    target = mn.get_profile(TARGET).tvm_target()
    scheduled = _scheduled_by("Conv2D", func, target)
    assert 'T.sblock("kernel")' not in scheduled.script()
    vector_loops = []
    tvm_ffi.structural_walk(scheduled.body, (tirx.For, lambda loop: vector_loops.append(
        (loop.loop_var.name[:2], int(loop.extent))) if loop.kind == tirx.ForKind.VECTORIZED
        else None))
    assert ("ff", 8) in vector_loops, vector_loops
    expected, actual = _outputs(func, scheduled, target, seed=2)
    assert np.abs(actual - expected).max() / np.abs(expected).max() <= 1e-5


def _register_tiles(func) -> set:
    """{(unrolled extent, vector extent)} of the unrolled loops directly around a vector
    loop: the register tiles (accumulators' initialisation and update)."""
    tiles = set()

    def visit(loop):
        if loop.kind == tirx.ForKind.UNROLLED and isinstance(loop.body, tirx.For) and \
                loop.body.kind == tirx.ForKind.VECTORIZED:
            tiles.add((int(loop.extent), int(loop.body.extent)))

    tvm_ffi.structural_walk(func.body, (tirx.For, visit))
    return tiles


def test_conv2d_on_a_13_wide_output_takes_one_vector_of_13_pixels(tmp_path):
    """13 has no divisor from 2 to 12: two vectors of output channels would leave a tile of one
    pixel (two accumulators), so the tile is one vector of channels and 13 pixels, and the
    values stay the unscheduled kernel's (SqueezeNet's last stage is 13 x 13)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(6).standard_normal((32, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "conv13",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 13, 13])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 13, 13])],
        initializer=[numpy_helper.from_array(weight, "w")])
    path = tmp_path / "conv13.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    kernels = _unscheduled_kernels(mn.load_model(path))
    name = next(n for n in kernels if "conv2d" in n)
    func = kernels[name]
    target = mn.get_profile(TARGET).tvm_target()
    scheduled = _scheduled_by("Conv2D", func, target)
    assert _register_tiles(scheduled) == {(13, VectorUnit.of(target).lanes)}
    expected, actual = _outputs(func, scheduled, target, seed=6)
    assert np.abs(actual - expected).max() / np.abs(expected).max() <= 1e-5


def _conv_model(tmp_path, channels: int, outputs: int, size: int, window: int, seed: int):
    """A one-convolution ONNX model (bias and ReLU after it, padding keeping the size)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((outputs, channels, window, window)).astype(np.float32)
    bias = rng.standard_normal(outputs).astype(np.float32)
    pad = window // 2
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[pad] * 4),
         helper.make_node("Relu", ["c"], ["y"])], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, outputs, size, size])],
        initializer=[numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return mn.load_model(path)


def test_blocked_conv_weights_compute_the_model(tmp_path):
    """A regular convolution's weights blocked by its vector tile (48 channels in blocks of 8
    on SSE2) and legalized through their ``HWIO`` view: the scheduled build computes what
    the unscheduled build (which keeps ONNX's ``OIHW``) does."""
    model = _conv_model(tmp_path, 32, 48, 14, 3, 9)
    target = mn.get_profile(TARGET).tvm_target()
    with target:
        prepared = tvm.transform.Sequential(graph_preparation(target))(model.mod)
    assert 'kernel_layout="OHWI8o"' in prepared.script()
    batch = np.random.default_rng(9).standard_normal((2, 32, 14, 14)).astype(np.float32)
    scheduled, naive = (mn.build(model, t).run_array(batch)[0] for t in (TARGET, NAIVE))
    assert np.abs(scheduled - naive).max() / np.abs(naive).max() <= 1e-5


def test_conv2d_over_1000_channels_takes_a_power_of_two_vector_on_avx512(tmp_path):
    """SqueezeNet's classifier: 1000 output channels have no divisor that is a whole AVX-512
    vector; the tile is 8 channels (a 256-bit register), not 10 (split by LLVM into 8 + 2
    lanes per load and store), with 13 pixels, and the values stay the unscheduled
    kernel's."""
    profile = mn.get_profile("llvm-avx512")
    kernels = _unscheduled_kernels(_conv_model(tmp_path, 32, 1000, 13, 1, 8))
    func = kernels[next(n for n in kernels if "conv2d" in n)]
    target = profile.tvm_target()
    scheduled = _scheduled_by("Conv2D", func, target)
    assert _register_tiles(scheduled) == {(13, 8)}
    ok, why = profile.can_run()
    if not ok:
        pytest.skip(f"the tile is checked; its values need AVX-512: {why}")
    expected, actual = _outputs(func, scheduled, target, seed=8)
    assert np.abs(actual - expected).max() / np.abs(expected).max() <= 1e-5


@pytest.mark.parametrize("channels, outputs, size, window, tile", [
    (512, 256, 14, 1, 6),  # 14 wide: the 196-pixel plane in 32 tiles of 6 and one of 4
    (128, 256, 7, 3, 6),  # 3x3, padded, 7x7: 8 tiles of 6 pixels and one of 1, not 7
])
def test_conv2d_on_a_small_plane_blocks_its_reduction(tmp_path, channels, outputs, size,
                                                      window, tile):
    """ResNet50's 14x14 and 7x7 stages on AVX2: per channel tile, the reduction over input
    channels runs in blocks of `REDUCTION_BLOCK` outside the register tiles of the whole
    plane (each block of weights serves every pixel from L1), the register tile fits the
    registers (a plane no such tile divides ends in a shorter tile, split off), the tiles
    run in parallel and vectorized, and the values stay the unscheduled kernel's."""
    from mutatenn_passes.schedule.rules.conv2d import UNROLL_REDUCTION
    from mutatenn_passes.schedule.rules.plane import REDUCTION_BLOCK

    kernels = _unscheduled_kernels(_conv_model(tmp_path, channels, outputs, size, window, 7))
    name = next(n for n in kernels if "conv2d" in n)
    func = kernels[name]
    profile = mn.get_profile(FMA_TARGET)
    target = profile.tvm_target()
    with target:
        rule, sch = _first_rule(func, target)
    assert rule == "Conv2D"
    scheduled = sch.mod["main"]

    def extents(block):
        return [int(sch.get(loop).extent) for loop in sch.get_loops(sch.get_sblock(block))]

    unit = VectorUnit.of(target)
    ((pixels, lanes),) = _register_tiles(scheduled)
    assert pixels == tile and lanes == 2 * unit.lanes, (pixels, lanes)
    # the accumulators of a channel tile's whole plane, initialised once, then the blocks
    tiles = -(-size * size // tile)
    assert np.prod(extents("conv2d_nchw_init")[1:]) == tiles * tile * lanes
    updates = [b.name_hint for b in _blocks(scheduled) if "update" in b.name_hint and
               not b.name_hint.endswith("partition") and not b.name_hint.endswith("common")]
    assert len(updates) == (1 if size * size % tile == 0 else 2), updates
    for update in updates:  # a block of input channels, its innermost loop unrolled by 8
        assert REDUCTION_BLOCK // UNROLL_REDUCTION in extents(update), extents(update)
    assert {tirx.ForKind.PARALLEL, tirx.ForKind.VECTORIZED} <= _loop_kinds(scheduled)
    ok, why = profile.can_run()
    if not ok:
        pytest.skip(f"the tiles are checked; their values need {FMA_TARGET}: {why}")
    expected, actual = _outputs(func, scheduled, target, seed=7)
    assert np.abs(actual - expected).max() / np.abs(expected).max() <= 1e-5


def _blocks(func) -> list:
    blocks = []
    tvm_ffi.structural_walk(func.body, (s_tir.SBlock, blocks.append))
    return blocks


def test_conv2d_rows_end_in_a_shorter_register_tile(tmp_path):
    """A 3x3 convolution at 28x28 (ResNet50's second stage) on AVX2: rows of 28 pixels take
    register tiles of 6 (two vectors: the most that fit), four of them and a last one of 4
    split off into its own loop, instead of 7 tiles of 4; the values stay the unscheduled
    kernel's."""
    kernels = _unscheduled_kernels(_conv_model(tmp_path, 32, 64, 28, 3, 10))
    func = kernels[next(n for n in kernels if "conv2d" in n)]
    profile = mn.get_profile(FMA_TARGET)
    target = profile.tvm_target()
    scheduled = _scheduled_by("Conv2D", func, target)
    lanes = 2 * VectorUnit.of(target).lanes
    assert _register_tiles(scheduled) == {(6, lanes)}
    updates = [b for b in _blocks(scheduled) if b.name_hint.endswith("_update")]
    assert len(updates) == 2, [b.name_hint for b in updates]
    # without FMA (SSE2), where they measured slower, no shorter tile: 7 tiles of 4
    sse2 = mn.get_profile(TARGET).tvm_target()
    assert _register_tiles(_scheduled_by("Conv2D", func, sse2)) == \
        {(4, 2 * VectorUnit.of(sse2).lanes)}
    ok, why = profile.can_run()
    if not ok:
        pytest.skip(f"the tiles are checked; their values need {FMA_TARGET}: {why}")
    expected, actual = _outputs(func, scheduled, target, seed=10)
    assert np.abs(actual - expected).max() / np.abs(expected).max() <= 1e-5


def test_pool_reads_its_padding_inline(default_model):
    """ShuffleNet's padded 3x3/2 max pooling: no padded copy of the input (``pad_temp``) is
    written first, the window loops check the bounds; parallel, vectorized, and the values
    (border windows included) stay the unscheduled kernel's."""
    kernels = _unscheduled_kernels(default_model)
    func = kernels["max_pool2d"]
    assert 'T.sblock("pad_temp")' in func.script()
    target = mn.get_profile(TARGET).tvm_target()
    scheduled = _scheduled_by("Pool", func, target)
    assert 'T.sblock("pad_temp")' not in scheduled.script()
    assert {tirx.ForKind.PARALLEL, tirx.ForKind.VECTORIZED} <= _loop_kinds(scheduled)
    expected, actual = _outputs(func, scheduled, target, seed=5)
    np.testing.assert_array_equal(actual, expected)


def test_conv2d_unrolls_its_innermost_reduction_loop(fixture_model):
    """The quantized fixture's 1x1 convolutions over 16 or more input channels (NHWC, packed
    HWIO weights): the innermost reduction loop (input channels) is unrolled by 8 around the
    register tile, and the requantized values stay the unscheduled ones (within one step)."""
    kernels = _unscheduled_kernels(fixture_model)
    name = next(n for n in kernels if n.startswith("fused_conv2d4_"))
    func = kernels[name]
    target = mn.get_profile(TARGET).tvm_target()
    scheduled = _scheduled_by("Conv2D", func, target)
    unrolled = []
    tvm_ffi.structural_walk(scheduled.body, (tirx.For, lambda loop: unrolled.append(
        (loop.loop_var.name, int(loop.extent))) if loop.kind == tirx.ForKind.UNROLLED else None))
    assert ("rc_1", 8) in unrolled, unrolled
    expected, actual = _outputs(func, scheduled, target, seed=4)
    assert np.abs(actual.astype(np.int64) - expected).max() <= 1


def test_conv2d_register_tile_leaves_registers_for_weights_and_input(default_model):
    """A 1x1 convolution at 28x28: the copy TVM emits as ``pad_temp`` is inlined, and the
    register tile (unrolled pixels x vectors of channels) leaves a register for each weight
    vector and one for the broadcast input, so LLVM need not spill accumulators (28 pixels:
    a tile of 4, not 7); the values stay the unscheduled kernel's."""
    kernels = _unscheduled_kernels(default_model)
    name = next(n for n in kernels if n.startswith("fused_conv2d3_"))
    func = kernels[name]
    assert "T.Buffer((T.int64(1), T.int64(1), T.int64(28), T.int64(112))" in func.script()
    assert 'T.sblock("pad_temp")' in func.script()
    target = mn.get_profile(TARGET).tvm_target()
    scheduled = _scheduled_by("Conv2D", func, target)
    assert 'T.sblock("pad_temp")' not in scheduled.script()
    unit = VectorUnit.of(target)
    ((pixels, lanes),) = _register_tiles(scheduled)
    vectors = lanes // unit.lanes
    assert pixels >= 4 and pixels * vectors + vectors + 1 <= unit.registers, (pixels, vectors)
    expected, actual = _outputs(func, scheduled, target, seed=3)
    assert np.abs(actual - expected).max() / np.abs(expected).max() <= 1e-5


@pytest.fixture(scope="module")
def scheduled_and_naive(default_model, default_images):
    return [mn.build(default_model, t).run(default_images) for t in (TARGET, NAIVE)]


def test_scheduled_build_agrees_with_the_unscheduled_one(scheduled_and_naive):
    scheduled, naive = scheduled_and_naive
    assert scheduled.top1() == naive.top1()
    rel = np.abs(scheduled.outputs - naive.outputs).max() / np.abs(naive.outputs).max()
    assert rel <= 1e-4


def test_scheduled_build_agrees_with_onnxruntime(default_model, default_images,
                                                 scheduled_and_naive):
    from mutatenn_passes.images import preprocess
    from mutatenn_passes.reference import compare

    batch = preprocess(default_images, default_model.preprocess)
    report = compare(default_model, batch, scheduled_and_naive[0].outputs)
    assert report["summary"]["agree"]
    assert report["summary"]["max_rel_diff"] <= 1e-4


def test_scheduled_quantized_fixture_agrees_within_one_step(fixture_model, shared_fixtures):
    images = mn.load_images([shared_fixtures / n for n in
                             ("cat.bmp", "bird.bmp", "parrot.jpg", "grace_hopper.bmp")])
    scheduled, naive = (mn.build(fixture_model, t).run(images) for t in (TARGET, NAIVE))
    assert scheduled.top1() == naive.top1() == [283, 20, 89, 401]
    # uint8 scores: the float arithmetic reassociates, so a requantized value may round
    # to the neighbouring step; never further
    diff = np.abs(scheduled.outputs.astype(np.int64) - naive.outputs.astype(np.int64))
    assert diff.max() <= 1


@pytest.mark.parametrize("which", ["default", "fixture"])
def test_paper_kernel_operators_find_sites_in_every_kernel_category(which, default_model,
                                                                   request):
    model = default_model if which == "default" else request.getfixturevalue("fixture_model")
    modules = {}
    found = {}
    for spec in operators():
        if spec.level != "kernel" or not spec.from_paper:
            continue
        phase = spec.default_phase
        if phase not in modules:
            modules[phase] = kernel_module(model, TARGET, phase)
        found.setdefault(spec.category, 0)
        found[spec.category] += len(find_sites(spec.id, modules[phase]))
    kernel_categories = {s.category for s in operators() if s.level == "kernel"
                         and s.from_paper}
    assert kernel_categories <= set(CATEGORIES)
    assert all(found[c] > 0 for c in kernel_categories), found


def test_schedule_is_part_of_a_profile(tmp_path):
    assert mn.get_profile(TARGET).schedule == "default"
    assert mn.get_profile(NAIVE).schedule == "none"
    assert mn.get_profile(TARGET).identity() != mn.get_profile(NAIVE).identity()
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nschedule = "fast"\n[target]\nkind = "llvm"\n')
    with pytest.raises(TargetError, match="schedule must be one of default, tuned, none"):
        parse_profile(bad)
    gpu = tmp_path / "gpu.toml"
    gpu.write_text('name = "g"\nschedule = "none"\n[target]\nkind = "cuda"\narch = "sm_80"\n'
                   '[target.host]\nkind = "llvm"\n')
    with pytest.raises(TargetError, match="cannot run unscheduled"):
        parse_profile(gpu)
