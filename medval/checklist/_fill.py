"""Filling a checklist from a :class:`~medval.ValidationResult` and an answers file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medval._errors import InputError
from medval.checklist._answers import read_answers
from medval.checklist._load import load_checklist
from medval.checklist._model import STATUSES, Answer, Checklist, Item, ItemStatus, Status
from medval.checklist._rules import RULES

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["fill", "summary", "to_rows"]


def _result(result: Any) -> ValidationResult:
    if all(hasattr(result, a) for a in ("estimates", "values", "tables", "provenance")):
        return result  # type: ignore[no-any-return]
    if isinstance(result, Mapping):
        from medval._result import ValidationResult

        return ValidationResult.from_dict(result)
    raise InputError(
        f"fill() needs a ValidationResult (or the dict of result.json); got "
        f"{type(result).__name__}. Use medval.evaluate(...) or ValidationResult.read_json()."
    )


def _answers(
    answers: Mapping[str, Answer] | Mapping[str, Any] | str | Path | None, cl: Checklist
) -> dict[str, Answer]:
    if answers is None:
        return {}
    if isinstance(answers, Mapping) and all(isinstance(a, Answer) for a in answers.values()):
        return {str(k): a for k, a in answers.items() if isinstance(a, Answer)}
    return read_answers(answers, cl)


def _one(item: Item, r: ValidationResult, answer: Answer | None) -> ItemStatus:
    evidence = suggestion = None
    complete = False
    if item.rule is not None:
        found = RULES[item.rule](r)
        if found is not None:
            if item.klass == "H":
                suggestion = found.text
            else:
                evidence, complete = found.text, found.complete
    status: Status
    if evidence is None:
        status, source = "missing", "none"
    elif item.klass == "A" or complete:
        status, source = ("reported" if complete else "partial"), "auto"
    else:
        status, source = "partial", "auto"
    text = reason = None
    if answer is not None:
        status, text, reason = answer.status, answer.text, answer.reason
        source = "auto+answer" if evidence is not None else "answer"
    return ItemStatus(
        number=item.number,
        section=item.section,
        topic=item.topic,
        klass=item.klass,
        status=status,
        evidence=evidence,
        anchor=item.anchor,
        answer=text,
        reason=reason,
        suggestion=suggestion,
        source=source,
        link=item.link,
    )


def fill(
    result: ValidationResult | Mapping[str, Any],
    answers: Mapping[str, Answer] | Mapping[str, Any] | str | Path | None = None,
    checklist: str | Checklist = "claim-2024",
) -> list[ItemStatus]:
    """Fill every item of a checklist from the result and a person's answers.

    Parameters
    ----------
    result : ValidationResult or dict
        The validation result (or the parsed ``result.json``).
    answers : path, mapping or dict of Answer, optional
        An answers file (see :func:`read_answers`), its parsed content, or
        answers already read.
    checklist : str or Checklist, default "claim-2024"

    Returns
    -------
    list of ItemStatus
        One per item, in checklist order. Without an answer: an A item is
        ``reported`` when its evidence answers it (``partial`` when the
        evidence is incomplete, ``missing`` when there is none); an S item
        is ``partial`` with its evidence (``reported`` only where the
        evidence alone answers it); an H item is ``missing`` (its rule, if
        any, fills ``suggestion``). An answer sets the status; the evidence
        is kept beside it.

    Raises
    ------
    InputError
        When ``result`` is not a result.
    SpecError
        When the answers do not validate.
    """
    cl = load_checklist(checklist)
    r = _result(result)
    given = _answers(answers, cl)
    return [_one(item, r, given.get(item.number)) for item in cl.items]


def summary(statuses: Iterable[ItemStatus]) -> dict[str, int]:
    """Completeness counts: one key per status, plus ``total`` and ``auto_reported``.

    ``auto_reported`` counts items reported from evidence alone.
    """
    items = list(statuses)
    out: dict[str, int] = {s: 0 for s in STATUSES}
    for st in items:
        out[st.status] += 1
    out["total"] = len(items)
    out["auto_reported"] = sum(1 for st in items if st.status == "reported" and st.source == "auto")
    return out


def to_rows(statuses: Iterable[ItemStatus]) -> list[dict[str, Any]]:
    """Plain dicts for a report template or ``result.json``.

    Keys: number, section, topic, class, status, evidence, anchor, answer,
    reason, suggestion, source, link (values are str or None).
    """
    rows = []
    for st in statuses:
        row = st.to_dict()
        row["class"] = row.pop("klass")
        rows.append(row)
    return rows
