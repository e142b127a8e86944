"""Reading and validating the checklist definitions in ``checklists/*.yaml``."""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medval._errors import MissingDependencyError, SpecError
from medval.checklist._model import CLASSES, STATUSES, Checklist, Item

__all__ = [
    "available_checklists",
    "checklist_dir",
    "load_checklist",
    "load_crosswalk",
    "load_yaml",
    "unknown_checklist_message",
]

_ITEM_FIELDS = {"number", "section", "topic", "description", "link", "class", "auto", "note"}
_AUTO_FIELDS = {"rule", "keys", "anchor"}
_TOP_FIELDS = {"id", "title", "citation", "url", "wording", "n_items", "statuses", "items"}
_NUMBER = re.compile(r"^[0-9]+[a-z]?$")


def checklist_dir() -> Path:
    """The checklist files: inside the wheel, or ``checklists/`` of a source checkout."""
    from importlib import resources

    packaged = resources.files("medval") / "_data" / "checklists"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "checklists"


def available_checklists() -> list[str]:
    """Names accepted by :func:`load_checklist` (the YAML files but the crosswalk)."""
    return sorted(p.stem for p in checklist_dir().glob("*.yaml") if p.stem != "crosswalk")


def _yaml() -> Any:
    try:
        return importlib.import_module("yaml")
    except ImportError as exc:  # pragma: no cover - pyyaml is a dependency
        raise MissingDependencyError(
            "reading checklists needs PyYAML; install it with `pip install pyyaml`."
        ) from exc


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML safely; duplicate mapping keys are an error (they hide answers).

    Raises
    ------
    SpecError
        Naming ``source`` and the line of the problem.
    """
    yaml = _yaml()

    loader_cls: Any = type("_UniqueKeyLoader", (yaml.SafeLoader,), {})

    def _mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in seen:
                raise SpecError(
                    f"{source}, line {key_node.start_mark.line + 1}: the key {key!r} appears "
                    "twice; keep one entry per key."
                )
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    loader_cls.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    try:
        return yaml.load(text, Loader=loader_cls)  # a SafeLoader subclass: no object tags
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{source}{where}: not valid YAML ({problem}).") from exc


def _text(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: '{field}' must be a non-empty string; got {value!r}.")
    return " ".join(value.split())


def _item(raw: Any, where: str, rules: Mapping[str, Any]) -> Item:
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: an item must be a mapping; got {type(raw).__name__}.")
    number = str(raw.get("number", ""))
    where = f"{where} (item {number or '?'})"
    if not _NUMBER.match(number):
        raise SpecError(f"{where}: 'number' must look like 13 or '12e'; got {number!r}.")
    unknown = sorted(set(raw) - _ITEM_FIELDS)
    if unknown:
        raise SpecError(f"{where}: unknown fields {unknown}; valid: {sorted(_ITEM_FIELDS)}.")
    klass = raw.get("class")
    if klass not in CLASSES:
        raise SpecError(f"{where}: 'class' must be one of {list(CLASSES)}; got {klass!r}.")
    link = _text(raw.get("link"), where, "link")
    if not link.startswith("https://"):
        raise SpecError(f"{where}: 'link' must be an https:// address; got {link!r}.")
    auto = raw.get("auto")
    rule = anchor = None
    keys: tuple[str, ...] = ()
    if auto is not None:
        if not isinstance(auto, Mapping) or set(auto) - _AUTO_FIELDS or "rule" not in auto:
            raise SpecError(f"{where}: 'auto' must be a mapping with rule, keys and anchor.")
        rule = str(auto["rule"])
        if rule not in rules:
            raise SpecError(f"{where}: unknown auto rule {rule!r}; valid: {sorted(rules)}.")
        anchor = auto.get("anchor")
        if not isinstance(anchor, str) or not re.match(r"^#[a-z][a-z0-9-]*$", anchor):
            raise SpecError(f"{where}: 'anchor' must look like '#cohort'; got {anchor!r}.")
        keys_raw = auto.get("keys", [])
        if not isinstance(keys_raw, list) or not all(isinstance(k, str) for k in keys_raw):
            raise SpecError(f"{where}: 'keys' must be a list of result keys.")
        keys = tuple(keys_raw)
    elif klass in ("A", "S"):
        raise SpecError(f"{where}: class {klass} items need an 'auto' rule.")
    note = raw.get("note")
    return Item(
        number=number,
        section=_text(raw.get("section"), where, "section"),
        topic=_text(raw.get("topic"), where, "topic"),
        description=_text(raw.get("description"), where, "description"),
        link=link,
        klass=str(klass),
        rule=rule,
        keys=keys,
        anchor=anchor,
        note=None if note is None else _text(note, where, "note"),
    )


def parse_checklist(data: Any, source: str) -> Checklist:
    """Validate a parsed checklist definition.

    Raises
    ------
    SpecError
        On a missing or malformed field, an unknown rule, or duplicate or
        missing item numbers; the message names the item.
    """
    from medval.checklist._rules import RULES

    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: expected a mapping at the top; got {type(data).__name__}.")
    unknown = sorted(set(data) - _TOP_FIELDS)
    if unknown:
        raise SpecError(f"{source}: unknown fields {unknown}; valid: {sorted(_TOP_FIELDS)}.")
    statuses = data.get("statuses")
    if statuses != list(STATUSES):
        raise SpecError(f"{source}: 'statuses' must be {list(STATUSES)}; got {statuses!r}.")
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise SpecError(f"{source}: 'items' must be a non-empty list.")
    items = tuple(_item(raw, source, RULES) for raw in raw_items)
    numbers = [it.number for it in items]
    dupes = sorted({n for n in numbers if numbers.count(n) > 1})
    if dupes:
        raise SpecError(f"{source}: item numbers {dupes} appear more than once.")
    expected = data.get("n_items")
    if expected is not None and expected != len(items):
        raise SpecError(f"{source}: declares n_items {expected} but lists {len(items)} items.")
    return Checklist(
        id=_text(data.get("id"), source, "id"),
        title=_text(data.get("title"), source, "title"),
        citation=_text(data.get("citation"), source, "citation"),
        url=_text(data.get("url"), source, "url"),
        items=items,
        statuses=tuple(statuses),
    )


@functools.lru_cache(maxsize=8)
def _load_cached(name: str) -> Checklist:
    path = checklist_dir() / f"{name}.yaml"
    data = load_yaml(path.read_text(encoding="utf-8"), path.name)
    checklist = parse_checklist(data, path.name)
    if checklist.id != name:
        raise SpecError(f"{path.name}: its id is {checklist.id!r}; expected {name!r}.")
    return checklist


def load_checklist(name: str | Checklist = "claim-2024") -> Checklist:
    """Load and validate a shipped checklist.

    Parameters
    ----------
    name : str or Checklist, default "claim-2024"
        A name from :func:`available_checklists` (``"claim-2024"``,
        ``"tripod-ai-2024"``); a Checklist is returned unchanged.

    Raises
    ------
    SpecError
        On an unknown name (the valid ones are listed) or a malformed file.
    """
    if isinstance(name, Checklist):
        return name
    valid = available_checklists()
    if name not in valid:
        raise SpecError(unknown_checklist_message(name, valid))
    return _load_cached(name)


def unknown_checklist_message(name: object, valid: list[str] | None = None) -> str:
    """``unknown checklist 'x'; did you mean 'y'? valid: [...]`` for error messages."""
    import difflib

    valid = available_checklists() if valid is None else valid
    close = difflib.get_close_matches(str(name).lower(), valid, n=1, cutoff=0.4)
    hint = f" did you mean {close[0]!r}?" if close else ""
    return f"unknown checklist {name!r};{hint} valid: {valid}."


def load_crosswalk() -> dict[str, Any]:
    """The CLAIM 2020 / CLAIM 2024 / TRIPOD+AI crosswalk as parsed YAML."""
    path = checklist_dir() / "crosswalk.yaml"
    data = load_yaml(path.read_text(encoding="utf-8"), path.name)
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise SpecError(f"{path.name}: expected a mapping with a 'rows' list.")
    return data
