"""Shared test setup: offscreen Qt, small torch thread pools, and the path of the shared real-data sample."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"
VTUS_SAMPLE = SHARED_DIR / "data" / "vtus-sample"


@pytest.fixture(scope="session")
def vtus_sample() -> Path:
    """The real thyroid ultrasound sample (CC BY-NC, read in place from ../shared; never copied)."""
    if not (VTUS_SAMPLE / "Train").is_dir():
        pytest.skip(f"real-data sample not found at {VTUS_SAMPLE}: these tests need the ../shared folder beside "
                    f"the project (as in CI)")
    return VTUS_SAMPLE


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test starts from the same random state (when torch is importable)."""
    try:
        import torch
    except ImportError:
        yield
        return
    torch.manual_seed(0)
    yield
