"""Shared fixtures: seeds and one demo run for the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, fixed-seed generator for each test."""
    return np.random.default_rng(20261122)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full `medval demo` run (seed 0), shared by the end-to-end tests."""
    from medval.cli import main

    out = tmp_path_factory.mktemp("run-a") / "demo"
    code = main(["demo", "--out", str(out), "--seed", "0", "--quiet"])
    assert code == 0
    return out
