"""The C++ pass extension: find ``mutatenn_passes/_operators.so`` and load it into tvm-ffi.

The library is built by CMake (``operators/``), by ``pip install`` through scikit-build-core or
by hand for development, and registers FFI globals (``mutatenn.ArithTypeSites``,
``mutatenn.transform.StoreRoundTrip``, ...). It is located the way Python locates an extension
module, so a regular, editable or in-tree install all work. A missing or broken library is a
`NativeLibraryError` naming the file: the Arithmetic Types operators have no Python fallback,
and a mutation campaign that silently lost a category would report wrong numbers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import tvm  # noqa: F401  (the library resolves TVM's node types and constructors at first use)
import tvm_ffi

from ..errors import NativeLibraryError

MODULE_NAME = "mutatenn_passes._operators"
#: The globals the library must register; checked at load so a stale build fails early.
GLOBALS = ("mutatenn.ArithTypeSites", "mutatenn.StoreRoundTripFunc",
           "mutatenn.transform.StoreRoundTrip")

_BUILD_HINT = ("build it with `pip install .` or `cmake -S . -B build/dev && cmake --build "
               "build/dev && cmake --install build/dev --prefix .` in the mutatenn checkout")

_loaded = None


def library_path() -> Path:
    """Where the extension is, as the import system finds ``mutatenn_passes._operators``."""
    spec = importlib.util.find_spec(MODULE_NAME)
    if spec is None or not spec.origin:
        expected = Path(__file__).resolve().parent.parent / "_operators.so"
        raise NativeLibraryError(f"the C++ pass extension {expected} is missing; {_BUILD_HINT}")
    return Path(spec.origin)


def load():
    """Load the extension once; return the tvm-ffi module holding it."""
    global _loaded
    if _loaded is None:
        path = library_path()
        try:
            module = tvm_ffi.load_module(str(path))
        except Exception as exc:  # dlopen and FFI errors come in several types
            raise NativeLibraryError(f"the C++ pass extension {path} cannot be loaded: "
                                     f"{str(exc).strip().splitlines()[-1]}") from exc
        missing = [name for name in GLOBALS if tvm_ffi.get_global_func(name, True) is None]
        if missing:
            raise NativeLibraryError(f"the C++ pass extension {path} does not register "
                                     f"{', '.join(missing)}; it is stale: {_BUILD_HINT}")
        _loaded = module
    return _loaded


def get(name: str):
    """The extension's global function ``name`` (loading the extension first)."""
    load()
    return tvm_ffi.get_global_func(name)
