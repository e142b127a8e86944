"""The conformal part of :func:`medval.evaluate`: sets, coverage, triage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medval import conformal
from medval._errors import InputError
from medval._result import ValidationResult, split_prefix
from medval._types import Estimate
from medval.conformal import min_calibration_size
from medval.evaluation._inputs import Inputs
from medval.evaluation._section import Part, Section

__all__ = ["SECTION", "conformal_section", "raw_threshold", "temperature_for_conformal"]


def _rows(per: Mapping[Any, Mapping[str, Any]], column: str) -> list[dict[str, Any]]:
    rows = []
    for value, info in per.items():
        cov: Estimate = info["coverage"]
        rows.append(
            {
                "column": column,
                "group": str(value),
                "n": int(info["n"]),
                "coverage": cov.value,
                "low": cov.low,
                "high": cov.high,
                "flag": bool(info["flag"]),
                "direction": info.get("direction"),
            }
        )
    return rows


def conformal_section(
    result: ValidationResult,
    probabilities: NDArray[np.floating[Any]],
    labels: NDArray[np.int64],
    positive: NDArray[np.int64],
    splits: NDArray[Any],
    *,
    calibration_split: str,
    test_splits: Sequence[str],
    class_names: Sequence[str],
    groups: Mapping[str, NDArray[Any]],
    patients: NDArray[Any] | None,
    method: str,
    mondrian: str | None,
    confidence_level: float,
    triage_max_fnr: float | None,
    positive_class: int,
    ci_level: float,
    seed: int,
    embeddings: NDArray[np.floating[Any]] | None = None,
    case_ids: NDArray[Any] | None = None,
) -> NDArray[np.float64]:
    """Calibrate on ``calibration_split``; diagnose sets on every test split.

    Returns the prediction-set size of every case (NaN outside the test
    splits), an uncertainty measure for the referral curves.

    Keys (primary split unprefixed, others under ``split.<name>.``):
    ``conformal.coverage`` (Clopper-Pearson CI), ``conformal.mean_set_size``,
    ``conformal.singleton_rate``, ``conformal.empty_rate``,
    ``conformal.referral_rate`` (sets that are not a single class), tables
    ``conformal.by_group`` and ``conformal.by_class``; and, with
    ``triage_max_fnr``, a conformal-risk-control threshold on the
    probability of column ``positive_class`` (``triage.threshold``; ``positive``
    is its one-versus-rest label) with the realised ``triage.sensitivity``.

    Also per split: ``conformal.by_set_size`` (size-stratified coverage),
    ``conformal.flagged_groups`` and ``conformal.flagged_classes`` (exact
    CI excludes the target), ``split.<name>.conformal.coverage_difference``
    (Newcombe interval, versus the primary split); once: the table
    ``conformal.by_split`` (every split side by side, e.g. external site
    versus internal). With ``embeddings`` (n, d): weighted conformal sets
    per split (Tibshirani et al. 2019) with likelihood ratios from a
    cross-fitted domain classifier between the calibration and that split,
    ``conformal.weighted.coverage``, ``.mean_set_size``,
    ``.effective_sample_size``, ``.small_ess`` and ``.caveat``.

    What a deployed predictor needs to give the same sets
    (:mod:`medval.deploy`): ``conformal.quantile`` (marginal),
    ``conformal.thresholds`` (Mondrian: group, or class name, to threshold;
    fallback groups hold the marginal one) and, for the randomised scores,
    ``conformal.set_seed``: with ``case_ids`` each case's uniform is keyed by
    (that seed, its id), so its set does not depend on the other cases.
    """
    cal = splits == calibration_split
    if patients is not None:
        for name in test_splits:
            conformal.check_disjoint_patients(patients[cal], patients[splits == name])
    by_column = None
    if mondrian is not None and mondrian != "class":
        if mondrian not in groups:
            raise InputError(
                f"conformal.mondrian {mondrian!r} is not a cohort column with values for every "
                f"case; available: {sorted(groups)} or 'class'."
            )
        by_column = groups[mondrian]
    model = conformal.ConformalClassifier(
        method,
        confidence_level=confidence_level,
        groups="class" if mondrian == "class" else None,
        min_group_size_policy="marginal",
        random_state=seed,
    ).calibrate(probabilities[cal], labels[cal], None if by_column is None else by_column[cal])
    result.values["conformal.method"] = method
    result.values["conformal.randomized"] = bool(model.randomized)
    if model.method == "raps":
        result.values["conformal.lambda_reg"] = float(model.lambda_reg_)
        result.values["conformal.k_reg"] = float(model.k_reg_)
        result.values["conformal.n_tuning"] = int(model.n_tuning_)
    if mondrian is not None:
        # ceil((n + 1) c) <= n  <=>  n >= ceil(c / (1 - c)); smaller groups fall back
        result.values["conformal.min_group_size"] = min_calibration_size(model.level)
    result.values["conformal.mondrian"] = mondrian or "none (marginal)"
    result.values["conformal.fallback_groups"] = [str(g) for g in model.fallback_groups_]
    result.values["conformal.confidence_level"] = confidence_level
    result.values["conformal.calibrated_on"] = calibration_split
    result.values["conformal.n_calibration"] = int(model.n_calibration_)
    if model.quantile_ is not None:
        result.values["conformal.quantile"] = float(model.quantile_)
    if model.quantiles_:
        names = class_names if mondrian == "class" else None
        result.values["conformal.thresholds"] = {
            str(key if names is None else names[key]): float(q)
            for key, q in model.quantiles_.items()
        }
    if model.randomized:
        result.values["conformal.set_seed"] = model.predict_seed_
    risk = None
    if triage_max_fnr is not None:
        risk = conformal.conformal_risk_control(
            probabilities[cal, positive_class], positive[cal], target=triage_max_fnr
        )
        result.values["triage.max_fnr"] = triage_max_fnr
        result.values["triage.threshold"] = float(risk.threshold_)
        result.values["triage.feasible"] = bool(risk.feasible)
    by_split: list[dict[str, Any]] = []
    sizes = np.full(splits.shape[0], np.nan)
    reference: tuple[int, int] | None = None
    for name in test_splits:
        prefix = split_prefix(name, test_splits)
        mask = splits == name
        sets = model.predict_sets(
            probabilities[mask],
            None if by_column is None else by_column[mask],
            case_ids=None if case_ids is None else case_ids[mask],
        )
        sizes[mask] = sets.sum(axis=1)
        y = labels[mask]
        by_group: list[dict[str, Any]] = []
        for column, values in groups.items():
            rep = conformal.coverage_report(
                sets, y, groups=values[mask], confidence_level=confidence_level, ci_level=ci_level
            )
            by_group += _rows(rep["per_group"], column)
        rep = conformal.coverage_report(
            sets, y, confidence_level=confidence_level, ci_level=ci_level
        )
        result.estimates[f"{prefix}conformal.coverage"] = rep["coverage"]
        for key in ("mean_set_size", "singleton_rate", "empty_rate"):
            result.values[f"{prefix}conformal.{key}"] = float(rep[key])
        result.values[f"{prefix}conformal.referral_rate"] = float(1.0 - rep["singleton_rate"])
        per_class = _rows(rep["per_class"], "class")
        for row in per_class:
            row["group"] = class_names[int(row["group"])]
        result.tables[f"{prefix}conformal.by_class"] = per_class
        result.tables[f"{prefix}conformal.by_group"] = by_group
        result.tables[f"{prefix}conformal.by_set_size"] = _rows(rep["by_set_size"], "set size")
        result.values[f"{prefix}conformal.flagged_classes"] = [
            row["group"] for row in per_class if row["flag"]
        ]
        result.values[f"{prefix}conformal.flagged_groups"] = [
            f"{row['column']}={row['group']}" for row in by_group if row["flag"]
        ]
        n_split = int(y.shape[0])
        hits = int(sets[np.arange(n_split), y].sum())
        cov: Estimate = rep["coverage"]
        under = cov.high is not None and cov.high < confidence_level
        over = cov.low is not None and cov.low > confidence_level
        split_row: dict[str, Any] = {
            "split": name,
            "n": n_split,
            "coverage": cov.value,
            "low": cov.low,
            "high": cov.high,
            "flag": bool(under or over),
            "direction": "under" if under else ("over" if over else None),
            "mean_set_size": float(rep["mean_set_size"]),
            "difference": None,
        }
        if reference is None:
            reference = (hits, n_split)
        elif n_split and reference[1]:
            diff = conformal.coverage_difference(
                hits, n_split, reference[0], reference[1], ci_level=ci_level
            )
            result.estimates[f"{prefix}conformal.coverage_difference"] = diff
            split_row["difference"] = diff.value
        by_split.append(split_row)
        if embeddings is not None:
            _weighted_block(
                result,
                prefix,
                model,
                probabilities,
                labels,
                embeddings,
                cal,
                mask,
                confidence_level=confidence_level,
                ci_level=ci_level,
                seed=seed,
            )
        if risk is not None:
            pos = positive[mask] == 1
            flagged = probabilities[mask, positive_class] >= risk.threshold_
            result.values[f"{prefix}triage.flagged_rate"] = float(flagged.mean())
            if pos.any():
                result.estimates[f"{prefix}triage.sensitivity"] = conformal.clopper_pearson(
                    int(flagged[pos].sum()), int(pos.sum()), ci_level=ci_level
                )
    result.tables["conformal.by_split"] = by_split
    return sizes


def _weighted_block(
    result: ValidationResult,
    prefix: str,
    model: conformal.ConformalClassifier,
    probabilities: NDArray[np.floating[Any]],
    labels: NDArray[np.int64],
    embeddings: NDArray[np.floating[Any]],
    cal: NDArray[np.bool_],
    mask: NDArray[np.bool_],
    *,
    confidence_level: float,
    ci_level: float,
    seed: int,
) -> None:
    """Weighted conformal sets on one split, ratios from a domain classifier."""
    w_cal, w_test = conformal.domain_likelihood_ratios(
        embeddings[cal], embeddings[mask], random_state=seed
    )
    raps = model.method == "raps"
    weighted = conformal.WeightedConformalClassifier(
        model.method,
        confidence_level=confidence_level,
        lambda_reg=model.lambda_reg_ if raps else None,
        k_reg=model.k_reg_ if raps else None,
        random_state=seed,
    ).calibrate(probabilities[cal], labels[cal], w_cal)
    sets = weighted.predict_sets(probabilities[mask], w_test)
    rep = conformal.coverage_report(
        sets, labels[mask], confidence_level=confidence_level, ci_level=ci_level
    )
    ess = float(weighted.effective_sample_size_)
    n_cal = int(weighted.n_calibration_)
    caveat = (
        f"Valid under covariate shift only, and only as far as the domain classifier's "
        f"likelihood ratios are right; effective sample size {ess:.0f} of {n_cal} "
        "calibration cases"
    )
    if weighted.small_ess_:
        caveat += (
            f" (below {weighted.min_effective_size:.0f}: the threshold rests on few effective "
            "cases and is unstable)"
        )
    key = f"{prefix}conformal.weighted"
    result.estimates[f"{key}.coverage"] = rep["coverage"]
    result.values[f"{key}.mean_set_size"] = float(rep["mean_set_size"])
    result.values[f"{key}.effective_sample_size"] = ess
    result.values[f"{key}.small_ess"] = bool(weighted.small_ess_)
    result.values[f"{key}.caveat"] = caveat + "."


def temperature_for_conformal(
    probabilities: NDArray[np.floating[Any]],
    labels: NDArray[np.int64],
    splits: NDArray[Any],
    patients: NDArray[Any] | None,
    *,
    calibration_split: str,
    seed: int,
) -> tuple[NDArray[np.float64], NDArray[Any], dict[str, Any]] | None:
    """Temperature-scale before conformal without spending the guarantee.

    The calibration split's patients are halved at random (seeded): the
    temperature is fitted by NLL on one half, the conformal quantile on the
    other, so the conformity scores stay exchangeable with the test scores
    (as in Angelopoulos et al. 2021, RAPS). Returns the scaled probabilities
    of every case, the splits with the temperature half renamed (so only the
    other half calibrates the sets), and what to record; None when either
    half would hold fewer than 10 cases.
    """
    from medval.calibration import TemperatureScaler

    cal = np.flatnonzero(splits == calibration_split)
    keys = np.asarray(patients)[cal] if patients is not None else cal.astype(str)
    # Patients in order of first appearance, so the halves do not depend on the salt.
    _, first = np.unique(keys, return_index=True)
    ordered = keys[np.sort(first)]
    rng = np.random.default_rng([seed, 7])
    half = set(ordered[rng.permutation(ordered.size)[: ordered.size // 2]].tolist())
    in_half = np.array([k in half for k in keys.tolist()], dtype=bool)
    fit_idx, keep = cal[in_half], cal[~in_half]
    if fit_idx.size < 10 or keep.size < 10:
        return None
    with np.errstate(divide="ignore"):
        logp = np.maximum(np.log(np.asarray(probabilities, dtype=np.float64)), -50.0)
    scaler = TemperatureScaler().fit(logp[fit_idx], labels[fit_idx])
    new_splits = np.asarray(splits, dtype=object).copy()
    new_splits[fit_idx] = f"{calibration_split} (temperature half)"
    info = {
        "conformal.temperature": float(scaler.temperature_),
        "conformal.temperature_fitted_on": (
            f"a random half of the '{calibration_split}' patients ({fit_idx.size} cases); "
            f"the conformal quantile uses the other half ({keep.size} cases)"
        ),
    }
    return scaler.predict_proba(logp), new_splits, info


def raw_threshold(scaled: float, temperature: float) -> float:
    """A threshold on temperature-scaled binary probabilities, on the model's own scale.

    Binary temperature scaling maps the logit ``z`` to ``z / T``, a monotone
    map, so ``p_scaled >= t`` and ``p_raw >= sigmoid(T * logit(t))`` flag the
    same cases.
    """
    t = min(max(scaled, 1e-12), 1 - 1e-12)
    z = temperature * float(np.log(t / (1 - t)))
    return float(1.0 / (1.0 + np.exp(-z)))


def _run(inputs: Inputs, earlier: Part) -> Part:
    out = Part()
    c, p = inputs.config, inputs.predictions
    calibration = str(inputs.calibration_split)
    columns = [*c.group_columns]
    if c.conformal_mondrian not in (None, "class", *columns):
        columns.append(str(c.conformal_mondrian))
    conf_p, conf_splits = p.probabilities, inputs.splits
    if c.conformal_temperature:
        scaled = temperature_for_conformal(
            p.probabilities, inputs.labels, inputs.splits, inputs.clusters,
            calibration_split=calibration, seed=c.seed,
        )  # fmt: skip
        if scaled is not None:
            conf_p, conf_splits, info = scaled
            out.values.update(info)
        else:
            out.values["conformal.temperature"] = None
            out.values["conformal.temperature_fitted_on"] = (
                "not applied: the calibration split is too small to halve"
            )
    out.shared["conformal.set_sizes"] = conformal_section(
        out, conf_p, inputs.labels, inputs.y, conf_splits,
        calibration_split=calibration, test_splits=inputs.test_splits,
        class_names=p.class_names, groups=inputs.columns(columns), patients=inputs.clusters,
        method=c.conformal_method, mondrian=c.conformal_mondrian,
        confidence_level=c.conformal_level,
        triage_max_fnr=None if inputs.multiclass else c.triage_max_fnr,
        positive_class=inputs.positive_class, ci_level=c.confidence_level, seed=c.seed,
        embeddings=p.embeddings, case_ids=p.case_ids,
    )  # fmt: skip
    temperature = out.values.get("conformal.temperature")
    if temperature is not None and "triage.threshold" in out.values:
        # Report the triage threshold on the model's own probability scale.
        out.values["triage.threshold_scaled"] = out.values["triage.threshold"]
        out.values["triage.threshold"] = raw_threshold(out.values["triage.threshold"], temperature)
    return out


SECTION = Section(
    "conformal", "conformal prediction sets and triage", _run, needs=("calibration",),
    switch=("conformal",),
)  # fmt: skip
