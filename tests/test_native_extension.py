"""The C++ pass extension (``operators/``, loaded from ``mutatenn_passes/_operators.so``):
its globals called directly on small PrimFuncs, the pass maker as a real TVM pass, and a
missing or broken library as a clear import error.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tvm
import tvm_ffi

from mutatenn_passes.kernel_operators import native
from tests.conftest import load_cases

ARITH = load_cases("kernel_cases", "arith_types")


def _global(name):
    return tvm_ffi.get_global_func(name)


def _strip(func):
    return func.without_attr("global_symbol")


def test_library_is_where_importlib_finds_mutatenn_passes_operators():
    path = native.library_path()
    assert path.name == "_operators.so" and path.is_file()
    assert path == Path(importlib.util.find_spec("mutatenn_passes._operators").origin)
    assert path.parent == Path(importlib.util.find_spec("mutatenn_passes").origin).parent
    for name in native.GLOBALS:
        assert tvm_ffi.get_global_func(name, True) is not None, name


def test_sites_list_float32_stores_with_skip_reasons():
    sites = _global("mutatenn.ArithTypeSites")
    assert [list(row) for row in sites(ARITH.store, "int8")] == [
        ["float32", "store to B[i] (float32)", ""]]
    kinds, descriptions, reasons = zip(*[list(row) for row in sites(ARITH.pool_init, "float16")])
    assert kinds == ("float32", "float32") and "constant" in reasons[0] and reasons[1] == ""
    # the same constant fits bfloat16's range: no skip
    assert [row[2] for row in sites(ARITH.pool_init, "bfloat16")] == ["", ""]


@pytest.mark.parametrize("dtype,expected", [
    ("float16", ARITH.store_f32_to_f16), ("int8", ARITH.store_f32_to_i8),
    ("int16", ARITH.store_f32_to_i16), ("int32", ARITH.store_f32_to_i32),
    ("bfloat16", ARITH.store_f32_to_bf16),
])
def test_rewrite_function_round_trips_the_chosen_store(dtype, expected):
    out = _global("mutatenn.StoreRoundTripFunc")(ARITH.store, dtype, [0])
    tvm.ir.assert_structural_equal(_strip(out), _strip(expected))
    assert tvm.tirx.analysis.verify_well_formed(out)
    assert _global("mutatenn.StoreRoundTripFunc")(ARITH.store, dtype, []).same_as(ARITH.store)


def test_pass_maker_makes_a_module_pass_over_named_kernels():
    make = _global("mutatenn.transform.StoreRoundTrip")
    mod = tvm.IRModule({"a": ARITH.store, "b": ARITH.pool_init})
    every = make("float16", None)
    assert isinstance(every, tvm.transform.ModulePass)
    assert every.info.name == "mutatenn.StoreRoundTrip" and every.info.opt_level == 0
    out = every(mod)
    tvm.ir.assert_structural_equal(_strip(out["a"]), _strip(ARITH.store_f32_to_f16))
    tvm.ir.assert_structural_equal(_strip(out["b"]), _strip(ARITH.pool_init_f16))  # skip kept
    only_b = make("float16", {"b": [1]})(mod)
    assert only_b["a"].same_as(mod["a"])
    tvm.ir.assert_structural_equal(_strip(only_b["b"]), _strip(ARITH.pool_init_f16))
    # the input module is left as it was
    tvm.ir.assert_structural_equal(mod["a"], ARITH.store)
    # and it composes like any TVM pass
    seq = tvm.transform.Sequential([make("int8", {"a": [0]})])
    tvm.ir.assert_structural_equal(_strip(seq(mod)["a"]), _strip(ARITH.store_f32_to_i8))


def test_unknown_type_is_an_error():
    with pytest.raises(Exception, match="float16, bfloat16, int32, int16 or int8"):
        _global("mutatenn.ArithTypeSites")(ARITH.store, "float64")


def _import_kernel_operators_from(package_root: Path):
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    code = "import mutatenn_passes.kernel_operators"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300, cwd=package_root)


@pytest.fixture
def package_copy(tmp_path):
    """A copy of the mutatenn_passes package without its native library."""
    source = Path(importlib.util.find_spec("mutatenn_passes").origin).parent
    shutil.copytree(source, tmp_path / "mutatenn_passes",
                    ignore=shutil.ignore_patterns("__pycache__", "_operators*.so"))
    return tmp_path


def test_missing_library_is_a_native_library_error_naming_the_file(package_copy):
    result = _import_kernel_operators_from(package_copy)
    assert result.returncode != 0
    assert "NativeLibraryError" in result.stderr
    assert f"{package_copy / 'mutatenn_passes' / '_operators.so'} is missing" in result.stderr


def test_broken_library_is_a_native_library_error_naming_the_file(package_copy):
    library = package_copy / "mutatenn_passes" / "_operators.so"
    library.write_bytes(b"not a shared library")
    result = _import_kernel_operators_from(package_copy)
    assert result.returncode != 0
    assert "NativeLibraryError" in result.stderr
    assert f"{library} cannot be loaded" in result.stderr
