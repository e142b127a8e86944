"""``medval plan``: the intended sample size (CLAIM 2024 item 21, TRIPOD+AI item 10).

Assumed values come from the command line or from a pilot ``result.json``;
the statistics are :mod:`medval.stats`' planners. Option values are checked
here so that a bad one is a usage error naming the option.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medval._errors import InputError, SpecError

__all__ = [
    "PlanInputs",
    "parse_subgroup",
    "plan_from_options",
    "plan_rows",
    "plan_table",
    "read_pilot",
]

_COLUMNS = ("what", "assumption", "target", "cases", "positives", "negatives", "patients")


@dataclasses.dataclass(frozen=True)
class PlanInputs:
    """What ``medval plan`` plans for; ``None`` leaves a target out.

    Attributes
    ----------
    auroc, sensitivity, specificity : float or None
        Assumed values; each present one gets a half-width row.
    prevalence : float
    half_width : float
    margin : float or None
        Non-inferiority margin against a baseline on the same cases (needs ``auroc``).
    power, difference, auroc_correlation : float
    images_per_patient : int
    icc : float
    confidence_level : float
    subgroups : dict of str to dict of str to float
        Subgroup -> {"share": ..., and optionally its own "auroc", "sensitivity",
        "specificity", "prevalence"}.
    """

    prevalence: float
    half_width: float = 0.05
    auroc: float | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    margin: float | None = None
    power: float = 0.8
    difference: float = 0.0
    auroc_correlation: float = 0.5
    images_per_patient: int = 1
    icc: float = 0.0
    confidence_level: float = 0.95
    subgroups: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


def _number(result: Any, key: str) -> float | None:
    if key in result.estimates:
        return float(result.estimates[key].value)
    value = result.values.get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def read_pilot(path: str | Path, *, subgroup_column: str | None = None) -> dict[str, Any]:
    """Assumed values from a pilot run's ``result.json``.

    Returns
    -------
    dict
        ``auroc`` (``discrimination.auroc``), ``sensitivity``, ``specificity``
        (``operating_point.*``), ``prevalence`` (``cohort.n_positive /
        cohort.n_cases``), and with ``subgroup_column`` the ``subgroups`` of
        that column (share of cases, own prevalence and values). Missing
        values are left out.

    Raises
    ------
    DataError
        The file is not a readable medval result.
    SpecError
        ``subgroup_column`` is not among the pilot's subgroup tables.
    """
    from medval._result import ValidationResult

    result = ValidationResult.read_json(path)
    out: dict[str, Any] = {}
    for name, key in (
        ("auroc", "discrimination.auroc"),
        ("sensitivity", "operating_point.sensitivity"),
        ("specificity", "operating_point.specificity"),
    ):
        value = _number(result, key)
        if value is not None:
            out[name] = value
    n, n1 = _number(result, "cohort.n_cases"), _number(result, "cohort.n_positive")
    if n and n1 is not None:
        out["prevalence"] = n1 / n
    if subgroup_column is not None:
        rows = result.tables.get(f"subgroup.{subgroup_column}")
        if not rows:
            known = sorted(k.split(".", 1)[1] for k in result.tables if k.startswith("subgroup."))
            raise SpecError(
                f"--pilot-subgroup {subgroup_column}: the pilot has no such subgroup table; "
                f"its subgroup columns: {', '.join(known) or 'none'}."
            )
        out["subgroups"] = _pilot_subgroups(rows)
    return out


def _pilot_subgroups(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    total = sum(int(r.get("n") or 0) for r in rows)
    groups: dict[str, dict[str, float]] = {}
    for r in rows:
        n = int(r.get("n") or 0)
        if n == 0 or total == 0:
            continue
        own: dict[str, float] = {"share": n / total}
        if r.get("events") is not None:
            own["prevalence"] = int(r["events"]) / n
        for name, metric in (r.get("metrics") or {}).items():
            value = (metric.get("estimate") or {}).get("value")
            if name in ("auroc", "sensitivity", "specificity") and value is not None:
                own[name] = float(value)
        groups[str(r["value"])] = own
    return groups


def _rows_for(
    inputs: PlanInputs, values: Mapping[str, float], prevalence: float
) -> list[tuple[str, Any]]:
    """(label, SampleSize) for every target these values allow."""
    from medval import stats

    common: dict[str, Any] = {
        "prevalence": prevalence,
        "confidence_level": inputs.confidence_level,
        "images_per_patient": inputs.images_per_patient,
        "icc": inputs.icc,
    }
    out: list[tuple[str, Any]] = []
    auroc = values.get("auroc")
    if auroc is not None:
        plan = stats.auroc_sample_size(auroc, half_width=inputs.half_width, **common)
        out.append(("auroc", plan))
    for name, planner in (
        ("sensitivity", stats.sensitivity_sample_size),
        ("specificity", stats.specificity_sample_size),
    ):
        if values.get(name) is not None:
            out.append((name, planner(values[name], half_width=inputs.half_width, **common)))
    if inputs.margin is not None and auroc is not None:
        plan = stats.noninferiority_sample_size(
            auroc,
            margin=inputs.margin,
            power=inputs.power,
            difference=inputs.difference,
            correlation=inputs.auroc_correlation,
            **common,
        )
        out.append(("auroc non-inferiority", plan))
    return out


def plan_rows(inputs: PlanInputs) -> dict[str, Any]:
    """Every planned target, overall and per subgroup, as JSON-native rows.

    Returns
    -------
    dict
        ``{"targets": [row, ...], "subgroups": {target: SubgroupPlan dict}}``;
        each row holds ``what`` (the target planned), ``subgroup`` (None overall) and the
        :class:`medval.stats.SampleSize` fields.

    Raises
    ------
    SpecError
        No target given, or a value the planners refuse (the message names it).
    """
    overall = {
        k: v
        for k, v in (
            ("auroc", inputs.auroc),
            ("sensitivity", inputs.sensitivity),
            ("specificity", inputs.specificity),
        )
        if v is not None
    }
    if not overall:
        raise SpecError(
            "nothing to plan: give at least one of --auroc, --sensitivity, --specificity "
            "(or --pilot result.json)."
        )
    if inputs.margin is not None and inputs.auroc is None:
        raise SpecError("--margin needs --auroc (the baseline's assumed AUROC).")
    try:
        return _plan(inputs, overall)
    except InputError as exc:
        raise SpecError(f"{_option(str(exc))}") from exc


def _option(message: str) -> str:
    """The planner's message with its parameter written as the command-line option."""
    name, sep, rest = message.partition("=")
    if sep and name.isidentifier():
        flag = {"correlation": "auroc-correlation"}.get(name, name)
        return f"--{flag.replace('_', '-')} {rest}"
    return message


