"""The registry of auto-fill rules named by ``auto.rule`` in the checklist files."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from medval.checklist._limitations import suggest_limitations
from medval.checklist._model import Evidence
from medval.checklist._rules_data import DATA_RULES
from medval.checklist._rules_eval import EVAL_RULES
from medval.checklist._rules_registration import registration
from medval.checklist._rules_regression import REGRESSION_RULES
from medval.checklist._rules_segmentation import SEGMENTATION_RULES
from medval.checklist._text import ci, est, split_prefixes

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["RULES", "TASK_RULES", "Rule", "for_task"]

Rule = Callable[["ValidationResult"], Evidence | None]

#: task.kind -> the rules that replace the classifier's rules of the same name.
TASK_RULES: dict[str, dict[str, Rule]] = {
    "segmentation": SEGMENTATION_RULES,
    "regression": REGRESSION_RULES,
}


def for_task(name: str, rule: Rule) -> Rule:
    """``rule``, or its version for the result's task kind (:data:`TASK_RULES`)."""
    versions = {kind: rules[name] for kind, rules in TASK_RULES.items() if name in rules}
    if not versions:
        return rule

    def pick(r: ValidationResult) -> Evidence | None:
        return versions.get(str(r.values.get("task.kind")), rule)(r)

    pick.__name__ = rule.__name__
    pick.__doc__ = rule.__doc__
    return pick


def structured_summary(r: ValidationResult) -> Evidence | None:
    """Counts and headline numbers for the abstract (a suggestion)."""
    parts = []
    for name, prefix in split_prefixes(r):
        n = r.values.get(f"{prefix}cohort.n_cases")
        pos = r.values.get(f"{prefix}cohort.n_positive")
        auroc = est(r, f"{prefix}discrimination.auroc")
        parts.append(f"{name} n={n} ({pos} positive), AUROC {ci(auroc)}")
    if not parts:
        return None
    status = r.values.get("gate.status")
    tail = f"; acceptance criteria: {status}" if status else ""
    return Evidence("; ".join(parts) + tail + ".", complete=False)


def limitations(r: ValidationResult) -> Evidence | None:
    """The suggested limitations as one text (a suggestion)."""
    found = suggest_limitations(r)
    if not found:
        return None
    return Evidence(" ".join(x["text"] for x in found), complete=False)


#: Rule name -> function of a ValidationResult returning Evidence or None.
RULES: dict[str, Rule] = {
    name: for_task(name, rule)
    for name, rule in {
        **DATA_RULES,
        **EVAL_RULES,
        "structured_summary": structured_summary,
        "limitations": limitations,
        "registration": registration,
    }.items()
}
