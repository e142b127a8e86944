"""What a run changed after its registration: criteria, settings and test data.

Each change is a :class:`Deviation` with a sentence for the report and JUnit
and whether it made the gate easier to pass (``loosened``: True), harder or
neutral (False), or cannot be told (None).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from medval.gate import DEFAULT_CALIBRATION_SPLIT, Spec
from medval.integrity._protocol import protocol
from medval.integrity._registration import Registration
from medval.integrity._splits import SplitManifest

__all__ = ["Deviation", "deviations"]

_UPWARD = (">=", ">")  # the threshold is a floor: lowering it loosens
_DOWNWARD = ("<=", "<")
# small_groups from strictest to most lenient.
_SMALL_ORDER = ("fail", "warn", "skip")
# Criterion fields compared one by one, in this order.
_FIELDS = ("key", "column", "field", "op", "threshold", "bound", "severity", "min_n",
           "small_groups", "description")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Deviation:
    """One difference between a run and its registration.

    Attributes
    ----------
    kind : str
        ``"criterion-<field>"`` (``threshold``, ``op``, ``bound``, ...),
        ``"criterion-removed"``, ``"criterion-added"``, ``"setting"``,
        ``"split-changed"``, ``"split-missing"`` or ``"split-unregistered"``.
    key : str
        The criterion name, dotted setting or split name.
    text : str
        One sentence for the report and JUnit.
    loosened : bool or None
        True: the gate became easier to pass; False: harder or no easier;
        None: cannot be told.
    """

    kind: str
    key: str
    text: str
    loosened: bool | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-native form."""
        return dataclasses.asdict(self)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _threshold(name: str, old: Any, new: Any, op: str) -> Deviation:
    numbers = all(isinstance(v, float) and not isinstance(v, bool) for v in (old, new))
    if not numbers:
        text = f"threshold for {name} changed from {_show(old)} to {_show(new)} after registration"
        return Deviation("criterion-threshold", name, text, None)
    verb = "lowered" if new < old else "raised"
    text = f"threshold for {name} {verb} from {_show(old)} to {_show(new)} after registration"
    loosened = None if op not in (*_UPWARD, *_DOWNWARD) else (new < old) == (op in _UPWARD)
    return Deviation("criterion-threshold", name, text, loosened)


def _op(old: str, new: str) -> bool | None:
    if {old, new} in ({">=", ">"}, {"<=", "<"}):
        return new in (">=", "<=")  # a non-strict comparison admits the boundary
    return None


def _bound(old: str, new: str) -> bool | None:
    if new == "value":  # the point value instead of the conservative CI bound
        return True
    return False if old == "value" else None


def _min_n(old: int, new: int, small_groups: str) -> bool | None:
    # More groups count as small: easier unless small groups fail.
    if small_groups == "fail":
        return new < old
    return new > old


def _criterion(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Deviation]:
    out: list[Deviation] = []
    op = str(new.get("op"))
    for field in _FIELDS:
        a, b = old.get(field), new.get(field)
        if a == b:
            continue
        if field == "threshold":
            same_direction = old.get("op") == op or {old.get("op"), op} <= set(_UPWARD) or {
                old.get("op"), op} <= set(_DOWNWARD)  # fmt: skip
            dev = _threshold(name, a, b, op if same_direction else "==")
            out.append(dev)
            continue
        text = f"{field} of {name} changed from {_show(a)} to {_show(b)} after registration"
        loosened: bool | None = None
        if field == "op":
            loosened = _op(str(a), str(b))
        elif field == "bound":
            loosened = _bound(str(a), str(b))
        elif field == "severity":
            loosened = a == "fail" and b == "warn"
        elif field == "min_n":
            loosened = _min_n(int(a or 0), int(b or 0), str(new.get("small_groups", "warn")))
        elif field == "small_groups":
            loosened = _SMALL_ORDER.index(str(b)) > _SMALL_ORDER.index(str(a))
        elif field == "description":
            loosened = False
        out.append(Deviation(f"criterion-{field}", name, text, loosened))
    return out


