"""Fixtures of the hardening tests: a tiny checkpoint shared by every test of the run."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A very small random Vivim saved as a real checkpoint (read-only for the tests: copy it to alter it)."""
    import vivim_core
    from hardening_support import tiny_model

    return vivim_core.save_checkpoint(tiny_model(), tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(autouse=True)
def _no_default_checkpoint_from_the_environment(monkeypatch):
    monkeypatch.delenv("VIVIM_STUDIO_CHECKPOINT", raising=False)