def _plan(inputs: PlanInputs, overall: Mapping[str, float]) -> dict[str, Any]:
    from medval import stats

    targets = []
    for label, plan in _rows_for(inputs, overall, inputs.prevalence):
        targets.append({"what": label, "subgroup": None, **plan.to_dict()})
    per_target: dict[str, dict[str, Any]] = {}
    for group, own in inputs.subgroups.items():
        values = {**overall, **{k: v for k, v in own.items() if k in overall}}
        rows = _rows_for(inputs, values, own.get("prevalence", inputs.prevalence))
        for label, plan in rows:
            per_target.setdefault(label, {})[group] = plan
            targets.append({"what": label, "subgroup": group, **plan.to_dict()})
    shares = {g: own["share"] for g, own in inputs.subgroups.items()}
    subgroups = {
        label: stats.subgroup_sample_size(plans, shares).to_dict()
        for label, plans in per_target.items()
    }
    return {"targets": targets, "subgroups": subgroups}


def _assumption(row: Mapping[str, Any]) -> str:
    a = row["assumptions"]
    parts = [f"{k}={a[k]:.3g}" for k in ("auroc", "sensitivity", "specificity") if k in a]
    if "difference" in a:
        parts.append(f"diff={a['difference']:+.3g} r={a['correlation']:.2g}")
    parts.append(f"prev={a['prevalence']:.3g}")
    if row["images_per_patient"] > 1:
        parts.append(f"m={row['images_per_patient']} icc={a['icc']:.2g}")
    return " ".join(parts)


