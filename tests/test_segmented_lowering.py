"""Segmented lowering (`segmented_lowering`): a model cut into segments and stitched back
after the kernel phase is its whole lowering, structurally; a graph mutant lowered segment by
segment runs bit-identically to the same mutant built in full and compiles only what its
segment changed, on the embedded default model and on the quantized MobileNet fixture; a
graph that cannot be cut is lowered whole."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
import tvm_ffi

import mutatenn_passes as mn
from mutatenn_passes.build import build_incremental, prepare_original
from mutatenn_passes.images import preprocess
from mutatenn_passes.segmented_lowering import split_main

TARGET = "llvm-x86-64"


def _check_mutants(model, images, mutants, target=TARGET) -> None:
    original = prepare_original(model, target)
    assert original.segmented_lowering().why == ""
    batch = preprocess(images, model.preprocess)
    reference, _ = original.artifact.run_array(batch)
    changed = 0
    for op_id, site in mutants:
        passes = [mn.mutation(op_id, sites=[site])]
        with tvm.transform.PassContext(opt_level=3):
            assert original.segmented_lowering().lower(passes[0](model.mod)) is not None
        segmented = build_incremental(original, relax_passes=passes)
        assert segmented.record.mode.startswith("incremental")
        assert 0 < len(segmented.record.compiled) <= 4, segmented.record.compiled
        full = mn.build(model, target, relax_passes=passes)
        got, _ = segmented.run_array(batch)
        expected, _ = full.run_array(batch)
        assert np.array_equal(got, expected, equal_nan=True), (op_id, site)
        changed += not np.array_equal(got, reference)
    assert changed  # the mutants are not all the original


def test_the_stitched_segments_of_the_default_model_are_its_whole_lowering(default_model):
    segments = split_main(default_model.mod)
    assert len(segments) >= 10
    bindings = len(default_model.mod["main"].body.blocks[0].bindings)
    # each segment reads its input through one binding; the last returns main's output
    assert sum(len(s.body.blocks[0].bindings) - 1 for s in segments[1:]) + \
        len(segments[0].body.blocks[0].bindings) == bindings + len(segments) - 1
    original = prepare_original(default_model, TARGET)
    segmented = original.segmented_lowering()
    assert segmented.why == ""
    with tvm.transform.PassContext(opt_level=3):
        tvm.ir.assert_structural_equal(segmented.lower(default_model.mod), (original.relax, 0))


def test_graph_mutants_lowered_by_segment_equal_full_builds(default_model, default_images):
    _check_mutants(default_model, default_images[:2],
                   [("relu_to_sigmoid", 4), ("max_pool_to_avg_pool", 0),
                    ("exp_before_conv2d_dense", 7), ("transpose_conv2d_input", 1)])


def test_a_mutant_of_several_segments_names_its_new_kernels_apart(default_model,
                                                                  default_images):
    """Sigmoids in three segments make three new kernels that fusion names alike."""
    original = prepare_original(default_model, TARGET)
    passes = [mn.mutation("relu_to_sigmoid", sites=[2, 6, 10])]
    segmented = build_incremental(original, relax_passes=passes)
    assert segmented.record.mode.startswith("incremental"), segmented.record.mode
    batch = preprocess(default_images[:1], default_model.preprocess)
    expected, _ = mn.build(default_model, TARGET, relax_passes=passes).run_array(batch)
    assert np.array_equal(segmented.run_array(batch)[0], expected)


def test_graph_mutants_of_the_quantized_fixture_lowered_by_segment(shared_fixtures):
    model = mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite")
    assert len(split_main(model.mod)) >= 5  # cut before each convolution's weights
    _check_mutants(model, mn.load_images([shared_fixtures / "cat.bmp"]),
                   [("add_to_subtract", 3), ("avg_pool_to_max_pool", 0)])


def test_equal_blocks_take_their_own_lowered_segments(default_images):
    """The onnx wheel's light ResNet50 repeats blocks with equal weights, so some of its
    segments are equal: each occurrence must take its own lowered segment (one taken twice
    defined its variables twice, and every graph mutant fell back to a full build)."""
    import onnx
    from pathlib import Path

    path = Path(onnx.__file__).parent / "backend/test/data/light/light_resnet50.onnx"
    model = mn.load_model(path)
    segments = split_main(model.mod)
    hashes = [tvm_ffi.structural_hash(s) for s in segments]
    assert len(set(hashes)) < len(hashes)  # the repeated blocks this test is about
    _check_mutants(model, default_images[:1], [("relu_to_sigmoid", 3),
                                               ("exp_before_conv2d_dense", 31)])


def test_a_graph_without_a_place_to_cut_is_lowered_whole(tiny_classifier, tmp_path):
    import onnx

    onnx.save(tiny_classifier(), tmp_path / "tiny.onnx")  # conv, pooling, dense: 6 bindings
    model = mn.load_model(tmp_path / "tiny.onnx")
    original = prepare_original(model, TARGET)
    assert original.segmented_lowering().why == "the graph has no place to cut"
    passes = [mn.mutation("exp_after_conv2d_dense", sites=[0])]
    batch = np.random.default_rng(0).normal(size=(2, 3, 16, 16)).astype("float32")
    got, _ = build_incremental(original, relax_passes=passes).run_array(batch)
    expected, _ = mn.build(model, TARGET, relax_passes=passes).run_array(batch)
    assert np.array_equal(got, expected)
    assert not np.array_equal(got, original.artifact.run_array(batch)[0])


def test_an_unscheduled_profile_lowers_its_graph_mutants_whole(default_model):
    original = prepare_original(default_model, "llvm-x86-64-naive")
    assert original.segmented_lowering().why.startswith("llvm-x86-64-naive is lowered in one")
    passes = [mn.mutation("relu_to_sigmoid", sites=[4])]
    art = build_incremental(original, relax_passes=passes)
    assert art.record.mode.startswith("incremental")
