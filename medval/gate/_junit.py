"""JUnit XML for CI systems: one testcase per criterion (xunit2 family).

The layout is the one Jenkins, GitLab, GitHub Actions reporters and pytest's
``junit_family = "xunit2"`` agree on: ``testsuites > testsuite >
(properties, testcase*)``, with ``error``/``failure`` before ``system-out``
inside a testcase. A warning is a passing testcase whose ``system-out``
starts with ``WARNING:``.

The file is always well-formed XML 1.0: every attribute passes
:func:`medval._text.one_line` and every text :func:`medval._text.printable_text`
(control characters, lone surrogates and U+FFFE/U+FFFF removed; a group
name from a DICOM header may hold anything), and ElementTree escapes
``<``, ``&``, ``"`` and ``]]>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medval._text import one_line, printable_text
from medval.gate._judge import Verdict

if TYPE_CHECKING:
    from medval._result import ValidationResult

__all__ = ["junit_xml", "suite_properties", "write_junit"]


def _attrs(**values: str) -> dict[str, str]:
    return {k: one_line(v) for k, v in values.items()}


def _element(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, _attrs(**attrs))
    if text is not None:
        node.text = printable_text(text)
    return node


def _detail(v: Verdict) -> str:
    lines = [
        f"criterion: {v.name}",
        f"status: {v.status} (severity {v.severity})",
        f"key: {v.key}",
        f"rule: {v.bound or 'value'} {v.op} {v.threshold}",
    ]
    if v.value is not None:
        ci = "" if v.low is None or v.high is None else f" [{v.low:.4f}, {v.high:.4f}]"
        lines.append(f"estimate: {v.value:.4f}{ci}")
    if v.observed is not None:
        lines.append(f"observed: {v.observed}")
    lines.append(f"reason: {v.reason}")
    lines += [f"  {g['status']:5} {g['reason']}" for g in v.groups]
    return "\n".join(lines)


def junit_xml(
    verdicts: Sequence[Verdict],
    *,
    suite_name: str = "medval",
    properties: Mapping[str, str | None] | None = None,
    note: str | None = None,
) -> str:
    """JUnit XML text for a list of verdicts.

    Parameters
    ----------
    verdicts : sequence of Verdict
        One testcase each, in order.
    suite_name : str, default "medval"
    properties : mapping of str to str, optional
        Suite properties (model and data manifest digests, versions); None
        values are left out.
    note : str, optional
        A line every testcase's ``system-out`` starts with (a re-judged
        result says so on each criterion, not only in the properties).

    Returns
    -------
    str
        UTF-8 XML with a declaration. A ``fail`` verdict is a ``<failure>``,
        an ``error`` verdict an ``<error>``; ``warn`` passes with a warning
        in ``<system-out>``.
    """
    counts = {
        "tests": len(verdicts),
        "failures": sum(v.status == "fail" for v in verdicts),
        "errors": sum(v.status == "error" for v in verdicts),
        "skipped": 0,
    }
    attrs = {k: str(n) for k, n in counts.items()}
    root = ET.Element("testsuites", _attrs(name=suite_name, **attrs, time="0.000"))
    suite = _element(root, "testsuite", name=suite_name, **attrs, time="0.000")
    props = {k: v for k, v in (properties or {}).items() if v is not None}
    if props:
        pe = ET.SubElement(suite, "properties")
        for name, value in props.items():
            _element(pe, "property", name=name, value=str(value))
    for v in verdicts:
        case = _element(
            suite, "testcase", classname=f"{suite_name}.criteria", name=v.name, time="0.000"
        )
        if v.status in ("error", "fail"):
            tag, kind = (
                ("error", "medval.error") if v.status == "error" else ("failure", "medval.fail")
            )
            _element(case, tag, _detail(v), message=v.reason, type=kind)
        text = ("WARNING: " if v.status == "warn" else "") + _detail(v)
        _element(case, "system-out", text if note is None else f"{note}\n{text}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(
    verdicts: Sequence[Verdict],
    path: str | Path,
    *,
    suite_name: str = "medval",
    properties: Mapping[str, str | None] | None = None,
) -> Path:
    """Write :func:`junit_xml` to ``path`` (UTF-8); return the path."""
    p = Path(path)
    if p.parent != Path():
        p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(junit_xml(verdicts, suite_name=suite_name, properties=properties), "utf-8")
    return p


def suite_properties(result: ValidationResult) -> dict[str, str | None]:
    """Digests and versions that identify what was validated, and the multiplicity statement."""
    prov = result.provenance
    versions = prov.get("versions") or {}
    return {
        "medval.model_sha256": prov.get("model_sha256"),
        "medval.data_manifest_sha256": prov.get("data_manifest_sha256"),
        "medval.spec_sha256": prov.get("spec_sha256"),
        "medval.model_file": (
            ", ".join(map(str, prov["model_file"]))
            if isinstance(prov.get("model_file"), list)
            else prov.get("model_file")
        ),
        "medval.version": versions.get("medval"),
        "medval.seed": None if prov.get("seed") is None else str(prov["seed"]),
        "medval.gate_status": result.values.get("gate.status"),
        # What the verdicts mean as a family (medval.gate.judge_spec writes it).
        "medval.multiplicity": (result.values.get("gate.multiplicity") or {}).get("text"),
        **_integrity_properties(prov),
    }


def _integrity_properties(prov: Mapping[str, Any]) -> dict[str, str | None]:
    """Registration, deviations, test-set usage and the reusable holdout (medval.run)."""
    reg = prov.get("registration") or {}
    devs = reg.get("deviations") or []
    usage = prov.get("test_set_usage") or {}
    return {
        "medval.registration": (
            None
            if not reg
            else f"{reg.get('status')} ({reg.get('file')})"
            + (f", {reg['registered_at']}" if reg.get("registered_at") else "")
        ),
        "medval.registration_deviations": (
            None if not reg.get("registered_at") else "; ".join(d["text"] for d in devs) or "none"
        ),
        "medval.test_set_usage": usage.get("text"),
        "medval.test_set_uses": (
            None if usage.get("n_evaluations") is None else str(usage["n_evaluations"])
        ),
        "medval.reusable_holdout": (prov.get("holdout") or {}).get("text"),
    }
