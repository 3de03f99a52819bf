"""Shared test fixtures: where ../shared is, and skips when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("FACETRACK_SHARED", REPO_ROOT.parent / "shared")).resolve()
SHARED_MODELS = SHARED_DIR / "models"
SHARED_DATA = SHARED_DIR / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: integration tests need the shared weights and data beside the checkout")
    return path


@pytest.fixture(scope="session")
def shared_models() -> Path:
    """``../shared/models`` (skips the test with a reason when absent)."""
    return _need(SHARED_MODELS)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (skips the test with a reason when absent)."""
    return _need(SHARED_DATA)


@pytest.fixture(scope="session")
def detector_weights(shared_models: Path) -> Path:
    return _need(shared_models / "yolov8n-face.pt")


@pytest.fixture(scope="session")
def embedder_weights(shared_models: Path) -> Path:
    return _need(shared_models / "edgeface_xs.onnx")
