"""Shared fixtures: the embedded default model (imported once per session) and the real
third-party fixtures in ../shared/fixtures, skipped cleanly when that folder is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    if not (FIXTURES / "mobilenet_v1_0.25_128_quant.tflite").is_file():
        pytest.skip(f"real test fixtures not found at {FIXTURES} (they live in ../shared)")
    return FIXTURES


@pytest.fixture(scope="session")
def default_model():
    import mutatenn_passes as mn

    return mn.load_model()


@pytest.fixture(scope="session")
def default_images():
    import mutatenn_passes as mn

    return mn.default_images()
