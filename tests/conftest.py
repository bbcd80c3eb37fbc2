"""Shared helpers and fixtures: hand-written TVMScript cases, the embedded default model
(imported once per session), the real third-party fixtures in ../shared/fixtures, and
`missing`, the one way a test skips for a missing piece.

A piece CI must have (the fixtures, Chromium) is skipped when absent only outside CI: with
``MUTATENN_REQUIRE_ALL=1`` (set by ``.ci/run``) its absence fails the test instead.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"

#: When set to 1, a missing piece CI must have is a failure, not a skip.
REQUIRE_ALL_ENV = "MUTATENN_REQUIRE_ALL"


def missing(what: str) -> None:
    """Skip the test because ``what`` is absent here, or fail it under
    ``MUTATENN_REQUIRE_ALL=1``."""
    if os.environ.get(REQUIRE_ALL_ENV) == "1":
        pytest.fail(f"{what} ({REQUIRE_ALL_ENV}=1: CI must have it)", pytrace=False)
    pytest.skip(what)


def load_cases(folder: str, name: str):
    """Import ``tests/<folder>/<name>.py``, registered in sys.modules as ``<folder>_<name>``
    (TVMScript reads the source of the functions it parses, so the module must be real)."""
    path = Path(__file__).parent / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    if not (FIXTURES / "mobilenet_v1_0.25_128_quant.tflite").is_file():
        missing(f"real test fixtures not found at {FIXTURES} (they live in ../shared)")
    return FIXTURES


@pytest.fixture(scope="session")
def default_model():
    import mutatenn_passes as mn

    return mn.load_model()


@pytest.fixture(scope="session")
def default_images():
    import mutatenn_passes as mn

    return mn.default_images()
