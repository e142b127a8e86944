"""The model step of a spec run: ensembles (model.file lists), TTA (model.tta), header workers.

One small demo cohort and two perturbed copies of the demo model, shared by
the module; each single model runs once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import medval.io
from medval.gate import read_spec
from medval.run import RunOutcome, read_data, run_spec

from .conftest import perturbed_state, sha, write_spec


def _write(folder: Path, name: str, model: str, data: str = "") -> Path:
    return write_spec(folder, name, 'factory = "medval.demo:make_model"\n' + model, data=data)


def _run(folder: Path, name: str, model: str) -> RunOutcome:
    return run_spec(_write(folder, name, model), out_dir=folder / name, quiet=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, small_cohort: Path) -> Path:
    """The cohort and two members: the demo net's weights plus different noise."""
    import torch

    root = tmp_path_factory.mktemp("ensemble")
    (root / "cohort").symlink_to(small_cohort, target_is_directory=True)
    for k in (0, 1):
        torch.save(perturbed_state(k + 1), root / f"m{k}.pt")
    return root


@pytest.fixture(scope="module")
def singles(folder: Path) -> list[RunOutcome]:
    return [_run(folder, f"single{k}", f'file = "m{k}.pt"') for k in (0, 1)]


_sha = sha


def test_an_ensemble_is_the_mean_of_its_members_probabilities(
    folder: Path, singles: list[RunOutcome]
) -> None:
    ens = _run(folder, "ensemble", 'file = ["m0.pt", "m1.pt"]')
    p0, p1 = (s.predictions.probabilities for s in singles)
    assert list(ens.predictions.case_ids) == list(singles[0].predictions.case_ids)
    assert not np.allclose(p0, p1, atol=1e-3)  # the members differ
    np.testing.assert_allclose(ens.predictions.probabilities, (p0 + p1) / 2, atol=1e-6)
    # Deep-ensemble convention: one sample per member along the sample axis.
    mc = ens.predictions.mc_probabilities
    assert mc is not None and mc.shape[0] == 2
    np.testing.assert_allclose(mc[1], p1, atol=1e-6)

    prov = ens.result.provenance
    members = [_sha(folder / "m0.pt"), _sha(folder / "m1.pt")]
    assert prov["model_file"] == ["m0.pt", "m1.pt"]
    assert prov["ensemble_sha256"] == members
    assert prov["ensemble_members"] == 2
    combined = hashlib.sha256(f"{members[0]}\n{members[1]}\n".encode("ascii")).hexdigest()
    assert prov["model_sha256"] == combined  # one string, as `medval diff` compares it
    assert prov["preprocess"]["ensemble members"] == 2
    assert prov["preprocess"]["test-time augmentation"] == "none"
    # A single file keeps the single-model provenance.
    one = singles[0].result.provenance
    assert one["model_file"] == "m0.pt" and one["model_sha256"] == members[0]
    assert "ensemble_sha256" not in one and "ensemble_members" not in one
    assert one["preprocess"]["ensemble members"] == 1


def test_tta_averages_the_model_over_the_flipped_images(
    folder: Path, singles: list[RunOutcome]
) -> None:
    import torch

    from medval.demo import make_model

    run = _run(folder, "tta", 'file = "m0.pt"\ntta = "hflip"')
    ids = [str(c) for c in run.predictions.case_ids]
    data = read_data(read_spec(folder / "tta.toml"), salt=None, progress=False)
    dataset = medval.io.DicomDataset(
        [data.paths[c] for c in ids], ids, window=(40.0, 400.0), size=(32, 32)
    )
    model = make_model()
    model.load_state_dict(torch.load(folder / "m0.pt", weights_only=True))
    model.eval()
    with torch.no_grad():
        x = torch.stack([dataset[i]["image"] for i in range(len(ids))])
        p = torch.sigmoid(model(torch.flip(x, dims=(-1,))).double()).numpy().reshape(-1)
    flipped = np.column_stack([1 - p, p])  # one logit: the "lesion" probability
    plain = singles[0].predictions.probabilities
    assert not np.allclose(plain, flipped, atol=1e-4)  # the flip changes the outputs
    np.testing.assert_allclose(run.predictions.probabilities, (plain + flipped) / 2, atol=1e-5)
    assert run.result.provenance["tta"] == "hflip"
    assert run.result.provenance["preprocess"]["test-time augmentation"] == "hflip"


def test_data_workers_reach_the_header_scan(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    scan = medval.io._join.read_dicom_cohort

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("workers"))
        return scan(*args, **kwargs)

    monkeypatch.setattr(medval.io._join, "read_dicom_cohort", spy)
    one = read_data(read_spec(_write(folder, "w1", 'file = "m0.pt"')), salt="s", progress=False)
    two = read_data(
        read_spec(_write(folder, "w2", 'file = "m0.pt"', data="workers = 2")),
        salt="s",
        progress=False,
    )
    assert seen == [1, 2]
    assert one.cohort.equals(two.cohort)
    assert one.manifest_sha256 == two.manifest_sha256
