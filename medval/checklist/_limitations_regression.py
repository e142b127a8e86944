"""Limitations suggested from the flags of a regression result (added to the shared ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medval.checklist._text import ci, est, join, num, split_prefixes

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["regression_limitations"]


def _excludes(e: Any, value: float) -> bool:
    """True when the estimate's interval lies wholly on one side of ``value``."""
    if e is None or e.low is None or e.high is None:
        return False
    return bool(e.high < value or e.low > value)


def regression_limitations(result: ValidationResult) -> list[dict[str, str]]:
    """Limitations of a regression model a reader should see, each from a flag.

    Returns
    -------
    list of dict
        ``{"flag", "text", "anchor"}`` in a fixed order: a further split whose
        MAE interval lies above the primary's, systematic or proportional
        bias (an interval excluding 0), conformal intervals under-covering a
        split or a group, and a sigma that does not rank the errors. Empty
        for other tasks.
    """
    r, v = result, result.values
    if v.get("task.kind") != "regression":
        return []
    out: list[dict[str, str]] = []
    unit = f" {v['task.unit']}" if v.get("task.unit") else ""
    prefixes = split_prefixes(r)
    primary = est(r, "regression.mae")
    for name, p in prefixes[1:]:
        other = est(r, f"{p}regression.mae")
        if (
            primary is not None
            and primary.high is not None
            and other is not None
            and other.low is not None
            and other.low > primary.high
        ):
            out.append(
                {
                    "flag": "performance_drop",
                    "anchor": "#performance",
                    "text": (
                        f"MAE on '{name}' ({ci(other, 2)}{unit}) is above '{prefixes[0][0]}' "
                        f"({ci(primary, 2)}{unit}); the intervals do not overlap."
                    ),
                }
            )
    biased = [name for name, p in prefixes if _excludes(est(r, f"{p}regression.bias"), 0.0)]
    if biased:
        out.append(
            {
                "flag": "bias",
                "anchor": "#performance",
                "text": (
                    "Systematic bias (a mean difference whose interval excludes 0) on "
                    f"{join(biased)}: the predictions are shifted against the reference there."
                ),
            }
        )
    sloped = [
        name
        for name, p in prefixes
        if _excludes(est(r, f"{p}regression.error_slope"), 0.0)
        or _excludes(est(r, f"{p}regression.agreement.proportional_bias"), 0.0)
    ]
    if sloped:
        out.append(
            {
                "flag": "proportional_bias",
                "anchor": "#performance",
                "text": (
                    f"The error depends on the value on {join(sloped)} (proportional bias or error "
                    "slope with an interval excluding 0): accuracy at the extremes of the range is "
                    "worse than the mean error suggests."
                ),
            }
        )
    if "regression.interval.score" in v:
        target = float(v["regression.interval.target"])
        low = []
        for name, p in prefixes:
            cov_split = est(r, f"{p}regression.interval.coverage")
            if cov_split is not None and cov_split.high is not None and cov_split.high < target:
                low.append(f"'{name}'")
            for row in r.tables.get(f"{p}regression.interval.by_group") or []:
                cov = row.get("coverage") or {}
                if cov.get("high") is not None and cov["high"] < target:
                    low.append(f"{row['column']}={row['group']} on '{name}'")
        if low:
            out.append(
                {
                    "flag": "coverage_gap",
                    "anchor": "#conformal",
                    "text": (
                        "Conformal prediction intervals cover less than the "
                        f"{num(target, 2)} target for {join(low, 4)}: they under-cover there."
                    ),
                }
            )
    if "regression.uncertainty.sigma_from" in v:
        blind = [
            name
            for name, p in prefixes
            if (e := est(r, f"{p}regression.uncertainty.sigma_rank")) is not None
            and e.low is not None
            and e.low <= 0
        ]
        if blind:
            out.append(
                {
                    "flag": "sigma_ranking",
                    "anchor": "#uncertainty",
                    "text": (
                        f"On {join(blind)} the model's sigma does not rank its errors (Spearman "
                        "interval includes 0 or lies below it): referral by sigma is not "
                        "supported there."
                    ),
                }
            )
    return out
