"""Reporting checklists (CLAIM 2024, TRIPOD+AI) filled from a validation result.

The checklists are data (``checklists/*.yaml``, shipped in the wheel); this
package loads them, validates a person's answers file, fills every item it
can from a :class:`~medval.ValidationResult` with evidence and a link to the
report section, and suggests limitations from the result's flags::

    from medval import checklist

    statuses = checklist.fill(result, answers="answers.yaml")
    checklist.summary(statuses)   # {"reported": 30, "partial": 6, ...}
    rows = checklist.to_rows(statuses)
    checklist.crosswalk("tripod-ai-2024").of("8a")   # CLAIM 2024 items 14, 15

Only the standard library loads on import; PyYAML loads when a file is read.
"""

from medval.checklist._answers import init_template, parse_answers, read_answers
from medval.checklist._crosswalk import Counterpart, Crosswalk, crosswalk
from medval.checklist._fill import fill, summary, to_rows
from medval.checklist._limitations import suggest_limitations
from medval.checklist._load import (
    available_checklists,
    checklist_dir,
    load_checklist,
    load_crosswalk,
)
from medval.checklist._model import STATUSES, Answer, Checklist, Evidence, Item, ItemStatus

__all__ = [
    "STATUSES",
    "Answer",
    "Checklist",
    "Counterpart",
    "Crosswalk",
    "Evidence",
    "Item",
    "ItemStatus",
    "available_checklists",
    "checklist_dir",
    "crosswalk",
    "fill",
    "init_template",
    "load_checklist",
    "load_crosswalk",
    "parse_answers",
    "read_answers",
    "suggest_limitations",
    "summary",
    "to_rows",
]