def _goal(row: Mapping[str, Any]) -> str:
    if row["criterion"] == "power":
        return f"power {row['target']:.2f} at margin {row['assumptions']['margin']:.3g}"
    return f"±{row['target']:.3g} ({row['confidence_level']:.0%})"


def plan_table(plan: Mapping[str, Any]) -> str:
    """Plain-text table of :func:`plan_rows`: one row per target, then the subgroup totals."""
    body = []
    for row in plan["targets"]:
        what = row["what"] + (f" [{row['subgroup']}]" if row["subgroup"] else "")
        body.append(
            (
                what,
                _assumption(row),
                _goal(row),
                *(str(row[k]) for k in ("n_cases", "n_positive", "n_negative", "n_patients")),
            )
        )
    widths = [max(len(r[i]) for r in [_COLUMNS, *body]) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [_COLUMNS, *body]
    ]
    for label, total in plan["subgroups"].items():
        lines.append(
            f"{label}, every subgroup at its target: {total['n_cases']} cases, "
            f"{total['n_patients']} patients (set by {total['binding']})"
        )
    return "\n".join(line.rstrip() for line in lines)


_SUBGROUP_KEYS = ("auroc", "sensitivity", "specificity", "prevalence")


def parse_subgroup(text: str) -> tuple[str, dict[str, float]]:
    """``NAME=SHARE[,auroc=A,sensitivity=S,specificity=P,prevalence=Q]`` -> (name, values).

    Raises
    ------
    SpecError
        A malformed entry, naming it and the expected form.
    """
    form = "NAME=SHARE[,auroc=A,sensitivity=S,specificity=P,prevalence=Q], e.g. GE=0.3"
    head, *rest = text.split(",")
    name, sep, share = head.rpartition("=")
    values: dict[str, float] = {}
    try:
        if not sep or not name:
            raise ValueError
        values["share"] = float(share)
        for item in rest:
            key, eq, value = item.partition("=")
            if not eq or key.strip() not in _SUBGROUP_KEYS:
                raise ValueError
            values[key.strip()] = float(value)
    except ValueError:
        raise SpecError(f"--subgroup {text!r}: expected {form}.") from None
    if not 0.0 < values["share"] <= 1.0:
        raise SpecError(f"--subgroup {text!r}: the share must lie in (0, 1], e.g. {name}=0.3.")
    return name, values


def plan_from_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The plan of ``medval plan``'s options (``None`` = not given; a pilot fills it).

    Keys: ``pilot``, ``pilot_subgroup``, ``auroc``, ``sensitivity``,
    ``specificity``, ``prevalence``, ``half_width``, ``margin``, ``power``,
    ``difference``, ``auroc_correlation``, ``images_per_patient``, ``icc``,
    ``confidence_level``, ``subgroup`` (list of ``--subgroup`` texts).
    Explicit options win over the pilot's values.
    """
    pilot: dict[str, Any] = {}
    if options.get("pilot"):
        pilot = read_pilot(options["pilot"], subgroup_column=options.get("pilot_subgroup"))
    elif options.get("pilot_subgroup"):
        raise SpecError("--pilot-subgroup needs --pilot result.json.")
    given = {k: v for k, v in options.items() if v is not None}
    subgroups = dict(pilot.get("subgroups", {}))
    for text in options.get("subgroup") or ():
        name, values = parse_subgroup(text)
        subgroups[name] = values
    prevalence = given.get("prevalence", pilot.get("prevalence"))
    if prevalence is None:
        raise SpecError("--prevalence is required (or --pilot result.json to take it from).")
    fields = {f.name for f in dataclasses.fields(PlanInputs)} - {"subgroups", "prevalence"}
    chosen = {k: given.get(k, pilot.get(k)) for k in fields}
    inputs = PlanInputs(
        prevalence=prevalence,
        subgroups=subgroups,
        **{k: v for k, v in chosen.items() if v is not None},
    )
    return plan_rows(inputs)
