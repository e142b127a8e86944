from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from medval._errors import InputError
from medval.shift import drift_report

_DRIFT_COLUMNS = [
    "manufacturer", "model_name", "software_version", "kvp", "slice_thickness", "pixel_spacing",
    "convolution_kernel", "sex", "age_band", "site_key", "max_probability", "entropy",
]  # fmt: skip


def _frame(cohort: Any) -> pd.DataFrame:
    return cohort.drop(columns=["score"])


def test_demo_external_manufacturer_drifts(demo_cohort: Any) -> None:
    f = _frame(demo_cohort)
    ref, cur = f[f["split"] != "external"], f[f["split"] == "external"]
    rep = drift_report(ref, cur, columns=_DRIFT_COLUMNS)
    by = {c["column"]: c for c in rep["columns"]}
    assert rep["drifted"] and by["manufacturer"]["drifted"]
    assert by["kvp"]["drifted"] and by["max_probability"]["drifted"]
    assert not by["sex"]["drifted"]
    assert rep["drift_share"] == rep["n_drifted"] / rep["n_tested"]
    assert by["kvp"]["threshold"] == pytest.approx(0.05 / rep["n_tested"])
    assert rep["n_reference"] == len(ref) and rep["engine"] == "evidently"


def test_default_columns_skip_keys_and_constants(demo_cohort: Any) -> None:
    f = _frame(demo_cohort)
    site = f[f["manufacturer"] == "Aster Medical"]
    rep = drift_report(site.iloc[::2], site.iloc[1::2])
    names = [c["column"] for c in rep["columns"]]
    assert "patient_key" not in names and "split" not in names
    by = {c["column"]: c for c in rep["columns"]}
    assert by["manufacturer"]["reason"] == "constant in both frames"
    assert by["magnetic_field_strength"]["reason"] == "no values in one of the frames"
    assert by["manufacturer"]["p_value"] is None and not by["manufacturer"]["drifted"]


def test_ks_p_value_matches_scipy(rng: np.random.Generator) -> None:
    ref = pd.DataFrame({"kvp": rng.normal(120, 5, 300), "sex": rng.choice(["F", "M"], 300)})
    cur = pd.DataFrame({"kvp": rng.normal(121, 5, 200), "sex": rng.choice(["F", "M"], 200)})
    rep = drift_report(ref, cur, adjust="none")
    by = {c["column"]: c for c in rep["columns"]}
    assert by["kvp"]["p_value"] == pytest.approx(ks_2samp(ref["kvp"], cur["kvp"]).pvalue)
    assert by["kvp"]["test"] == "ks" and by["sex"]["test"] == "chi2"
    table = pd.crosstab(
        np.r_[np.zeros(300), np.ones(200)], np.r_[ref["sex"].to_numpy(), cur["sex"].to_numpy()]
    )
    expected = chi2_contingency(table.to_numpy(), correction=False).pvalue
    assert by["sex"]["p_value"] == pytest.approx(expected)
    gof = drift_report(ref, cur, categorical_test="chisquare")["columns"][1]
    assert gof["test"] == "chisquare" and gof["p_value"] != pytest.approx(expected)
    assert by["kvp"]["threshold"] == pytest.approx(0.05)


@pytest.mark.slow
def test_false_alarm_rate_on_random_splits(demo_cohort: Any) -> None:
    # Random halves of one site: the family-wise rate must stay near 1 - confidence_level.
    f = _frame(demo_cohort)
    site = f[f["manufacturer"] == "Boreal Imaging"].reset_index(drop=True)
    rng = np.random.default_rng(5)
    alarms = 0
    n_splits = 100
    for _ in range(n_splits):
        perm = rng.permutation(len(site))
        half = len(site) // 2
        rep = drift_report(site.iloc[perm[:half]], site.iloc[perm[half:]], columns=_DRIFT_COLUMNS)
        alarms += rep["drifted"]
    # binomial(100, 0.05) exceeds 11 with probability < 0.5 %
    assert alarms / n_splits <= 0.11


def test_whitelist_is_enforced(rng: np.random.Generator) -> None:
    ref = pd.DataFrame({"kvp": rng.normal(size=20), "PatientName": ["x"] * 20})
    cur = pd.DataFrame({"kvp": rng.normal(size=20)})
    with pytest.raises(InputError, match="outside the de-identified whitelist"):
        drift_report(ref, cur)
    with pytest.raises(InputError, match="not on the whitelist"):
        drift_report(cur, cur, columns=["PatientName"])
    with pytest.raises(InputError, match="must be in both"):
        drift_report(cur, cur.assign(sex="F"), columns=["sex"])


def test_errors(rng: np.random.Generator) -> None:
    f = pd.DataFrame({"kvp": rng.normal(size=20)})
    with pytest.raises(InputError, match="Unknown numerical drift test 'psi'; valid"):
        drift_report(f, f, numerical_test="psi")
    with pytest.raises(InputError, match="Unknown categorical drift test"):
        drift_report(f, f, categorical_test="ks")
    with pytest.raises(InputError, match="Unknown adjust"):
        drift_report(f, f, adjust="holm")
    with pytest.raises(InputError, match="rows in both frames"):
        drift_report(f, f.iloc[:0])
    with pytest.raises(InputError, match="confidence_level"):
        drift_report(f, f, confidence_level=0.05 * 20)


def test_import_is_light() -> None:
    heavy = "('evidently', 'pydicom', 'pandas', 'torch')"
    code = f"import sys, medval.shift; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