def _criteria(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[Deviation]:
    before = {str(c["name"]): c for c in old}
    after = {str(c["name"]): c for c in new}
    out: list[Deviation] = []
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            text = f"criterion {name} was removed after registration"
            out.append(Deviation("criterion-removed", name, text, True))
        elif name not in before:
            text = f"criterion {name} was added after registration"
            out.append(Deviation("criterion-added", name, text, False))
        else:
            out.extend(_criterion(name, before[name], after[name]))
    return out


def _flat(sections: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, table in sections.items() for k, v in (table or {}).items()}


def _setting_loosened(key: str, old: Any, new: Any) -> bool | None:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new))
    if key.endswith("confidence_level") and numbers:
        return bool(new < old)  # a narrower interval: its bound is less conservative
    if key == "gate.strict_registration":
        return bool(old) and not bool(new)
    if key == "gate.usage_budget" and numbers:
        return bool(new > old)
    if key == "gate.multiplicity":
        return bool(new == "none")
    return None


# Judged through the baseline's criterion (noninferiority.<metric>): not twice.
_BY_CRITERION = frozenset(f"baseline.{k}" for k in ("margin", "severity"))


def _settings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Deviation]:
    before, after = _flat(old), _flat(new)
    out: list[Deviation] = []
    for key in sorted(before.keys() | after.keys()):
        if key in _BY_CRITERION or before.get(key) == after.get(key):
            continue
        a, b = before.get(key), after.get(key)
        text = f"{key} changed from {_show(a)} to {_show(b)} after registration"
        out.append(Deviation("setting", key, text, _setting_loosened(key, a, b)))
    return out


def _role(name: str, spec: Spec) -> str:
    calibration = spec["analysis.calibration_split"] or DEFAULT_CALIBRATION_SPLIT
    return "calibration" if name == calibration else "test"


def _splits(
    registered: Mapping[str, Mapping[str, Any]], now: Mapping[str, SplitManifest], spec: Spec
) -> list[Deviation]:
    out: list[Deviation] = []
    for name in sorted(registered.keys() | now.keys()):
        role = f"{_role(name, spec)} split {name!r}"
        if name not in now:
            n = registered[name]["n_cases"]
            text = f"{role} was registered ({n} cases) but is not evaluated now"
            out.append(Deviation("split-missing", name, text, True))
        elif name not in registered:
            text = f"{role} ({now[name].n_cases} cases) was not registered"
            out.append(Deviation("split-unregistered", name, text, None))
        elif registered[name]["manifest_sha256"] != now[name].manifest_sha256:
            then, cur = registered[name]["n_cases"], now[name].n_cases
            same = " (the same count: other cases, labels or image bytes)" if then == cur else ""
            text = f"{role} changed after registration: {then} cases then, {cur} now{same}"
            out.append(Deviation("split-changed", name, text, None))
    return out


def deviations(
    registration: Registration, spec: Spec, splits: Mapping[str, SplitManifest]
) -> tuple[Deviation, ...]:
    """How a run (its spec and its data) departs from its registration.

    Parameters
    ----------
    registration : Registration
        From :func:`medval.integrity.read_registration`.
    spec : medval.gate.Spec
        The spec the run uses.
    splits : mapping of str to SplitManifest
        The run's evaluated and calibration splits
        (:func:`medval.integrity.split_manifests`).

    Returns
    -------
    tuple of Deviation
        Criteria (by name, sorted), then settings (by dotted key), then
        splits (by name); empty when the run is the registered one.
    """
    now = protocol(spec)
    then = registration.protocol
    out = _criteria(list(then.get("criteria", [])), now["criteria"])
    out += _settings(then.get("sections", {}), now["sections"])
    out += _splits(registration.splits, splits, spec)
    return tuple(out)
