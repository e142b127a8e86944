"""Errors per group: rows, the small-group rule, the worst group."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

from medval import InputError
from medval.regression import MISSING_GROUP, error_metrics, group_errors


def test_rows_worst_and_small_groups(rng: np.random.Generator) -> None:
    groups = np.array(["GE"] * 120 + ["Siemens"] * 100 + ["Philips"] * 6, dtype=object)
    y = rng.normal(100.0, 15.0, groups.size)
    noise = np.where(groups == "Siemens", 8.0, 3.0)
    pred = y + rng.normal(0.0, 1.0, groups.size) * noise
    rows, worst = group_errors(y, pred, groups, n_resamples=100, random_state=1)
    assert [r["group"] for r in rows] == ["GE", "Philips", "Siemens"]
    assert [r["n"] for r in rows] == [120, 6, 100]
    assert worst == "Siemens"
    small = rows[1]
    assert set(small) == {"group", "n", "reason"} and "min_cases is 10" in small["reason"]
    for r in (rows[0], rows[2]):
        m = groups == r["group"]
        assert r["mae"]["value"] == mean_absolute_error(y[m], pred[m])
        assert r["rmse"]["value"] == root_mean_squared_error(y[m], pred[m])
        assert r["bias"]["value"] == pytest.approx(np.mean(pred[m] - y[m]))
        assert r["mae"]["seed"] == 1 and r["mae"]["higher_is_better"] is False
        assert set(r) == {"group", "n", "mae", "bias", "rmse"}


def test_group_intervals_are_those_of_error_metrics_on_the_group(
    rng: np.random.Generator,
) -> None:
    pid = rng.integers(0, 40, 150)
    y = rng.normal(size=150)
    pred = y + rng.normal(size=40)[pid]
    rows, worst = group_errors(
        y, pred, np.zeros(150, dtype=int), clusters=pid, n_resamples=150, random_state=4
    )
    direct = error_metrics(y, pred, clusters=pid, n_resamples=150, random_state=4)
    assert rows[0]["group"] == "0" and worst == "0"
    for name in ("mae", "bias", "rmse"):
        assert rows[0][name] == direct[name].to_dict()


def test_missing_values_form_their_own_group(rng: np.random.Generator) -> None:
    groups = np.array(["F", None, "M", float("nan")] * 10, dtype=object)
    y = rng.normal(size=40)
    rows, _ = group_errors(y, y + 1.0, groups, min_cases=5, n_resamples=20, random_state=0)
    assert {r["group"]: r["n"] for r in rows} == {"(missing)": 20, "F": 10, "M": 10}
    assert MISSING_GROUP == "(missing)"


def test_no_estimable_group() -> None:
    y = np.arange(12.0)
    rows, worst = group_errors(y, y, np.arange(12) % 3, random_state=0)
    assert worst is None and all("reason" in r for r in rows)


def test_errors() -> None:
    y = np.arange(20.0)
    with pytest.raises(InputError, match=r"one group value per case, shape \(20,\)"):
        group_errors(y, y, np.zeros(5))
    with pytest.raises(InputError, match="min_cases must be an integer >= 1"):
        group_errors(y, y, np.zeros(20), min_cases=0)
    with pytest.raises(InputError, match="one patient key per case"):
        group_errors(y, y, np.zeros(20), clusters=np.arange(2))
