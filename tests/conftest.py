"""Shared fixtures: seeds and one demo run for the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _import_pandas_parsers() -> None:
    """Import pandas' lazily loaded CSV and string machinery once, up front.

    ``pytester.runpytest`` restores ``sys.modules`` after each in-process run;
    a pandas submodule first imported inside such a run is dropped, re-imported
    later, and its classes no longer match pandas' registries ("the dtype str
    is not supported for parsing"). Loading them here keeps them in every
    snapshot.
    """
    import io

    import pandas as pd

    pd.read_csv(io.StringIO("a,b\n1,x\n"), dtype=str)
    pd.read_csv(io.StringIO("a,b\n1,x\n"))


_import_pandas_parsers()


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
