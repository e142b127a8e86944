"""Answers files: a person's answers to the checklist items, in YAML.

Format::

    checklist: claim-2024
    items:
      1:
        status: reported
        text: "Title: 'A convolutional neural network for ...'"
      34:
        status: not_applicable
        reason: "retrospective diagnostic-accuracy study; not a trial"

``status`` is one of reported, partial, missing, not_applicable;
``reported`` and ``partial`` need ``text`` (the sentence, or where the
manuscript says it); ``not_applicable`` needs ``reason``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from medval._errors import SpecError
from medval.checklist._load import (
    available_checklists,
    load_checklist,
    load_yaml,
    unknown_checklist_message,
)
from medval.checklist._model import STATUSES, Answer, Checklist, Status

__all__ = ["init_template", "parse_answers", "read_answers"]

_FIELDS = {"status", "text", "reason"}
_TOP = {"checklist", "items"}


def _optional_text(value: Any, where: str, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise SpecError(f"{where}: '{field}' must be text; got {type(value).__name__}.")
    text = " ".join(str(value).split())
    return text or None


def parse_answers(
    data: Any, checklist: str | Checklist = "claim-2024", *, source: str = "answers"
) -> dict[str, Answer]:
    """Validate parsed answers against a checklist.

    Parameters
    ----------
    data : mapping
        ``{"checklist": name, "items": {number: {"status", "text", "reason"}}}``.
    checklist : str or Checklist, default "claim-2024"
    source : str
        Name used in error messages (the file name).

    Returns
    -------
    dict of str to Answer
        Keyed by item number; items left ``missing`` are dropped.

    Raises
    ------
    SpecError
        For an unknown item number, an unknown status or field, a
        ``not_applicable`` without a reason, a ``reported``/``partial``
        without text, or answers written for another checklist. The message
        names the item and the fix.
    """
    cl = load_checklist(checklist)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SpecError(
            f"{source}: expected a mapping with 'checklist' and 'items'; got "
            f"{type(data).__name__}. Start from `medval checklist init`."
        )
    unknown_top = sorted(set(map(str, data)) - _TOP)
    if unknown_top:
        raise SpecError(f"{source}: unknown top-level keys {unknown_top}; valid: {sorted(_TOP)}.")
    named = data.get("checklist")
    if named is not None and str(named) != cl.id:
        named = str(named)
        if named not in available_checklists():
            raise SpecError(f"{source}: 'checklist': {unknown_checklist_message(named)}")
        raise SpecError(
            f"{source}: these answers are for {named!r} but the checklist is {cl.id!r}; "
            f"render {named!r} instead (`--checklist {named}` on the command line, "
            f"checklist={named!r} in Python), or write answers for {cl.id!r} with "
            f"`medval checklist init --checklist {cl.id}`."
        )
    items = data.get("items") or {}
    if not isinstance(items, Mapping):
        raise SpecError(f"{source}: 'items' must map item numbers to answers.")
    valid = cl.numbers
    answers: dict[str, Answer] = {}
    seen: set[str] = set()
    for key, raw in items.items():
        number = str(key).strip()
        where = f"{source}: item {number}"
        if number not in valid:
            raise SpecError(
                f"{where} is not in {cl.id} (items {valid[0]} to {valid[-1]}); correct the "
                "number or remove the entry."
            )
        if number in seen:
            raise SpecError(f"{where} is answered twice; keep one entry.")
        seen.add(number)
        if raw is None:
            continue
        if not isinstance(raw, Mapping):
            raise SpecError(f"{where}: expected a mapping with status, text and reason.")
        extra = sorted(set(map(str, raw)) - _FIELDS)
        if extra:
            raise SpecError(f"{where}: unknown fields {extra}; valid: {sorted(_FIELDS)}.")
        status = raw.get("status", "missing")
        if status not in STATUSES:
            raise SpecError(f"{where}: unknown status {status!r}; valid: {list(STATUSES)}.")
        text = _optional_text(raw.get("text"), where, "text")
        reason = _optional_text(raw.get("reason"), where, "reason")
        if status == "not_applicable" and reason is None:
            raise SpecError(
                f"{where}: not_applicable needs a reason; add `reason: ...` saying why the "
                "item does not apply."
            )
        if status in ("reported", "partial") and text is None:
            raise SpecError(
                f"{where}: status {status} needs text; add `text: ...` with the sentence or "
                "where the manuscript reports it."
            )
        if status == "missing":
            continue
        answers[number] = Answer(number, cast(Status, status), text=text, reason=reason)
    return answers


def read_answers(
    path: str | Path | Mapping[str, Any], checklist: str | Checklist = "claim-2024"
) -> dict[str, Answer]:
    """Read and validate an answers file (YAML).

    Parameters
    ----------
    path : path or mapping
        The answers file, or its already-parsed content.
    checklist : str or Checklist, default "claim-2024"

    Raises
    ------
    SpecError
        When the file is missing, not YAML, or fails :func:`parse_answers`.
    """
    if isinstance(path, Mapping):
        return parse_answers(path, checklist)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SpecError(
            f"answers file {p.name} does not exist; write one with `medval checklist init`."
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"answers file {p.name} cannot be read as UTF-8 text ({exc}).") from exc
    return parse_answers(load_yaml(text, p.name), checklist, source=p.name)


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 74 - len(indent))]


def init_template(checklist: str | Checklist = "claim-2024") -> str:
    """A commented YAML answers template for the items a person must answer.

    H and S items are listed with ``status: missing``; A items, which
    medval fills from the result, follow as comments (uncomment one to mark
    it not applicable or to add a sentence). The template parses with
    :func:`read_answers` as it is.
    """
    cl = load_checklist(checklist)
    lines = [
        f"# Answers for {cl.title}",
        f"# Official text: {cl.url}",
        "#",
        "# For each item set status to one of: reported, partial, missing, not_applicable.",
        "#   reported / partial -> add `text:` (the sentence, or where the manuscript says it)",
        "#   not_applicable     -> add `reason:` (why the item does not apply)",
        "# Items marked [S] also get evidence computed by medval; your text completes them.",
        "# Answers are shown in the report: write no patient information here.",
        f"checklist: {cl.id}",
        "items:",
    ]
    auto = []
    for it in cl.items:
        if it.klass == "A":
            auto.append(it)
            continue
        key = it.number if it.number.isdigit() else f'"{it.number}"'
        lines.append("")
        lines.append(f"  # [{it.klass}] {it.section} - {it.topic}")
        lines += _comment(it.description, "  ")
        if it.note:
            lines += _comment(f"Note: {it.note}", "  ")
        lines += [f"  {key}:", "    status: missing", '    text: ""']
    lines += ["", "# Filled by medval from the result (class A); uncomment to override:"]
    for it in auto:
        key = it.number if it.number.isdigit() else f'"{it.number}"'
        lines.append(f"#  {key}: {{status: not_applicable, reason: ''}}  # {it.topic}")
    return "\n".join(lines) + "\n"
